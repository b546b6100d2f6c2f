package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// TestMetricsNeedAuthorizedToken runs mesh-webhook with --metrics-secure,
// as the Deployment does: /metrics answers only a client the API server
// authenticates and authorizes for it (ClusterRole
// mesh-webhook-metrics-reader of deploy/webhook).
func TestMetricsNeedAuthorizedToken(t *testing.T) {
	ctx := t.Context()
	c := soloCluster(t, "metrics")
	w, err := c.InstallWebhook(ctx, lab.WebhookOptions{BinDir: binDir, NoPolicy: true, Args: []string{"--metrics-secure=true"}, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })

	rbac, err := lab.ReadManifests("rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rbac {
		if o.GetKind() == "ClusterRole" && o.GetName() == "mesh-webhook-metrics-reader" {
			if _, err := c.Dynamic.Resource(rbacv1.SchemeGroupVersion.WithResource("clusterroles")).Create(ctx, o, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	token := func(sa string) string {
		t.Helper()
		if _, err := c.Kube.CoreV1().ServiceAccounts("foo").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := c.Kube.CoreV1().ServiceAccounts("foo").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, stranger := token("scraper"), token("stranger")
	// Bound before any scrape, so no cached denial stands in the way.
	if _, err := c.Kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mesh-webhook-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: "foo"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Ready (the webhook serves) does not mean the metrics listener is up:
	// it starts beside the webhook server.
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", w.Replicas[0].MetricsAddr, time.Second)
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics of mesh-webhook not listening: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The metrics certificate is self-signed: what is checked here is who
	// may read, not who serves.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	scrape := func(bearer string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+w.Replicas[0].MetricsAddr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for who, tc := range map[string]struct {
		token string
		want  int
	}{
		"anonymous":         {"", http.StatusUnauthorized},
		"an unbound SA":     {stranger, http.StatusForbidden},
		"the bound scraper": {reader, http.StatusOK},
	} {
		if got := scrape(tc.token); got != tc.want {
			t.Errorf("/metrics for %s: HTTP %d, want %d", who, got, tc.want)
		}
	}
	// A token the API server rejects: controller-runtime's filter answers
	// 500 when the TokenReview carries an error, 401 when it does not;
	// either way no metrics.
	if got := scrape("not-a-token"); got == http.StatusOK {
		t.Error("/metrics for a forged token: HTTP 200")
	}
	// Plain HTTP is not served.
	if resp, err := http.Get("http://" + w.Replicas[0].MetricsAddr + "/metrics"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("/metrics answered plain HTTP with --metrics-secure")
		}
	}
}
