package meshconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Where Istio keeps its mesh config.
const (
	Namespace     = "istio-system"
	ConfigMapName = "istio"
	Key           = "mesh"
	RevisionLabel = "istio.io/rev"
)

// DNSCaptureKey is the proxy metadata (an environment variable of every
// sidecar) that turns on the agent's DNS proxy.
const DNSCaptureKey = "ISTIO_META_DNS_CAPTURE"

// DNSCapturePath is where DNSCaptureKey lives in the MeshConfig.
const DNSCapturePath = "defaultConfig.proxyMetadata." + DNSCaptureKey

const (
	defaultConfigKey = "defaultConfig"
	proxyMetadataKey = "proxyMetadata"
	enabled          = "true"
)

// ErrNotFound is wrapped by Find's errors when there is no mesh config to edit.
var ErrNotFound = errors.New("no Istio mesh config")

// Find returns the ConfigMap holding the mesh config of the Istio control
// plane for revision ("" for the default one). Without a revision it is
// istio-system/istio, or else the only ConfigMap labelled istio.io/rev that
// has a mesh key; with one it is istio-<revision>, or else the one labelled
// istio.io/rev=<revision> (so "default" finds istio-system/istio too).
func Find(ctx context.Context, kube kubernetes.Interface, revision string) (*corev1.ConfigMap, error) {
	name := ConfigMapName
	if revision != "" {
		name += "-" + revision
	}
	cms := kube.CoreV1().ConfigMaps(Namespace)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return cm, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", Namespace, name, err)
	}
	selector := RevisionLabel
	if revision != "" {
		selector += "=" + revision
	}
	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list ConfigMaps in %s labelled %s: %w", Namespace, selector, err)
	}
	// Other revisioned ConfigMaps (the sidecar injector's, for one) carry
	// the same label; only the mesh config has the mesh key.
	var found []corev1.ConfigMap
	for _, c := range list.Items {
		if _, ok := c.Data[Key]; ok {
			found = append(found, c)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	switch {
	case len(found) == 1:
		return &found[0], nil
	case len(found) > 1:
		names := make([]string, len(found))
		for i, c := range found {
			names[i] = fmt.Sprintf("%s/%s (revision %s)", c.Namespace, c.Name, c.Labels[RevisionLabel])
		}
		return nil, fmt.Errorf("found several Istio mesh config ConfigMaps: %s; pass --istio-revision to pick one", strings.Join(names, ", "))
	case revision != "":
		return nil, fmt.Errorf("%w: ConfigMap %s/%s was not found, nor one labelled %s=%s with key %s; check --istio-revision against kubectl -n %s get configmap -l %s",
			ErrNotFound, Namespace, name, RevisionLabel, revision, Key, Namespace, RevisionLabel)
	}
	return nil, fmt.Errorf("%w: ConfigMap %s/%s was not found, nor one labelled %s with key %s; is Istio ≥ 1.8 installed?",
		ErrNotFound, Namespace, ConfigMapName, RevisionLabel, Key)
}

// DNSCapture tells whether the mesh config text mesh (the value of key
// mesh) turns DNS proxying on. Like istio-agent, which reads the variable
// with strconv.ParseBool, it takes "true", "1", "True" … as on and
// anything unparsable as off.
func DNSCapture(mesh string) (on bool, err error) {
	doc, _, err := parse(mesh)
	if err != nil {
		return false, fmt.Errorf("key %s: %w", Key, err)
	}
	p, err := locate(doc)
	if err != nil {
		return false, fmt.Errorf("key %s: %w", Key, err)
	}
	return p.on(), nil
}

// Change records one edit of the mesh config: the exact text before and
// after, for a byte-exact undo, and what the edit did inside the document,
// to undo only that once someone else has edited the document too. It is
// stored in the link record as JSON.
type Change struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	// HadKey: the ConfigMap had the key before; when not, undoing the
	// untouched edit deletes the key again.
	HadKey bool   `json:"hadKey"`
	Before string `json:"before"`
	After  string `json:"after"`
	// PreviousValue is what ISTIO_META_DNS_CAPTURE held before ("false",
	// say); nil when it was unset.
	PreviousValue *string `json:"previousValue,omitempty"`
	// HadProxyMetadata and HadDefaultConfig: the maps existed before, so
	// they stay even if empty once our key is gone.
	HadProxyMetadata bool `json:"hadProxyMetadata"`
	HadDefaultConfig bool `json:"hadDefaultConfig"`
}

