package rules

import (
	"net/netip"
	"strings"
	"testing"

	networkingv1 "istio.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestParseHost(t *testing.T) {
	tests := map[string]struct {
		host, suffix string
		want         Host
		wantErr      string
	}{
		"seed":               {host: "httpbin.bar.global", want: Host{Name: "httpbin", Namespace: "bar", Suffix: "global"}},
		"custom suffix":      {host: "a.b.mesh.example", suffix: "mesh.example", want: Host{Name: "a", Namespace: "b", Suffix: "mesh.example"}},
		"dashes":             {host: "hello-world.my-ns.global", want: Host{Name: "hello-world", Namespace: "my-ns", Suffix: "global"}},
		"empty":              {host: "", wantErr: "is empty"},
		"empty label":        {host: "httpbin..global", wantErr: "empty label"},
		"empty name":         {host: ".bar.global", wantErr: "starts with a dot"},
		"upper case":         {host: "HTTPBIN.bar.global", wantErr: "upper-case"},
		"trailing dot":       {host: "httpbin.bar.global.", wantErr: "ends with a dot"},
		"extra label":        {host: "v1.httpbin.bar.global", wantErr: "want exactly 2"},
		"missing namespace":  {host: "httpbin.global", wantErr: "lacks the namespace"},
		"wildcard":           {host: "*.bar.global", wantErr: "wildcard"},
		"other suffix":       {host: "httpbin.bar.svc.cluster.local", wantErr: "not under .global"},
		"suffix only":        {host: "global", wantErr: "not under .global"},
		"name digit first":   {host: "1httpbin.bar.global", wantErr: "DNS-1035"},
		"namespace too long": {host: "a." + strings.Repeat("n", 64) + ".global", wantErr: "DNS-1123"},
		"underscore":         {host: "http_bin.bar.global", wantErr: "DNS-1035"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseHost(tc.host, tc.suffix)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHost(%q) error = %v, want one containing %q", tc.host, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "<service>.<namespace>.") {
					t.Errorf("ParseHost(%q) error %q does not say what a valid host looks like", tc.host, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHost(%q) = %v", tc.host, err)
			}
			if got != tc.want {
				t.Fatalf("ParseHost(%q) = %+v, want %+v", tc.host, got, tc.want)
			}
			if got.String() != tc.host {
				t.Errorf("round trip: %q → %q", tc.host, got.String())
			}
		})
	}
}

