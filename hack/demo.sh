#!/usr/bin/env bash
# The walkthrough behind `make demo`: replays the seed scenario on the lab as
# far as the product goes. Expects bin/ on PATH and KUBECONFIG set to the
# lab's (the Makefile does both).
set -euo pipefail

bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'
[ -t 1 ] || { bold=""; dim=""; reset=""; }
steps=()

step() { echo; echo "${bold}== $*${reset}"; steps+=("$*"); }
run()  { echo "${dim}\$ $*${reset}"; "$@"; }

step "The lab: five API servers (cluster1..3; east, west with a current Istio), one kubeconfig context each"
run kubectl config get-contexts

step "kubectl discovers the plugin on PATH"
run kubectl plugin list --name-only
run kubectl mesh version

step "Every cluster serves Istio's CRDs"
for ctx in cluster1 cluster2 cluster3; do
  run kubectl --context "$ctx" get crd serviceentries.networking.istio.io destinationrules.networking.istio.io -o name
done

step "Gateways: an IP in cluster1, a host name in cluster2, none in cluster3 (NodePort)"
run kubectl get svc -n istio-system istio-ingressgateway --context cluster1 -o wide
run kubectl get svc -n istio-system istio-ingressgateway --context cluster2 -o jsonpath='{.status.loadBalancer.ingress[0].hostname}{"\n"}'
run kubectl get svc -n istio-system istio-ingressgateway --context cluster3 -o jsonpath='{range .spec.ports[*]}{.name}={.nodePort} {end}{"\n"}'

step "Sample apps: sleep (cluster1), httpbin (cluster2), helloworld v1 | v2, v3"
run kubectl --context cluster1 get svc,pods -n foo
run kubectl --context cluster2 get svc,pods -n bar
run kubectl --context cluster2 get pods -n hello -L version

# --- certs: shared root and per-cluster intermediates ---
step "certs: one shared root, an intermediate per cluster, cacerts installed everywhere"
certs_dir=$(mktemp -d)/mesh-certs
run kubectl mesh certs root --dir "$certs_dir" --key-algorithm ecdsa
run kubectl mesh certs intermediate cluster1 cluster2 cluster3 --dir "$certs_dir"
# --force: a previous demo run on the same lab left its own root behind.
run kubectl mesh certs install --dir "$certs_dir" --contexts cluster1,cluster2,cluster3 --force --restart
run kubectl mesh certs verify --contexts cluster1,cluster2,cluster3

# --- link: DNS, trust and gateways between clusters ---
step "link: cluster1 calls cluster2 (CoreDNS) and cluster2 calls cluster1 (kube-dns)"
run kubectl mesh link --from cluster1 --to cluster2 --bidirectional
run kubectl --context cluster1 get configmap coredns -n kube-system -o jsonpath='{.data.Corefile}'
run kubectl --context cluster2 get configmap kube-dns -n kube-system -o jsonpath='{.data.stubDomains}{"\n"}'
echo "(cluster2's gateway passes *.local through: callers send the SNI of cluster2's own services)"
run kubectl --context cluster2 get gateway cross-network-gateway -n istio-system -o jsonpath='{.spec.servers[0].port.number} {.spec.servers[0].tls.mode} {.spec.servers[0].hosts} selector={.spec.selector}{"\n"}'
step "link: a re-run changes nothing; cluster1 also calls cluster3 (NodePort gateway)"
run kubectl mesh link --from cluster1 --to cluster2 --bidirectional
run kubectl mesh link --from cluster1 --to cluster3

# --- export: remote services as .global ServiceEntries ---

step "export: sleep (cluster1) calls httpbin.bar.global in cluster2"
run kubectl mesh export httpbin -n bar --from cluster2 --to cluster1
run kubectl --context cluster1 get serviceentry httpbin-bar -n bar -o yaml
echo "(the .global rule sends cluster2's own name of httpbin, which cluster2's *.local passthrough routes)"
run kubectl --context cluster1 get destinationrule httpbin-bar-global -n bar -o jsonpath='{range .spec.trafficPolicy.portLevelSettings[*]}port {.port.number}: {.tls.mode} sni={.tls.sni}{"\n"}{end}'
step "export: helloworld v2, v3 from cluster2; subsets select the endpoint's cluster label"
run kubectl mesh export helloworld -n hello --from cluster2 --to cluster1
run kubectl --context cluster1 get destinationrule helloworld-hello-global -n hello -o jsonpath='{range .spec.subsets[*]}{.name} -> cluster={.labels.cluster} sni={.trafficPolicy.portLevelSettings[0].tls.sni}{"\n"}{end}'
run kubectl --context cluster2 get destinationrule helloworld-hello-local -n hello -o jsonpath='{range .spec.subsets[*]}{.name} -> version={.labels.version}{"\n"}{end}'

step "route: jason's requests go 70/30 to v2/v3 in cluster2 (through helloworld.hello.global), everyone else to v1 in cluster1"
run kubectl mesh route helloworld -n hello --context cluster1 --when header:end-user=jason --to v2=70,v3=30 --otherwise v1
run kubectl --context cluster1 get virtualservice helloworld-hello-route -n hello -o yaml
run kubectl --context cluster1 get destinationrule helloworld-hello-local -n hello -o jsonpath='{range .spec.subsets[*]}{.name} -> version={.labels.version}{"\n"}{end}'