// EnableDNSCapture returns the edit of cm that turns DNS proxying on; nil
// when it is on already. A ConfigMap without the mesh key is taken as an
// empty mesh config (all of Istio's defaults).
func EnableDNSCapture(cm *corev1.ConfigMap) (*Change, error) {
	before, hadKey := cm.Data[Key]
	doc, blank, err := parse(before)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, Key, err)
	}
	p, err := locate(doc)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, Key, err)
	}
	if p.on() {
		return nil, nil
	}
	if p.viaAlias {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s: %s goes through a YAML alias, which kubectl mesh does not edit; set %s: %q by hand", cm.Namespace, cm.Name, Key, DNSCapturePath, DNSCaptureKey, enabled)
	}
	ch := &Change{
		Namespace: cm.Namespace, Name: cm.Name, Key: Key, HadKey: hadKey, Before: before,
		HadDefaultConfig: p.defaultConfig != nil, HadProxyMetadata: p.proxyMetadata != nil,
	}
	if p.value != nil {
		prev := p.value.Value
		ch.PreviousValue = &prev
	}
	indent, compact := formatOf(doc)
	dc := ensureMap(p.root, defaultConfigKey, p.defaultConfig)
	pm := ensureMap(dc, proxyMetadataKey, p.proxyMetadata)
	if p.value != nil {
		setString(p.value, enabled)
	} else {
		pm.Content = append(pm.Content, scalar(DNSCaptureKey), stringNode(enabled))
	}
	after, err := render(doc, indent, compact)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, Key, err)
	}
	if blank && strings.TrimSpace(before) != "" {
		// yaml.v3 drops a document that is only comments; keep them.
		after = strings.TrimSuffix(before, "\n") + "\n" + after
	}
	ch.After = after
	return ch, nil
}

// Apply returns a copy of cm with the edit written.
func (c Change) Apply(cm *corev1.ConfigMap) *corev1.ConfigMap {
	out := cm.DeepCopy()
	if out.Data == nil {
		out.Data = map[string]string{}
	}
	out.Data[c.key()] = c.After
	return out
}

// Revert returns a copy of cm without the edit, and whether that differs
// from cm. When the key still holds exactly what the edit wrote, the text
// from before comes back byte for byte. Otherwise only ISTIO_META_DNS_CAPTURE
// is put back (to its previous value, or removed with the maps the edit
// created, if they are empty now); everything else stays. A value someone
// changed since is theirs and stays too. Reverting twice changes nothing.
func Revert(cm *corev1.ConfigMap, c Change) (*corev1.ConfigMap, bool, error) {
	if cm.Namespace != c.Namespace || cm.Name != c.Name {
		return nil, false, fmt.Errorf("the recorded mesh config edit is for ConfigMap %s/%s, not %s/%s; revert it on %s/%s", c.Namespace, c.Name, cm.Namespace, cm.Name, c.Namespace, c.Name)
	}
	key := c.key()
	out := cm.DeepCopy()
	cur, ok := out.Data[key]
	if ok && cur == c.After {
		if c.HadKey {
			out.Data[key] = c.Before
		} else {
			delete(out.Data, key)
		}
		return out, true, nil
	}
	doc, _, err := parse(cur)
	if err != nil {
		return nil, false, fmt.Errorf("ConfigMap %s/%s key %s: %w, then undo again", cm.Namespace, cm.Name, key, err)
	}
	p, err := locate(doc)
	if err != nil {
		return nil, false, fmt.Errorf("ConfigMap %s/%s key %s: %w, then undo again", cm.Namespace, cm.Name, key, err)
	}
	if p.value == nil || p.value.Value != enabled {
		return out, false, nil // gone already, or someone else's value now
	}
	if p.viaAlias {
		return nil, false, fmt.Errorf("ConfigMap %s/%s key %s: %s now goes through a YAML alias, which kubectl mesh does not edit; remove %s by hand", cm.Namespace, cm.Name, key, DNSCapturePath, DNSCaptureKey)
	}
	indent, compact := formatOf(doc)
	if c.PreviousValue != nil {
		setString(p.value, *c.PreviousValue)
	} else {
		removePair(p.proxyMetadata, p.valueAt)
		if !c.HadProxyMetadata && len(p.proxyMetadata.Content) == 0 {
			removePair(p.defaultConfig, p.proxyMetadataAt)
		}
		if !c.HadDefaultConfig && len(p.defaultConfig.Content) == 0 {
			removePair(p.root, p.defaultConfigAt)
		}
	}
	text, err := render(doc, indent, compact)
	if err != nil {
		return nil, false, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, key, err)
	}
	out.Data[key] = text
	return out, text != cur, nil
}

