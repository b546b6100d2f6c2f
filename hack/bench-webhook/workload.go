package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

var ipAddrGVR = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ipaddresses"}

// serviceBatch is how many Services exist at once. The lab's API servers
// run with envtest's --service-cluster-ip-range=10.0.0.0/24: 253 usable
// addresses, 10.0.0.1 taken by the kubernetes Service. 200 leaves room for
// addresses whose release is still in flight.
const serviceBatch = 200

// workload creates objects by name and clears them all away again.
type workload struct {
	create func(ctx context.Context, name string) error
	// clear deletes everything created and waits until it is gone.
	clear func(ctx context.Context) error
	batch int // most creates between two clears; 0: no limit
}

// entries creates .global ServiceEntries without addresses, as a user
// would: mesh-webhook, when registered, allocates the VIP and fills the
// endpoint ports. Every case and round uses new names, so VIP claims of
// deleted entries (freed by the webhook's repair loop after its grace
// period) never collide with new ones; the class E VIP space is far larger
// than all the claims a run leaves.
func (b *bench) entries() workload {
	ri := b.dyn.Resource(rules.ServiceEntryGVR).Namespace(ns)
	return workload{
		create: func(ctx context.Context, name string) error {
			_, err := ri.Create(ctx, entry(name), metav1.CreateOptions{})
			return err
		},
		clear: func(ctx context.Context) error {
			if err := ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
				return err
			}
			return poll(ctx, 2*time.Minute, "ServiceEntries deleted", func() (bool, string, error) {
				l, err := ri.List(ctx, metav1.ListOptions{Limit: 1})
				if err != nil {
					return false, "", err
				}
				return len(l.Items) == 0, "some left", nil
			})
		},
	}
}

// entry is the .global ServiceEntry the cases create.
func entry(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"hosts":      []any{name + "." + ns + ".global"},
			"location":   "MESH_INTERNAL",
			"resolution": "DNS",
			"ports":      []any{map[string]any{"name": "http", "number": int64(8000), "protocol": "HTTP"}},
			"endpoints":  []any{map[string]any{"address": "203.0.113.7", "labels": map[string]any{"cluster": "c2"}}},
		},
	}}
}

// services creates ClusterIP Services, at most serviceBatch at once
// (Services have no deletecollection: clear deletes them one by one, at
// the benchmark's concurrency, and waits until their IPs are released).
func (b *bench) services() workload {
	svcs := b.kube.CoreV1().Services(ns)
	return workload{
		create: func(ctx context.Context, name string) error {
			_, err := svcs.Create(ctx, service(name), metav1.CreateOptions{})
			return err
		},
		clear: func(ctx context.Context) error {
			l, err := svcs.List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if err := b.deleteServices(ctx, l.Items); err != nil {
				return err
			}
			return poll(ctx, 2*time.Minute, "Services deleted, their IPs released", func() (bool, string, error) {
				l, err := svcs.List(ctx, metav1.ListOptions{})
				if err != nil || len(l.Items) > 0 {
					return false, fmt.Sprintf("%d Services left", len(l.Items)), err
				}
				n, err := b.ipAddresses(ctx)
				return n <= b.ipBase, fmt.Sprintf("%d IPAddresses, %d before", n, b.ipBase), err
			})
		},
		batch: serviceBatch,
	}
}

func (b *bench) deleteServices(ctx context.Context, items []corev1.Service) error {
	next := make(chan string)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for range b.o.conc {
		wg.Go(func() {
			for name := range next {
				err := b.kube.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("delete Service %s: %w", name, err)
				}
			}
		})
	}
	for _, s := range items {
		next <- s.Name
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // the first error, if any
}

func service(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8000, TargetPort: intstr.FromInt32(8000), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// ipAddresses counts the API server's IPAddress objects (one per allocated
// ClusterIP); -1 when the API is not served.
func (b *bench) ipAddresses(ctx context.Context) (int, error) {
	if b.ipBase < 0 {
		return -1, nil
	}
	l, err := b.dyn.Resource(ipAddrGVR).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return len(l.Items), nil
}