func TestHostHelpers(t *testing.T) {
	h := Host{Name: "httpbin", Namespace: "bar"}
	if got := h.String(); got != "httpbin.bar.global" {
		t.Errorf("String() = %q", got)
	}
	if got := h.LocalHost(); got != "httpbin.bar.svc.cluster.local" {
		t.Errorf("LocalHost() = %q", got)
	}
	for host, want := range map[string]bool{
		"httpbin.bar.global": true, "HTTPBIN.BAR.GLOBAL.": true, "a.b.c.global": true,
		"global": true, "httpbin.bar.svc.cluster.local": false, "globalx": false, "x.notglobal": false,
	} {
		if got := HasSuffix(host, ""); got != want {
			t.Errorf("HasSuffix(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{"", ".global", "global.", "Global", "a_b"} {
		if err := ValidateSuffix(bad); err == nil {
			t.Errorf("ValidateSuffix(%q) = nil, want an error", bad)
		}
	}
	if err := ValidateSuffix("mesh.example"); err != nil {
		t.Errorf("ValidateSuffix(mesh.example) = %v", err)
	}
}

func TestIstioSpellings(t *testing.T) {
	// The constants must be Istio's own enum names.
	pairs := map[string]string{
		LocationMeshInternal:    networkingv1.ServiceEntry_MESH_INTERNAL.String(),
		LocationMeshExternal:    networkingv1.ServiceEntry_MESH_EXTERNAL.String(),
		ResolutionNone:          networkingv1.ServiceEntry_NONE.String(),
		ResolutionStatic:        networkingv1.ServiceEntry_STATIC.String(),
		ResolutionDNS:           networkingv1.ServiceEntry_DNS.String(),
		ResolutionDNSRoundRobin: networkingv1.ServiceEntry_DNS_ROUND_ROBIN.String(),
	}
	for ours, istio := range pairs {
		if ours != istio {
			t.Errorf("constant %q, Istio spells it %q", ours, istio)
		}
	}
}

func mustSpace(t *testing.T, rng string, ex ...string) VIPSpace {
	t.Helper()
	s, err := NewVIPSpace(rng, ex)
	if err != nil {
		t.Fatalf("NewVIPSpace(%s, %v) = %v", rng, ex, err)
	}
	return s
}

func TestDefaultVIPSpace(t *testing.T) {
	s := DefaultVIPSpace()
	if want := uint64(1<<28 - 1<<16 - 1); s.Size() != want {
		t.Fatalf("Size() = %d, want %d", s.Size(), want)
	}
	tests := map[string]bool{
		"240.0.0.2": true, "240.0.0.0": true, "254.255.255.255": true, "255.255.255.254": true,
		"240.239.255.255": true, "240.241.0.0": true,
		"240.240.0.1": false, "240.240.255.255": false, "255.255.255.255": false,
		"10.0.0.1": false, "127.0.0.1": false, "224.0.0.1": false, "239.255.255.255": false,
	}
	for a, want := range tests {
		if got := s.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
	if s.Contains(netip.MustParseAddr("::1")) {
		t.Error("Contains(::1) = true")
	}
	if got := s.String(); got != "240.0.0.0/4 except 240.240.0.0/16, 255.255.255.255/32" {
		t.Errorf("String() = %q", got)
	}
}

func TestVIPSpaceAtIndex(t *testing.T) {
	s := mustSpace(t, "240.0.0.0/28", "240.0.0.4/30", "240.0.0.15/32", "10.0.0.0/8")
	var got []string
	for a := range s.All() {
		got = append(got, a.String())
	}
	want := "240.0.0.0 240.0.0.1 240.0.0.2 240.0.0.3 240.0.0.8 240.0.0.9 240.0.0.10 240.0.0.11 240.0.0.12 240.0.0.13 240.0.0.14"
	if strings.Join(got, " ") != want {
		t.Fatalf("All() = %v, want %s", got, want)
	}
	for i := range s.Size() {
		a := s.At(i)
		j, ok := s.Index(a)
		if !ok || j != i {
			t.Errorf("Index(At(%d)=%s) = %d, %v", i, a, j, ok)
		}
	}
	if _, ok := s.Index(netip.MustParseAddr("240.0.0.5")); ok {
		t.Error("Index(excluded) ok")
	}
	for from, want := range map[string]string{
		"240.0.0.3": "240.0.0.8", "240.0.0.5": "240.0.0.8", "240.0.0.14": "240.0.0.0", "240.0.0.15": "240.0.0.0", "240.0.0.0": "240.0.0.1",
	} {
		if got := s.Next(netip.MustParseAddr(from)); got.String() != want {
			t.Errorf("Next(%s) = %s, want %s", from, got, want)
		}
	}
}

func TestVIPSpaceAtMatchesContainsOnDefault(t *testing.T) {
	s := DefaultVIPSpace()
	// Around the excluded /16 and at both ends.
	edges := []uint64{0, 1, 0xF00000 - 1, 0xF00000, 0xF00001, s.Size() - 1}
	for _, i := range edges {
		a := s.At(i)
		if !s.Contains(a) {
			t.Errorf("At(%d) = %s, not in the space", i, a)
		}
		if j, _ := s.Index(a); j != i {
			t.Errorf("Index(At(%d)) = %d", i, j)
		}
	}
	if got := s.At(0xF00000).String(); got != "240.241.0.0" {
		t.Errorf("first address after the excluded range = %s", got)
	}
	if got := s.At(s.Size() - 1).String(); got != "255.255.255.254" {
		t.Errorf("last address = %s", got)
	}
}

func TestNewVIPSpaceErrors(t *testing.T) {
	tests := map[string]struct {
		rng     string
		ex      []string
		wantErr string
	}{
		"not cidr":     {rng: "240.0.0.0", wantErr: "not an IPv4 CIDR"},
		"ipv6":         {rng: "fd00::/8", wantErr: "not an IPv4 CIDR"},
		"bad excluded": {rng: "240.0.0.0/4", ex: []string{"x"}, wantErr: "excluded VIP range"},
		"covers all":   {rng: "240.0.0.0/24", ex: []string{"240.0.0.0/16"}, wantErr: "covers the whole"},
		"nothing left": {rng: "240.0.0.0/31", ex: []string{"240.0.0.0/32", "240.0.0.1/32"}, wantErr: "no address left"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewVIPSpace(tc.rng, tc.ex)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewVIPSpace(%q, %v) = %v, want error containing %q", tc.rng, tc.ex, err, tc.wantErr)
			}
		})
	}
	// Nested and duplicate exclusions are merged.
	s := mustSpace(t, "240.0.0.0/24", "240.0.0.0/25", "240.0.0.16/28", "240.0.0.0/25")
	if s.Size() != 128 || len(s.Excluded()) != 1 {
		t.Errorf("Size() = %d, Excluded() = %v; want 128 and one range", s.Size(), s.Excluded())
	}
}

func TestCandidateStable(t *testing.T) {
	// Pinned: the first candidate must never change between releases or
	// processes, or clusters allocated by different versions would disagree.
	pinned := map[string]string{
		"httpbin.bar.global":      "247.115.230.194",
		"helloworld.hello.global": "250.33.121.59",
		"sleep.foo.global":        "255.166.85.182",
	}
	s := DefaultVIPSpace()
	for h, want := range pinned {
		if got := s.Candidate(h).String(); got != want {
			t.Errorf("Candidate(%s) = %s, want the pinned %s", h, got, want)
		}
		if got := s.Candidate(strings.ToUpper(h)).String(); got != want {
			t.Errorf("Candidate(%s) is case-sensitive: %s", strings.ToUpper(h), got)
		}
	}
}

func TestCandidatesVisitAll(t *testing.T) {
	s := mustSpace(t, "240.0.0.0/26", "240.0.0.8/29")
	seen := map[netip.Addr]bool{}
	first := true
	for a := range s.Candidates("httpbin.bar.global") {
		if first && a != s.Candidate("httpbin.bar.global") {
			t.Fatalf("Candidates starts at %s, Candidate is %s", a, s.Candidate("httpbin.bar.global"))
		}
		first = false
		if seen[a] || !s.Contains(a) {
			t.Fatalf("Candidates yielded %s twice or outside the space", a)
		}
		seen[a] = true
	}
	if uint64(len(seen)) != s.Size() {
		t.Fatalf("Candidates yielded %d addresses, want %d", len(seen), s.Size())
	}
}

func TestParseVIP(t *testing.T) {
	s := DefaultVIPSpace()
	tests := map[string]string{
		"240.0.0.2":       "",
		"240.0.0.2/32":    "without a prefix length",
		"240.0.0.0/24":    "not a CIDR range",
		"x":               "not an IPv4 address",
		"fd00::1":         "must be an IPv4",
		"127.0.0.1":       "loopback",
		"224.0.0.1":       "multicast",
		"240.240.1.1":     "Istio's own auto-allocation range",
		"255.255.255.255": "broadcast",
		"10.1.2.3":        "outside the VIP range",
	}
	for in, want := range tests {
		_, err := ParseVIP(in, s)
		if want == "" {
			if err != nil {
				t.Errorf("ParseVIP(%q) = %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseVIP(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestValidators(t *testing.T) {
	p := field.NewPath("spec")
	tests := map[string]struct {
		errs      field.ErrorList
		wantField string
		wantMsg   string
	}{
		"host ok":           {errs: ValidateHost("httpbin.bar.global", "", p.Child("hosts").Index(0))},
		"host bad":          {errs: ValidateHost("httpbin.global", "", p.Child("hosts").Index(0)), wantField: "spec.hosts[0]", wantMsg: "<service>.<namespace>.global"},
		"vip ok":            {errs: ValidateVIP("240.0.0.2", DefaultVIPSpace(), p.Child("addresses").Index(0))},
		"vip bad":           {errs: ValidateVIP("10.0.0.2", DefaultVIPSpace(), p.Child("addresses").Index(0)), wantField: "spec.addresses[0]", wantMsg: "leave addresses empty"},
		"port ok":           {errs: ValidateGatewayPort(15443, nil, p.Child("endpoints").Index(0).Key("http1"))},
		"port extra ok":     {errs: ValidateGatewayPort(31443, []uint32{15443, 31443}, p)},
		"port bad":          {errs: ValidateGatewayPort(8000, nil, p.Child("endpoints").Index(0).Child("ports").Key("http1")), wantField: "spec.endpoints[0].ports[http1]", wantMsg: "15443"},
		"port negative":     {errs: ValidateGatewayPort(-1, nil, p), wantField: "spec", wantMsg: "15443"},
		"location unset":    {errs: ValidateLocation("", p.Child("location"))},
		"location internal": {errs: ValidateLocation("MESH_INTERNAL", p.Child("location"))},
		"location external": {errs: ValidateLocation("MESH_EXTERNAL", p.Child("location")), wantField: "spec.location", wantMsg: "MESH_INTERNAL"},
		"resolution dns":    {errs: ValidateResolution("DNS", p.Child("resolution"))},
		"resolution static": {errs: ValidateResolution("STATIC", p.Child("resolution"))},
		"resolution none":   {errs: ValidateResolution("NONE", p.Child("resolution")), wantField: "spec.resolution", wantMsg: "DNS or STATIC"},
		"resolution rr":     {errs: ValidateResolution("DNS_ROUND_ROBIN", p.Child("resolution")), wantField: "spec.resolution", wantMsg: "DNS"},
		"protocol ok":       {errs: ValidateProtocol("http", p)},
		"protocol bad":      {errs: ValidateProtocol("SMTP", p.Child("ports").Index(0).Child("protocol")), wantField: "spec.ports[0].protocol", wantMsg: "GRPC"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.wantField == "" {
				if len(tc.errs) != 0 {
					t.Fatalf("unexpected errors: %v", tc.errs)
				}
				return
			}
			if len(tc.errs) != 1 {
				t.Fatalf("got %d errors (%v), want 1", len(tc.errs), tc.errs)
			}
			e := tc.errs[0]
			if e.Field != tc.wantField || !strings.Contains(e.Error(), tc.wantMsg) {
				t.Fatalf("got %q on %s, want %q on %s", e.Error(), e.Field, tc.wantMsg, tc.wantField)
			}
		})
	}
}

func TestProtocolFor(t *testing.T) {
	tests := []struct{ name, app, want string }{
		{"http", "", "HTTP"}, {"http-web", "", "HTTP"}, {"http2", "", "HTTP2"}, {"grpc", "", "GRPC"},
		{"grpc-web", "", "GRPC-WEB"}, {"grpc-web-x", "", "GRPC-WEB"}, {"tcp-db", "", "TCP"}, {"https", "", "HTTPS"},
		{"tls-x", "", "TLS"}, {"mongo", "", "MONGO"}, {"redis-0", "", "REDIS"}, {"web", "", "TCP"}, {"", "", "TCP"},
		{"http1", "http", "HTTP"}, {"web", "kubernetes.io/h2c", "HTTP2"}, {"web", "kubernetes.io/ws", "HTTP"},
		{"http", "example.com/custom", "HTTP"}, {"web", "GRPC", "GRPC"},
	}
	for _, tc := range tests {
		if got := ProtocolFor(tc.name, tc.app); got != tc.want {
			t.Errorf("ProtocolFor(%q, %q) = %q, want %q", tc.name, tc.app, got, tc.want)
		}
	}
	if !IsProtocol("grpc-web") || IsProtocol("smtp") || len(Protocols()) == 0 {
		t.Error("IsProtocol/Protocols disagree with Istio's list")
	}
}

func TestSNI(t *testing.T) {
	tests := map[string]struct {
		sni  SNI
		want string
	}{
		"no subset":    {SNI{Port: 8000, Host: "httpbin.bar.svc.cluster.local"}, "outbound_.8000_._.httpbin.bar.svc.cluster.local"},
		"subset":       {SNI{Port: 5000, Subset: "v2", Host: "helloworld.hello.svc.cluster.local"}, "outbound_.5000_.v2_.helloworld.hello.svc.cluster.local"},
		"other domain": {SNI{Port: 9080, Subset: "v1", Host: "reviews.shop.svc.corp.internal"}, "outbound_.9080_.v1_.reviews.shop.svc.corp.internal"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.sni.String(); got != tc.want {
				t.Fatalf("%+v.String() = %q, want %q", tc.sni, got, tc.want)
			}
			back, err := ParseSNI(tc.want)
			if err != nil || back != tc.sni {
				t.Fatalf("ParseSNI(%q) = %+v, %v; want %+v", tc.want, back, err, tc.sni)
			}
		})
	}
	if got := RemoteSNI(5000, "v2", "helloworld", "hello", ""); got != "outbound_.5000_.v2_.helloworld.hello.svc.cluster.local" {
		t.Fatalf("RemoteSNI with the default domain = %q", got)
	}
	for _, bad := range []string{"", "httpbin.bar.svc.cluster.local", "outbound_.x_._.a.b.svc.cluster.local", "outbound_.0_._.a.b.svc.cluster.local", "outbound_.80_.a.b", "outbound_.80_._.Not_A_Host"} {
		if _, err := ParseSNI(bad); err == nil || !strings.Contains(err.Error(), "outbound_.<port>_.") {
			t.Errorf("ParseSNI(%q) = %v, want an error that shows the form", bad, err)
		}
	}
}

func TestServiceOfAndGatewayHosts(t *testing.T) {
	if n, ns, d, ok := ServiceOf("httpbin.bar.svc.cluster.local"); !ok || n != "httpbin" || ns != "bar" || d != "cluster.local" {
		t.Fatalf("ServiceOf = %q %q %q %v", n, ns, d, ok)
	}
	for _, bad := range []string{"httpbin.bar.global", "httpbin.bar.svc", "a.b.c.d"} {
		if _, _, _, ok := ServiceOf(bad); ok {
			t.Errorf("ServiceOf(%q) ok", bad)
		}
	}
	host := "httpbin.bar.svc.cluster.local"
	tests := map[string]bool{
		"*": true, "*.local": true, "*/*.local": true, "bar/*.local": true, "foo/*.local": false,
		"./*.local": false, "*.global": false, "httpbin.bar.svc.cluster.local": true, "*.cluster.local": true,
	}
	for pattern, want := range tests {
		if got := MatchesGatewayHost(pattern, "istio-system", host, "bar"); got != want {
			t.Errorf("MatchesGatewayHost(%q, %q) = %v, want %v", pattern, host, got, want)
		}
	}
	if !MatchesGatewayHost("./*.local", "bar", host, "bar") {
		t.Error(`"./*.local" of a Gateway in bar does not match a service of bar`)
	}
}

func TestInteger(t *testing.T) {
	for in, want := range map[any]int64{int64(8000): 8000, 8000: 8000, float64(15443): 15443} {
		if got, ok := Integer(in); !ok || got != want {
			t.Errorf("Integer(%T %v) = %d, %v", in, in, got, ok)
		}
	}
	for _, in := range []any{1.5, "8000", nil, true} {
		if _, ok := Integer(in); ok {
			t.Errorf("Integer(%T %v) is an integer", in, in)
		}
	}
}