// Describe says in one line what the edit does.
func (c Change) Describe() string {
	was := "unset"
	if c.PreviousValue != nil {
		was = strconv.Quote(*c.PreviousValue)
	}
	return fmt.Sprintf("ConfigMap %s/%s key %s: %s %q (was %s)", c.Namespace, c.Name, c.key(), DNSCapturePath, enabled, was)
}

// key tolerates a record written without Key: there is only one.
func (c Change) key() string {
	if c.Key == "" {
		return Key
	}
	return c.Key
}

// parse reads a mesh config into a document node whose content is the
// top-level mapping. An empty text (or only comments, or null) is an empty
// mapping: Istio's defaults. blank says the text held no document at all,
// since yaml.v3 then keeps none of its comments.
func parse(text string) (doc *yaml.Node, blank bool, err error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	doc = &yaml.Node{}
	if err := dec.Decode(doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("not valid YAML (%w); fix the mesh config", err)
	}
	// A second document would be lost when the first is written back; an
	// empty one (a trailing ---) would not.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("not valid YAML (%w); fix the mesh config", err)
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			return nil, false, fmt.Errorf("holds more than one YAML document; the mesh config is a single MeshConfig, remove the others")
		}
	}
	if len(doc.Content) == 0 {
		doc.Kind = yaml.DocumentNode
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
		return doc, true, nil
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.MappingNode:
	case isNull(root):
		doc.Content[0] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", HeadComment: root.HeadComment, LineComment: root.LineComment, FootComment: root.FootComment}
	default:
		return nil, false, fmt.Errorf("holds a %s, but a mesh config is a MeshConfig mapping (accessLogFile: …, defaultConfig: …); fix the mesh config", kindName(root))
	}
	return doc, false, nil
}

// place is where ISTIO_META_DNS_CAPTURE is, or would go, in a document:
// the maps on the way (nil when absent or null) and the positions of their
// keys in the parent mapping's Content.
type place struct {
	root, defaultConfig, proxyMetadata, value *yaml.Node
	defaultConfigAt, proxyMetadataAt, valueAt int
	// viaAlias: a node on the way is a YAML alias, so editing it would
	// edit the anchored node (and every other alias of it) too.
	viaAlias bool
}

func (p place) on() bool {
	if p.value == nil {
		return false
	}
	b, err := strconv.ParseBool(p.value.Value)
	return err == nil && b
}

// locate finds ISTIO_META_DNS_CAPTURE in a parsed mesh config, checking
// each step has the type Istio's MeshConfig gives it, so that the error
// istiod would only log comes out here with the field it is about.
func locate(doc *yaml.Node) (place, error) {
	p := place{root: doc.Content[0]}
	var err error
	p.defaultConfigAt, p.defaultConfig, err = mapField(p.root, defaultConfigKey, defaultConfigKey, &p.viaAlias)
	if err != nil || p.defaultConfig == nil {
		return p, err
	}
	p.proxyMetadataAt, p.proxyMetadata, err = mapField(p.defaultConfig, proxyMetadataKey, defaultConfigKey+"."+proxyMetadataKey, &p.viaAlias)
	if err != nil || p.proxyMetadata == nil {
		return p, err
	}
	at, v, err := field(p.proxyMetadata, DNSCaptureKey, DNSCapturePath)
	if err != nil || v == nil {
		return p, err
	}
	if v.Kind == yaml.AliasNode {
		p.viaAlias = true
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode {
		return p, fmt.Errorf("%s is a %s, but proxyMetadata holds strings; set it to %q", DNSCapturePath, kindName(v), enabled)
	}
	if isNull(v) {
		return p, fmt.Errorf("%s is null, but proxyMetadata holds strings and istiod rejects this mesh config; set it to %q or remove it", DNSCapturePath, enabled)
	}
	if v.ShortTag() != "!!str" {
		// proxyMetadata is map<string, string>: istiod rejects the whole
		// mesh config over a bare true.
		return p, fmt.Errorf("%s is a YAML %s (%s), but proxyMetadata holds strings and istiod rejects this mesh config; quote it: %s: %q",
			DNSCapturePath, strings.TrimPrefix(v.ShortTag(), "!!"), v.Value, DNSCaptureKey, v.Value)
	}
	p.valueAt, p.value = at, v
	return p, nil
}

// mapField finds the mapping under key in m; nil when the key is absent or
// null (protobuf's JSON reading takes null as unset).
func mapField(m *yaml.Node, key, path string, viaAlias *bool) (int, *yaml.Node, error) {
	at, v, err := field(m, key, path)
	if err != nil || v == nil {
		return at, nil, err
	}
	if v.Kind == yaml.AliasNode {
		*viaAlias = true
		v = v.Alias
	}
	switch {
	case v.Kind == yaml.MappingNode:
		return at, v, nil
	case isNull(v):
		return at, nil, nil
	}
	return at, nil, fmt.Errorf("%s is a %s, but MeshConfig makes it a mapping; fix the mesh config", path, kindName(v))
}

// field finds key in mapping m: the index of its key node in m.Content and
// its value, or -1 and nil.
func field(m *yaml.Node, key, path string) (int, *yaml.Node, error) {
	at := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			if at >= 0 {
				return -1, nil, fmt.Errorf("%s appears twice; keep one", path)
			}
			at = i
		}
	}
	if at < 0 {
		return -1, nil, nil
	}
	return at, m.Content[at+1], nil
}

