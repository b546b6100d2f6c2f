package dns

import (
	"context"
	"fmt"
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
// and after, so that Revert restores it byte for byte, and for a Corefile
// the block-level edit, to undo it even when other parts of the Corefile
// changed meanwhile.
type Change struct {
	Target     Target        `json:"target"`
	Key        string        `json:"key"`
	KeyExisted bool          `json:"keyExisted"`
	Before     string        `json:"before"`
	After      string        `json:"after"`
	IP         string        `json:"ip"`
	Corefile   *CorefileEdit `json:"corefile,omitempty"`
}

// Apply returns the edit that makes cm forward the global zone to ip; nil
// when it already does.
func Apply(cm *corev1.ConfigMap, t Target, ip string) (*Change, error) {
	key := t.Key()
	before, existed := cm.Data[key]
	ch := &Change{Target: t, Key: key, KeyExisted: existed, Before: before, IP: ip}
	switch t.Kind {
	case CoreDNS:
		out, edit, err := EnsureGlobal(before, ip)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s key %s: %w", t, key, err)
		}
		if edit == nil {
			return nil, nil
		}
		ch.After, ch.Corefile = out, edit
	case KubeDNS:
		out, changed, err := EnsureStubDomain(before, ip)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", t, err)
		}
		if !changed {
			return nil, nil
		}
		ch.After = out
	case CoreDNSCustom:
		out, edit, err := EnsureGlobal(before, ip)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s key %s: %w", t, key, err)
		}
		if edit == nil {
			return nil, nil
		}
		ch.After, ch.Corefile = out, edit
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
// or stub domain is taken out, and an error explains a block changed
// since, leaving cm as it is.
func (c *Change) Revert(cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	out := cm.DeepCopy()
	cur, ok := out.Data[c.Key]
	if !ok {
		return out, nil
	}
	restore := func(v string) {
		if v == "" && !c.KeyExisted {
			delete(out.Data, c.Key)
			return
		}
		out.Data[c.Key] = v
	}
	if cur == c.After {
		restore(c.Before)
		return out, nil
	}
	switch c.Target.Kind {
	case KubeDNS:
		v, ok, err := RemoveStubDomain(cur, c.IP)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", c.Target, err)
		}
		if !ok {
			return nil, fmt.Errorf("ConfigMap %s: the global stub domain no longer points at %s; it was changed after kubectl mesh wrote it, remove it by hand", c.Target, c.IP)
		}
		if v == "{}" && !c.KeyExisted {
			v = ""
		}
		restore(v)
	default:
		if c.Corefile == nil {
			return nil, fmt.Errorf("ConfigMap %s: the record of the Corefile edit is missing; remove the global block by hand", c.Target)
		}
		v, err := RemoveGlobal(cur, *c.Corefile)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s key %s: %w", c.Target, c.Key, err)
		}
		restore(v)
	}
	return out, nil
}

// Forwarding returns the nameservers cm forwards the global zone to.
func Forwarding(cm *corev1.ConfigMap, t Target) ([]string, error) {
	v := cm.Data[t.Key()]
	if t.Kind == KubeDNS {
		return StubDomainForwarding(v)
	}
	return GlobalForwarding(v)
}

// Compose is the change that goes from the state before older to the
// state after newer, for a key edited twice (e.g. a new istiocoredns IP):
// undoing it restores the text from before the first edit.
func Compose(older, newer *Change) *Change {
	if older == nil || older.Target != newer.Target || older.Key != newer.Key {
		return newer
	}
	out := *newer
	out.KeyExisted, out.Before = older.KeyExisted, older.Before
	if older.Corefile != nil && newer.Corefile != nil {
		out.Corefile = &CorefileEdit{Removed: older.Corefile.Removed, Added: newer.Corefile.Added, NewlineAdded: older.Corefile.NewlineAdded}
	}
	return &out
}
