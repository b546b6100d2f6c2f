package export

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSelectServices(t *testing.T) {
	items := []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}},
	}
	got, err := selectServices(items, []string{"b", "missing"}, "", false)
	if err != nil || len(got) != 1 || got["b"] == nil {
		t.Errorf("selectServices(named b, missing) = %v, %v; want only b", got, err)
	}
	got, err = selectServices(items, nil, "", true)
	if err != nil || len(got) != 2 || got["ext"] != nil {
		t.Errorf("selectServices(--all) = %v, %v; want a and b without the ExternalName Service", got, err)
	}
	if _, err := selectServices(nil, nil, "tier=api", false); err == nil || !strings.Contains(err.Error(), "-l tier=api") {
		t.Errorf("selectServices(no match) error = %v, want one naming -l tier=api", err)
	}
}