// ensureMap returns the mapping under key in m: existing when not nil,
// else a new block mapping, replacing a null value in place so that the
// key's comments stay.
func ensureMap(m *yaml.Node, key string, existing *yaml.Node) *yaml.Node {
	if existing != nil {
		if len(existing.Content) == 0 {
			// `proxyMetadata: {}` becomes a block, as Istio writes it.
			existing.Style &^= yaml.FlowStyle
		}
		return existing
	}
	fresh := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if at, v, _ := field(m, key, key); v != nil {
		fresh.LineComment = v.LineComment
		m.Content[at+1] = fresh
		return fresh
	}
	m.Content = append(m.Content, scalar(key), fresh)
	return fresh
}

// removePair deletes the key at index i of mapping m and its value. yaml.v3
// hangs comments between keys (and a document's last comments) on a key
// node, so comments on the removed key move to its neighbours.
func removePair(m *yaml.Node, i int) {
	k := m.Content[i]
	m.Content = append(m.Content[:i:i], m.Content[i+2:]...)
	var prev, next *yaml.Node
	if i > 0 {
		prev = m.Content[i-2]
	}
	if i < len(m.Content) {
		next = m.Content[i]
	}
	for _, c := range []string{k.HeadComment, k.FootComment} {
		switch {
		case c == "":
		case next != nil:
			next.HeadComment = joinComments(c, next.HeadComment)
		case prev != nil:
			prev.FootComment = joinComments(prev.FootComment, c)
		default:
			m.FootComment = joinComments(m.FootComment, c)
		}
	}
}

func joinComments(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "\n" + b
}

// formatOf finds the indentation the document uses, so that writing it
// back changes only the edited lines: the indent of nested mappings, and
// whether sequences under a key start at the key's column (compact, as
// Helm and istioctl render the mesh config).
func formatOf(doc *yaml.Node) (indent int, compact bool) {
	indent, compact = 0, true
	seenSeq := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Line > k.Line && v.Style&yaml.FlowStyle == 0 {
					switch {
					case v.Kind == yaml.MappingNode && indent == 0 && v.Column > k.Column:
						indent = v.Column - k.Column
					case v.Kind == yaml.SequenceNode && !seenSeq:
						seenSeq, compact = true, v.Column == k.Column
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	// The emitter takes indents of 2 to 9 only.
	if indent < 2 || indent > 9 {
		indent = 2
	}
	return indent, compact
}

func render(doc *yaml.Node, indent int, compact bool) (string, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(indent)
	if compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("write the mesh config back: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("write the mesh config back: %w", err)
	}
	return b.String(), nil
}

func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// stringNode is a quoted string, as Istio's docs write proxy metadata, so
// that nobody copies it as a bare bool.
func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func setString(n *yaml.Node, s string) {
	n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", s, yaml.DoubleQuotedStyle
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.AliasNode:
		return "alias"
	}
	return "YAML " + strings.TrimPrefix(n.ShortTag(), "!!") + " " + strconv.Quote(n.Value)
}

// DefaultTrustDomain is Istio's trust domain when the mesh config sets none.
const DefaultTrustDomain = "cluster.local"

// MeshID is the mesh ID of the mesh config text mesh:
// defaultConfig.meshId (values.global.meshID), else, as Istio defaults it,
// the trust domain.
func MeshID(mesh string) (string, error) {
	doc, _, err := parse(mesh)
	if err != nil {
		return "", fmt.Errorf("key %s: %w", Key, err)
	}
	var m struct {
		TrustDomain   string `yaml:"trustDomain"`
		DefaultConfig struct {
			MeshID string `yaml:"meshId"`
		} `yaml:"defaultConfig"`
	}
	if err := doc.Decode(&m); err != nil {
		return "", fmt.Errorf("key %s: %w; fix the mesh config", Key, err)
	}
	switch {
	case m.DefaultConfig.MeshID != "":
		return m.DefaultConfig.MeshID, nil
	case m.TrustDomain != "":
		return m.TrustDomain, nil
	}
	return DefaultTrustDomain, nil
}
