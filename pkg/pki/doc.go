// Package pki owns the certificates of a multicluster mesh: a shared root
// CA, one intermediate CA per cluster signed by it (the plug-in CA that
// istiod uses to sign workload certificates), the four files of Istio's
// `cacerts` Secret, and the checks that the files chain correctly. cfssl is
// used as a library for key generation and signing; every certificate it
// produces is checked with Go's crypto/x509 before it is written.
package pki