step "route: regional failover (region-cluster1 -> region-cluster2) with outlier detection, in both clusters"
run kubectl mesh route helloworld -n hello --contexts cluster1,cluster2 --host local --failover region-cluster1=region-cluster2
run kubectl --context cluster2 get destinationrule helloworld-hello-local -n hello -o jsonpath='failover={.spec.trafficPolicy.loadBalancer.localityLbSetting.failover} outlierDetection={.spec.trafficPolicy.outlierDetection}{"\n"}'

step "export: a re-run changes nothing and keeps the VIPs"
run kubectl mesh export helloworld -n hello --from cluster2 --to cluster1

step "export: helloworld v4 from cluster3 (NodePort gateway): the endpoint is a node address and node port"
run kubectl mesh export helloworld -n hello --from cluster3 --to cluster1 --dry-run=client -o jsonpath='{range .items[0].spec.endpoints[*]}{.address}:{.ports.http} cluster={.labels.cluster}{"\n"}{end}'
echo "(cluster1's mesh-webhook allows only gateway port 15443 so far: allow cluster3's node port in its ConfigMap; the webhook and the ValidatingAdmissionPolicy both read it, no restart)"
np=$(kubectl --context cluster3 get svc -n istio-system istio-ingressgateway -o jsonpath='{.spec.ports[?(@.port==15443)].nodePort}')
run kubectl --context cluster1 -n mesh-system patch configmap mesh-webhook-config --type merge -p "{\"data\":{\"allowedGatewayPorts\":\"15443,$np\"}}"
for _ in $(seq 1 50); do
  kubectl mesh export helloworld -n hello --from cluster3 --to cluster1 --dry-run=server >/dev/null 2>&1 && break
  sleep 0.2
done
run kubectl mesh export helloworld -n hello --from cluster3 --to cluster1
run kubectl --context cluster1 get serviceentry helloworld-hello -n hello -o jsonpath='endpoints of cluster1 entry: {range .spec.endpoints[*]}{.labels.cluster}={.address}:{.ports.http} {end}{"\n"}'

# --- webhook: every .global ServiceEntry checked and completed ---
step "mesh-webhook: a seed entry is admitted unchanged and its VIP claimed (cluster3)"
run kubectl --context cluster3 apply -f test/seeds/httpbin-bar.yaml
run kubectl --context cluster3 get vipclaims 240.0.0.2

step "mesh-webhook: an entry with only hosts, ports and an endpoint gets the rest filled in"
run kubectl --context cluster3 apply -f - <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: helloworld-hello, namespace: hello}
spec:
  hosts: [helloworld.hello.global]
  ports: [{name: http, number: 5000, protocol: HTTP}]
  endpoints: [{address: 203.0.113.7, labels: {cluster: cluster2}}]
YAML
run kubectl --context cluster3 get serviceentry -n hello helloworld-hello \
  -o jsonpath='location={.spec.location} resolution={.spec.resolution} addresses={.spec.addresses} endpointPorts={.spec.endpoints[0].ports}{"\n"}'

step "mesh-webhook: an entry reusing a claimed VIP is denied, naming the field and the holder"
denied=$(kubectl --context cluster3 apply -f - 2>&1 <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-copy, namespace: foo}
spec:
  hosts: [httpbin.bar.global]
  addresses: [240.0.0.2]
  ports: [{name: http1, number: 8000, protocol: HTTP}]
  endpoints: [{address: 203.0.113.7, labels: {cluster: cluster2}}]
YAML
) && { echo "unexpectedly admitted"; exit 1; }
echo "$denied"

# --- status: one report for the whole mesh ---
step "status: the whole mesh in one screen, every route with the gateway and SNI it takes (exit code 1 when there is a problem)"
echo "(cluster3's hand-written seed entry has no DestinationRule: status reports it as routing nowhere, with the fix)"
run kubectl mesh status || echo "(kubectl mesh status exited with $?)"
step "status: cluster1's exports land (routes from the caller's SNI to the source gateway and Service)"
run kubectl mesh status --contexts cluster1,cluster2
step "mesh-webhook: a .global subset selecting pod labels (a mistake of published guides) is denied, naming the field and the label to use"
denied=$(kubectl --context cluster1 apply -f - 2>&1 <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-by-version, namespace: bar}
spec:
  host: httpbin.bar.global
  subsets: [{name: v2, labels: {version: v2}}]
YAML
) && { echo "unexpectedly admitted"; exit 1; }
echo "$denied"

step "mesh-webhook: a bare DestinationRule for the hand-written entry gets ISTIO_MUTUAL and the remote SNI of every port (cluster3)"
run kubectl --context cluster3 apply -f - <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld-hello-global, namespace: hello}
spec:
  host: helloworld.hello.global
YAML
run kubectl --context cluster3 get destinationrule helloworld-hello-global -n hello \
  -o jsonpath='mode={.spec.trafficPolicy.tls.mode} {range .spec.trafficPolicy.portLevelSettings[*]}port {.port.number}: {.tls.mode} {.tls.sni}{end}{"\n"}'

