package certs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// restartedAtAnnotation is what `kubectl rollout restart` sets on a pod
// template to roll a Deployment.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// afterInstall reports istiod's state and restarts it (and the gateways)
// when asked: istiod reads cacerts only at start-up.
func (in *installer) afterInstall(ctx context.Context, p *installPlan) error {
	name := p.target.Name
	deployments := p.kube.AppsV1().Deployments(rules.IstioSystemNamespace)
	istiod, err := deployments.Get(ctx, "istiod", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err := fmt.Fprintf(in.msg, "%s: istiod is not installed; it will load cacerts when Istio is installed\n", name)
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: read deployment %s/istiod: %w", name, rules.IstioSystemNamespace, err)
	}
	if _, err := fmt.Fprintf(in.msg, "%s: istiod %s\n", name, deploymentState(istiod)); err != nil {
		return err
	}
	if !in.Restart {
		if p.action == actionUnchanged {
			return nil
		}
		_, err := fmt.Fprintf(in.msg, "%s: istiod loads cacerts only at start-up; restart it: kubectl --context %s -n %s rollout restart deployment/istiod (or rerun with --restart)\n", name, p.target.Context, rules.IstioSystemNamespace)
		return err
	}
	toRestart := []appsv1.Deployment{*istiod}
	if in.RestartGateways {
		list, err := deployments.List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("%s: list deployments in %s: %w", name, rules.IstioSystemNamespace, err)
		}
		for _, d := range list.Items {
			if isGateway(&d) {
				toRestart = append(toRestart, d)
			}
		}
	}
	return in.restart(ctx, p, toRestart)
}

// restart rolls the deployments as `kubectl rollout restart` does.
func (in *installer) restart(ctx context.Context, p *installPlan, toRestart []appsv1.Deployment) error {
	body, err := restartPatch(now(in.Now))
	if err != nil {
		return err
	}
	deployments := p.kube.AppsV1().Deployments(rules.IstioSystemNamespace)
	opts := metav1.PatchOptions{FieldManager: rules.FieldManager, DryRun: in.DryRun.Options()}
	for _, d := range toRestart {
		if _, err := deployments.Patch(ctx, d.Name, types.StrategicMergePatchType, body, opts); err != nil {
			return fmt.Errorf("%s: restart deployment %s/%s: %w", p.target.Name, rules.IstioSystemNamespace, d.Name, err)
		}
		if _, err := fmt.Fprintf(in.msg, "%s: deployment %s/%s restarted%s\n", p.target.Name, rules.IstioSystemNamespace, d.Name, in.DryRun.Suffix()); err != nil {
			return err
		}
	}
	return nil
}

// restartPatch is the patch `kubectl rollout restart` sends.
func restartPatch(at time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{restartedAtAnnotation: at.Format(time.RFC3339)},
		}}},
	})
}

// isGateway recognises Istio's gateway Deployments by the labels Istio's
// charts give them.
func isGateway(d *appsv1.Deployment) bool {
	switch d.Labels["istio"] {
	case "ingressgateway", "egressgateway":
		return true
	}
	switch d.Labels["app"] {
	case "istio-ingressgateway", "istio-egressgateway":
		return true
	}
	return false
}

// deploymentState says honestly whether a Deployment's pods run.
func deploymentState(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ReadyReplicas == 0 {
		return fmt.Sprintf("is installed but not running (0/%d replicas ready)", want)
	}
	return fmt.Sprintf("is running (%d/%d replicas ready)", d.Status.ReadyReplicas, want)
}
