package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Kind is the flavour of cluster DNS configuration.
type Kind string

// The flavours kubectl mesh edits.
const (
	// CoreDNS: key Corefile, a global:53 server block.
	CoreDNS Kind = "CoreDNS"
	// KubeDNS: key stubDomains, a JSON object of zone → nameservers.
	KubeDNS Kind = "kube-dns"
	// CoreDNSCustom: a managed variant (AKS' coredns-custom) whose
	// `*.server` keys CoreDNS imports as extra server blocks.
	CoreDNSCustom Kind = "coredns-custom"
)

// Keys of the ConfigMaps.
const (
	CorefileKey    = "Corefile"
	StubDomainsKey = "stubDomains"
	CustomKey      = "global.server"
)

// ReconcileLabel marks ConfigMaps that an addon manager reverts.
const ReconcileLabel = "addonmanager.kubernetes.io/mode"

// Target is the ConfigMap holding a cluster's DNS configuration.
type Target struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      Kind   `json:"kind"`
}

func (t Target) String() string { return t.Namespace + "/" + t.Name }

// Key is the ConfigMap key the edit goes to.
func (t Target) Key() string {
	switch t.Kind {
	case KubeDNS:
		return StubDomainsKey
	case CoreDNSCustom:
		return CustomKey
	}
	return CorefileKey
}

// ParseTarget reads --dns-configmap NAMESPACE/NAME.
func ParseTarget(s string) (namespace, name string, err error) {
	ns, n, ok := strings.Cut(s, "/")
	if !ok || ns == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("--dns-configmap %q must be NAMESPACE/NAME, e.g. kube-system/coredns-custom", s)
	}
	return ns, n, nil
}

// KindOf tells how a ConfigMap configures DNS from its keys and name.
func KindOf(cm *corev1.ConfigMap) Kind {
	switch {
	case hasKey(cm, CorefileKey):
		return CoreDNS
	case hasKey(cm, StubDomainsKey), cm.Name == "kube-dns":
		return KubeDNS
	}
	return CoreDNSCustom
}

func hasKey(cm *corev1.ConfigMap, k string) bool {
	_, ok := cm.Data[k]
	return ok
}

// Detect finds the ConfigMap that configures the cluster's DNS:
// kube-system/coredns (key Corefile), else kube-system/kube-dns. namespace
// and name override the search (--dns-configmap). Warnings say what could
// undo the edit.
func Detect(ctx context.Context, kube kubernetes.Interface, namespace, name string) (*corev1.ConfigMap, Target, []string, error) {
	candidates := [][2]string{{"kube-system", "coredns"}, {"kube-system", "kube-dns"}}
	if name != "" {
		candidates = [][2]string{{namespace, name}}
	}
	for _, c := range candidates {
		cm, err := kube.CoreV1().ConfigMaps(c[0]).Get(ctx, c[1], metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if name != "" {
				return nil, Target{}, nil, fmt.Errorf("ConfigMap %s/%s (--dns-configmap) not found; check the name, or leave the flag out to detect CoreDNS or kube-dns", c[0], c[1])
			}
			continue
		}
		if err != nil {
			return nil, Target{}, nil, fmt.Errorf("read ConfigMap %s/%s: %w", c[0], c[1], err)
		}
		t := Target{Namespace: cm.Namespace, Name: cm.Name, Kind: KindOf(cm)}
		if name == "" && t.Kind == CoreDNSCustom {
			continue // kube-system/coredns without a Corefile: not the server's config
		}
		return cm, t, Warnings(cm), nil
	}
	return nil, Target{}, nil, fmt.Errorf("found neither ConfigMap kube-system/coredns (key Corefile) nor kube-system/kube-dns; name the cluster DNS ConfigMap with --dns-configmap NAMESPACE/NAME")
}

// Warnings says what may revert an edit of cm.
func Warnings(cm *corev1.ConfigMap) []string {
	if cm.Labels[ReconcileLabel] == "Reconcile" {
		return []string{fmt.Sprintf("ConfigMap %s/%s is labelled %s=Reconcile: the addon manager will revert this edit; use the provider's custom ConfigMap (e.g. --dns-configmap kube-system/coredns-custom)", cm.Namespace, cm.Name, ReconcileLabel)}
	}
	return nil
}

// Change records one edit of a DNS ConfigMap: the key's exact value before
// and after, so that Revert restores it byte for byte, and what the edit
// did to kubectl mesh's own part (the global server block of a Corefile,
// the global stub domain of kube-dns), to undo just that when other parts
// of the key changed meanwhile.
type Change struct {
	Target     Target        `json:"target"`
	Key        string        `json:"key"`
	KeyExisted bool          `json:"keyExisted"`
	Before     string        `json:"before"`
	After      string        `json:"after"`
	IP         string        `json:"ip"`
	Corefile   *CorefileEdit `json:"corefile,omitempty"`
	// PreviousStub is kube-dns' global stub domain before the edit; empty
	// when there was none.
	PreviousStub []string `json:"previousStub,omitempty"`
}

