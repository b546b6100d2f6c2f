// Package meshconfig owns Istio's DNS proxying setting in the mesh config
// ConfigMap: finding that ConfigMap (istio-system/istio, or istio-<revision>
// for a revisioned install), reading whether
// defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE is on, switching it on,
// and undoing exactly that. It also reads the mesh ID status compares
// across the clusters of a multi-primary mesh.
//
// Istio 1.8 removed istiocoredns; since then sidecars answer DNS for
// ServiceEntry hosts themselves when DNS proxying is on, so this setting is
// what makes `.global` names resolve.
//
// The mesh config is a YAML document other people edit too, so it is edited
// as a yaml.v3 node tree (keeping comments, key order and everything else)
// and every edit is recorded as a Change holding the exact text before and
// after. Undoing an untouched edit restores the text byte for byte; undoing
// after someone else edited the document puts back only our key and leaves
// their edits alone.
package meshconfig
