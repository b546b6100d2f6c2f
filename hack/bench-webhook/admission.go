package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

const (
	kindMutating   = "MutatingWebhookConfiguration"
	kindValidating = "ValidatingWebhookConfiguration"
	kindPolicy     = "ValidatingAdmissionPolicy"
	kindBinding    = "ValidatingAdmissionPolicyBinding"
)

var gvrs = map[string]schema.GroupVersionResource{
	kindMutating:   {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"},
	kindValidating: {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"},
	kindPolicy:     {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"},
	kindBinding:    {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"},
}

// admission is what the API server calls for a .global ServiceEntry.
type admission struct {
	policy bool         // the ValidatingAdmissionPolicy is bound
	hook   *lab.Webhook // the webhook configurations point at it; nil: none registered
}

// installPolicy creates the ValidatingAdmissionPolicy once; only its
// binding is switched (an unbound policy is not evaluated).
func (b *bench) installPolicy(ctx context.Context) error {
	m, err := manifests(nil)
	if err != nil {
		return err
	}
	return b.put(ctx, m[kindPolicy])
}

// setAdmission registers or deletes the webhook configurations and the
// policy binding, then waits until the API server does what st says.
func (b *bench) setAdmission(ctx context.Context, st admission) error {
	m, err := manifests(st.hook)
	if err != nil {
		return err
	}
	want := map[string]bool{kindBinding: st.policy, kindMutating: st.hook != nil, kindValidating: st.hook != nil}
	for kind, on := range want {
		if on {
			err = b.put(ctx, m[kind])
		} else {
			err = b.dyn.Resource(gvrs[kind]).Delete(ctx, m[kind].GetName(), metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, m[kind].GetName(), err)
		}
	}
	return poll(ctx, time.Minute, "admission switched", func() (bool, string, error) { return b.admissionIs(ctx, st) })
}

// put creates o or replaces the object of its name.
func (b *bench) put(ctx context.Context, o *unstructured.Unstructured) error {
	ri := b.dyn.Resource(gvrs[o.GetKind()])
	o = o.DeepCopy()
	_, err := ri.Create(ctx, o, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	o.SetResourceVersion(cur.GetResourceVersion())
	_, err = ri.Update(ctx, o, metav1.UpdateOptions{})
	return err
}

// admissionIs probes, with dry-run creates, whether the API server
// admits .global ServiceEntries as st says:
//   - the policy is bound iff an entry with location MESH_EXTERNAL is
//     denied by it (the mutating webhook leaves such an entry alone, and
//     the policy runs before validating webhooks);
//   - no webhook is called iff a valid named entry comes back without an
//     allocated address (mutating) and one created with generateName, which
//     the validating webhook denies, is admitted;
//   - st.hook's processes serve both webhooks iff a valid named entry comes
//     back with an address and both their admission counters grew.
func (b *bench) admissionIs(ctx context.Context, st admission) (bool, string, error) {
	bad := entry("probe-policy")
	bad.Object["spec"].(map[string]any)["location"] = "MESH_EXTERNAL"
	_, err := b.dryRun(ctx, bad)
	if bound := err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'mesh-global-serviceentries'"); bound != st.policy {
		return false, fmt.Sprintf("policy in force %v (MESH_EXTERNAL probe: %v)", bound, err), nil
	}
	if st.hook == nil {
		got, err := b.dryRun(ctx, entry("probe-off"))
		if err != nil || hasAddress(got) {
			return false, fmt.Sprintf("mutating webhook still called (%v)", err), nil
		}
		gen := entry("")
		gen.SetGenerateName("probe-")
		gen.Object["spec"].(map[string]any)["hosts"] = []any{"probe." + ns + ".global"}
		if _, err := b.dryRun(ctx, gen); err != nil {
			return false, fmt.Sprintf("validating webhook still called (%v)", err), nil
		}
		return true, "", nil
	}
	return b.hookServes(ctx, st.hook)
}

// hookServes reports whether a dry-run create goes through both webhooks
// of w's processes.
func (b *bench) hookServes(ctx context.Context, w *lab.Webhook) (bool, string, error) {
	var before [2]float64
	for i, h := range []string{"mutate", "validate"} {
		n, err := admissionsOf(ctx, w, h)
		if err != nil {
			return false, "", err
		}
		before[i] = n
	}
	got, err := b.dryRun(ctx, entry("probe-on"))
	if err != nil || !hasAddress(got) {
		return false, fmt.Sprintf("no address allocated (%v)", err), nil
	}
	for i, h := range []string{"mutate", "validate"} {
		n, err := admissionsOf(ctx, w, h)
		if err != nil {
			return false, "", err
		}
		if n <= before[i] {
			return false, fmt.Sprintf("the %s webhook still calls other processes", h), nil
		}
	}
	return true, "", nil
}

func (b *bench) dryRun(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return b.dyn.Resource(rules.ServiceEntryGVR).Namespace(ns).Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

func hasAddress(o *unstructured.Unstructured) bool {
	a, _, _ := unstructured.NestedSlice(o.Object, "spec", "addresses")
	return len(a) > 0
}