// Apply returns the edit that makes cm forward the global zone to ip; nil
// when it already does.
func Apply(cm *corev1.ConfigMap, t Target, ip string) (*Change, error) {
	key := t.Key()
	before, existed := cm.Data[key]
	ch := &Change{Target: t, Key: key, KeyExisted: existed, Before: before, IP: ip}
	switch t.Kind {
	case CoreDNS, CoreDNSCustom:
		out, edit, err := EnsureGlobal(before, ip)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s key %s: %w", t, key, err)
		}
		if edit == nil {
			return nil, nil
		}
		ch.After, ch.Corefile = out, edit
	case KubeDNS:
		out, previous, changed, err := EnsureStubDomain(before, ip)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", t, err)
		}
		if !changed {
			return nil, nil
		}
		ch.After, ch.PreviousStub = out, previous
	default:
		return nil, fmt.Errorf("unknown DNS kind %q", t.Kind)
	}
	return ch, nil
}

// Patched returns a copy of cm with the change written.
func (c *Change) Patched(cm *corev1.ConfigMap) *corev1.ConfigMap {
	out := cm.DeepCopy()
	if out.Data == nil {
		out.Data = map[string]string{}
	}
	out.Data[c.Key] = c.After
	return out
}

// Revert returns a copy of cm without the change. When the key still holds
// exactly what the change wrote, the old value comes back byte for byte
// (or the key goes, if it did not exist). Otherwise only the global block
// or stub domain is put back as it was, and an error explains a block
// changed since, leaving cm as it is. Reverting a change that was never
// written, or twice, changes nothing.
func (c *Change) Revert(cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	out := cm.DeepCopy()
	cur, ok := out.Data[c.Key]
	if !ok {
		return out, nil
	}
	v := c.Before
	if cur != c.After {
		var err error
		if v, err = c.undoOwnPart(cur); err != nil {
			return nil, err
		}
	}
	if v == "" && !c.KeyExisted {
		delete(out.Data, c.Key)
		return out, nil
	}
	out.Data[c.Key] = v
	return out, nil
}

// undoOwnPart takes the change out of the key's value cur, keeping every
// other part as it is now.
func (c *Change) undoOwnPart(cur string) (string, error) {
	if c.Target.Kind == KubeDNS {
		v, ok, err := RestoreStubDomain(cur, c.IP, c.PreviousStub)
		if err != nil {
			return "", fmt.Errorf("ConfigMap %s: %w", c.Target, err)
		}
		if !ok {
			return "", fmt.Errorf("ConfigMap %s: the global stub domain no longer points at %s; it was changed after kubectl mesh wrote it, remove it by hand", c.Target, c.IP)
		}
		if v == "{}" && !c.KeyExisted {
			v = ""
		}
		return v, nil
	}
	if c.Corefile == nil {
		return "", fmt.Errorf("ConfigMap %s: the record of the Corefile edit is missing; remove the global block by hand", c.Target)
	}
	v, err := RemoveGlobal(cur, *c.Corefile)
	if err != nil {
		return "", fmt.Errorf("ConfigMap %s key %s: %w", c.Target, c.Key, err)
	}
	return v, nil
}

// Written reports whether cm holds what the change wrote: the whole value,
// or at least its global block or stub domain.
func (c *Change) Written(cm *corev1.ConfigMap) bool {
	cur, ok := cm.Data[c.Key]
	switch {
	case !ok:
		return false
	case cur == c.After:
		return true
	case c.Target.Kind == KubeDNS:
		fwd, err := StubDomainForwarding(cur)
		return err == nil && slices.Equal(fwd, []string{c.IP})
	case c.Corefile == nil:
		return false
	}
	block, found, err := globalBlock(cur)
	return err == nil && found && block == c.Corefile.Added
}

// Forwarding returns the nameservers cm forwards the global zone to.
func Forwarding(cm *corev1.ConfigMap, t Target) ([]string, error) {
	v := cm.Data[t.Key()]
	if t.Kind == KubeDNS {
		return StubDomainForwarding(v)
	}
	return GlobalForwarding(v)
}

// Compose is the change that goes from the state before older to the state
// after newer, for a key edited twice (e.g. a new istiocoredns IP), so
// that undoing it restores what kubectl mesh's part was before the first
// edit. Whatever else changed in the key between the edits stays: only
// when the key was untouched in between is the text before older restored
// byte for byte. Likewise, when someone changed kubectl mesh's part
// between the edits, undo restores their version of it.
func Compose(older, newer *Change) *Change {
	if older == nil || older.Target != newer.Target || older.Key != newer.Key {
		return newer
	}
	out := *newer
	switch {
	case newer.Target.Kind == KubeDNS:
		if slices.Equal(newer.PreviousStub, []string{older.IP}) {
			out.PreviousStub = older.PreviousStub
		}
	case older.Corefile != nil && newer.Corefile != nil && newer.Corefile.Removed == older.Corefile.Added:
		out.Corefile = &CorefileEdit{Removed: older.Corefile.Removed, Added: newer.Corefile.Added, NewlineAdded: older.Corefile.NewlineAdded}
	}
	if newer.Before == older.After {
		out.KeyExisted, out.Before = older.KeyExisted, older.Before
		return &out
	}
	// Someone edited the key between the two edits: the text to go back to
	// is today's without kubectl mesh's part.
	out.KeyExisted = older.KeyExisted || newer.KeyExisted
	before, err := out.undoOwnPart(newer.After)
	if err != nil {
		return newer // undoing newer alone is still exact
	}
	out.Before = before
	return &out
}

// Settle returns the change in effect in cm when a link recorded pending
// before writing it and may have stopped before (or after) the write:
// pending composed onto committed when cm holds pending's edit, else
// committed as it was.
func Settle(committed, pending *Change, cm *corev1.ConfigMap) *Change {
	if pending == nil || cm == nil || !pending.Written(cm) {
		return committed
	}
	return Compose(committed, pending)
}
