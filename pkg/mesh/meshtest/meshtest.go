// Package meshtest holds the objects of one working export, shared by the
// tests of pkg/mesh's checks and of status's gathering (pkg/status): the
// caller's `.global` entry of httpbin.bar from cluster2, its rule with the
// source's SNIs, and the source gateway's *.local passthrough. It imports
// nothing, so pkg/mesh's own tests can use it.
package meshtest

const (
	// HTTPBinEntry is the caller's entry for httpbin.bar from cluster2,
	// as the seed writes it by hand: no DestinationRule goes with it.
	HTTPBinEntry = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-bar, namespace: foo}
spec:
  hosts: [httpbin.bar.global]
  location: MESH_INTERNAL
  resolution: DNS
  addresses: [240.0.0.2]
  ports: [{name: http1, number: 8000, protocol: http}]
  endpoints:
  - {address: 203.0.113.7, labels: {cluster: cluster2}, ports: {http1: 15443}}
`
	// RemoteSNIRule gives HTTPBinEntry the SNIs of the source's Service
	// and of its subset v2.
	RemoteSNIRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-bar-global, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 8000}
      tls: {mode: ISTIO_MUTUAL, sni: outbound_.8000_._.httpbin.bar.svc.cluster.local}
  subsets:
  - name: v2
    labels: {cluster: cluster2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 8000}
        tls: {mode: ISTIO_MUTUAL, sni: outbound_.8000_.v2_.httpbin.bar.svc.cluster.local}
`
	// LocalPassthrough is the source gateway's *.local AUTO_PASSTHROUGH
	// server on 15443.
	LocalPassthrough = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.local"]
`
)