step "mesh-webhook: deleting an entry frees its VIP at once; the same address is taken right away"
addr=$(kubectl --context cluster3 get serviceentry helloworld-hello -n hello -o jsonpath='{.spec.addresses[0]}')
run kubectl --context cluster3 delete destinationrule helloworld-hello-global -n hello
run kubectl --context cluster3 delete serviceentry helloworld-hello -n hello
run kubectl --context cluster3 apply -f - <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: helloworld-again, namespace: hello}
spec:
  hosts: [helloworld.hello.global]
  addresses: [$addr]
  ports: [{name: http, number: 5000, protocol: HTTP}]
  endpoints: [{address: 203.0.113.7, labels: {cluster: cluster2}}]
YAML
run kubectl --context cluster3 get vipclaims "$addr" -o jsonpath='{.metadata.name} held by {.spec.serviceEntry.namespace}/{.spec.serviceEntry.name}{"\n"}'
run kubectl --context cluster3 delete serviceentry helloworld-again -n hello

# --- multi-primary, multi-network: Istio's guide on current-Istio clusters ---
step "multi-primary: east and west run a current Istio (no istiocoredns; istiod with its clusterName; an east-west gateway; the network labels)"
for ctx in east west; do
  run kubectl --context "$ctx" get deploy istiod -n istio-system -o jsonpath='{.metadata.name}: CLUSTER_ID={.spec.template.spec.containers[0].env[?(@.name=="CLUSTER_ID")].value}{"\n"}'
  run kubectl --context "$ctx" get svc istio-eastwestgateway -n istio-system -L topology.istio.io/network
done
run kubectl mesh certs intermediate east west --dir "$certs_dir"
run kubectl mesh certs install --dir "$certs_dir" --contexts east,west --force --restart

step "link --multi-primary both ways: each istiod gets a remote secret like istioctl create-remote-secret's; networks; the east-west gateways pass *.local through"
run kubectl mesh link --from east --to west --bidirectional --multi-primary --network east=network1 --network west=network2
run kubectl --context east get secret istio-remote-secret-west -n istio-system \
  -o jsonpath='labels={.metadata.labels} annotations={.metadata.annotations} keys={.data}{"\n"}' | sed -E 's/"west":"[^"]*"/"west":"<kubeconfig>"/'
run kubectl --context west get gateway cross-network-gateway -n istio-system -o jsonpath='{.spec.servers[0].port.number} {.spec.servers[0].tls.mode} {.spec.servers[0].hosts} selector={.spec.selector}{"\n"}'

step "the remote secret's kubeconfig is what istiod uses: it reads west, writes nothing, and (Istio's reader) reads Secrets"
remote_kubeconfig=$(mktemp)
kubectl --context east get secret istio-remote-secret-west -n istio-system -o jsonpath='{.data.west}' | base64 -d > "$remote_kubeconfig"
run kubectl --kubeconfig "$remote_kubeconfig" get svc,endpointslices -n sample
for q in "list services --all-namespaces" "create configmaps -n sample" "delete pods -n sample" "get secrets -n istio-system"; do
  echo "${dim}\$ kubectl --kubeconfig <remote secret> auth can-i $q${reset}"
  # shellcheck disable=SC2086 # q holds several words
  echo "$(kubectl --kubeconfig "$remote_kubeconfig" auth can-i $q || true)"
done

step "status: every remote secret asked of its server as its token; cluster names, mesh IDs, networks, gateways"
run kubectl mesh status --contexts east,west

step "--no-secret-read: a reader with Istio's rules less Secrets (the peer's cacerts key stays unreadable); the old token is revoked"
run kubectl mesh link --from east --to west --multi-primary --network network2 --no-secret-read
kubectl --context east get secret istio-remote-secret-west -n istio-system -o jsonpath='{.data.west}' | base64 -d > "$remote_kubeconfig"
echo "${dim}\$ kubectl --kubeconfig <remote secret> auth can-i get secrets -n istio-system${reset}"
echo "$(kubectl --kubeconfig "$remote_kubeconfig" auth can-i get secrets -n istio-system || true)"
rm -f "$remote_kubeconfig"

step "status catches a broken multi-network path: west's *.local passthrough deleted"
run kubectl --context west delete gateway cross-network-gateway -n istio-system
run kubectl mesh status --contexts east,west || echo "(kubectl mesh status exited with $?)"
run kubectl mesh link --from east --to west --multi-primary --network network2 --no-secret-read

step "unlink --multi-primary: exactly what link added goes (remote secrets, tokens revoked, kubectl-mesh's reader, network labels back); the rest of the link stays"
run kubectl mesh unlink --from east --to west --bidirectional --multi-primary
for ctx in east west; do
  run kubectl --context "$ctx" get ns istio-system -L topology.istio.io/network
done

echo
echo "${bold}Summary${reset}"
for s in "${steps[@]}"; do echo "  ✓ $s"; done
echo
echo "The lab is still running: KUBECONFIG=${KUBECONFIG}"
echo "Stop it with: make lab-down"
