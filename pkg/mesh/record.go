package mesh

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// RecordPrefix starts the name of every link record ConfigMap.
const RecordPrefix = "mesh-link-"

// RecordKind labels link records so they can be listed.
const (
	RecordLabel = "mesh.kubectl-mesh.io/record"
	RecordLink  = "link"
)

// Keys of a link record ConfigMap. The summary keys are for people reading
// it with kubectl; Key holds the whole record.
const (
	keyPeer     = "peer"
	keyServer   = "server"
	keyGateway  = "gateway"
	keyLinkedAt = "linkedAt"
	keyRecord   = "record.json"
)

// Record is what a cluster remembers about a link to a peer it calls.
type Record struct {
	// Peer is the peer's kubeconfig context (and cluster name).
	Peer string `json:"peer"`
	// Server is the peer's API server URL when linked.
	Server string `json:"server"`
	// Gateway is the peer's gateway, HOST:PORT, and how it was found.
	Gateway     string `json:"gateway"`
	GatewayMode string `json:"gatewayMode,omitempty"`
	// LinkedAt is when link first wrote the record.
	LinkedAt time.Time `json:"linkedAt"`
	// Pending: link writes the record before each change it makes and
	// clears this when it has finished, so a link that failed or was
	// interrupted leaves a pending record of what it may have changed,
	// which unlink reverts and status reports.
	Pending bool `json:"pending,omitempty"`
	// DNS is the edit of this cluster's DNS, if link made one.
	DNS *dns.Change `json:"dns,omitempty"`
	// PendingDNS is a DNS edit link recorded and then may or may not have
	// written; dns.Settle tells from the ConfigMap which edit is in effect.
	PendingDNS *dns.Change `json:"pendingDNS,omitempty"`
	// MeshConfig is the edit of this cluster's Istio mesh config that
	// turned DNS proxying on (--enable-dns-capture), if link made one.
	MeshConfig *meshconfig.Change `json:"meshConfig,omitempty"`
	// PeerGatewayCreated names Gateways link created in the peer.
	PeerGatewayCreated []string `json:"peerGatewayCreated,omitempty"`
	// MultiPrimary is what --multi-primary wrote, if anything.
	MultiPrimary *MultiPrimaryRecord `json:"multiPrimary,omitempty"`
}

// MultiPrimaryRecord is what --multi-primary created.
type MultiPrimaryRecord struct {
	// RemoteSecret is the Secret's name in this cluster's istio-system;
	// ClusterName the peer's cluster name it is keyed by (istiod's
	// clusterName there) and Server the API server address in it.
	RemoteSecret string `json:"remoteSecret"`
	ClusterName  string `json:"clusterName,omitempty"`
	Server       string `json:"server,omitempty"`
	// Reader is the ServiceAccount in the peer's istio-system whose token
	// the remote secret holds. ReaderOwned: it is one of kubectl-mesh's
	// shared readers (ServiceAccount, ClusterRole and ClusterRoleBinding
	// of that name), removed by the last unlink that uses it; otherwise it
	// is Istio's istio-reader-service-account, which stays.
	Reader      string `json:"reader"`
	ReaderOwned bool   `json:"readerOwned,omitempty"`
	// SecretRead says whether the reader may read Secrets (Istio's role
	// does; --no-secret-read drops it).
	SecretRead bool `json:"secretRead,omitempty"`
	// TokenBinding is the Secret in the peer's istio-system the token is
	// bound to; unlink deletes it, which revokes the token.
	TokenBinding string `json:"tokenBinding,omitempty"`
	// TokenExpires is when the token expires.
	TokenExpires *time.Time `json:"tokenExpires,omitempty"`
	// TokenSecret is the token Secret of an older link's per-caller
	// reader (Reader then is kubectl-mesh-reader-<caller>), if one was used.
	TokenSecret string `json:"tokenSecret,omitempty"`
	// Network is the network label change of the peer's istio-system, as
	// an older link recorded it; newer links keep what the label was on
	// the labelled object itself (NetworkBeforeAnnotation) and record
	// here what they set.
	Network *LabelChange `json:"network,omitempty"`
	// NetworkLabelled lists the objects (cluster: kind namespace/name)
	// link labelled with their network.
	NetworkLabelled []string `json:"networkLabelled,omitempty"`
}

// LabelChange is one label set on an object, with what it replaced.
type LabelChange struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Existed bool   `json:"existed"`
	Before  string `json:"before,omitempty"`
}

// RecordName is the ConfigMap name of the record for a peer; contexts
// often hold characters a name may not ("arn:aws:eks:…/x", "user@c").
func RecordName(peer string) string {
	return RecordPrefix + DNSLabel(peer)
}

// DNSLabel turns any string into a valid lower-case DNS-1123 label part.
func DNSLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > validation.DNS1123LabelMaxLength-len(RecordPrefix) {
		out = strings.Trim(out[:validation.DNS1123LabelMaxLength-len(RecordPrefix)], "-")
	}
	if out == "" {
		out = "peer"
	}
	return out
}

// ConfigMap is the record as stored.
func (r Record) ConfigMap() (*corev1.ConfigMap, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      RecordName(r.Peer),
			Namespace: rules.MeshNamespace,
			Labels:    map[string]string{rules.ManagedByLabel: rules.ManagedByValue, RecordLabel: RecordLink},
		},
		Data: map[string]string{
			keyPeer:     r.Peer,
			keyServer:   r.Server,
			keyGateway:  r.Gateway,
			keyLinkedAt: r.LinkedAt.UTC().Format(time.RFC3339),
			keyRecord:   string(b),
		},
	}, nil
}

// RecordFromConfigMap reads a stored record.
func RecordFromConfigMap(cm *corev1.ConfigMap) (Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(cm.Data[keyRecord]), &r); err != nil {
		return Record{}, fmt.Errorf("link record %s/%s is damaged (%w); delete it and run kubectl mesh link again", cm.Namespace, cm.Name, err)
	}
	return r, nil
}

// SameLink reports whether two records describe the same state, ignoring
// when they were written, so that re-running link writes nothing.
func (r Record) SameLink(o Record) bool {
	r.LinkedAt, o.LinkedAt = time.Time{}, time.Time{}
	a, errA := json.Marshal(r)
	b, errB := json.Marshal(o)
	return errA == nil && errB == nil && string(a) == string(b)
}

// NamespaceObject is the records' namespace.
func NamespaceObject() *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: rules.MeshNamespace, Labels: map[string]string{rules.ManagedByLabel: rules.ManagedByValue}},
	}
}
