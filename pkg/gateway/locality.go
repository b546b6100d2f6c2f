package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// The well-known topology labels of a Node.
const (
	RegionLabel = "topology.kubernetes.io/region"
	ZoneLabel   = "topology.kubernetes.io/zone"
)

// Locality finds region[/zone] of the gateway a remote caller reaches:
// the nodes its pods run on, or, when it has no scheduled pods, the
// cluster's nodes when they all agree. It returns "" when the nodes say
// nothing (or disagree on the region), and how it was found.
func Locality(ctx context.Context, kube kubernetes.Interface, a Address) (locality, how string, err error) {
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		return "", "", fmt.Errorf("listing Nodes is forbidden (%w); pass --locality REGION[/ZONE]", err)
	}
	if err != nil {
		return "", "", fmt.Errorf("list Nodes for the gateway's locality: %w", err)
	}
	byName := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		byName[n.Name] = n
	}
	var onGateway []corev1.Node
	if ns, name, ok := strings.Cut(a.Service, "/"); ok && len(a.Selector) > 0 {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(a.Selector).String()})
		if err != nil && !apierrors.IsForbidden(err) {
			return "", "", fmt.Errorf("list the pods of gateway Service %s/%s: %w", ns, name, err)
		}
		if err == nil {
			for _, p := range pods.Items {
				if n, ok := byName[p.Spec.NodeName]; ok {
					onGateway = append(onGateway, n)
				}
			}
		}
	}
	if len(onGateway) > 0 {
		return commonLocality(onGateway), "the nodes of the gateway's pods", nil
	}
	return commonLocality(nodes.Items), "the cluster's nodes", nil
}

// commonLocality is the region shared by all nodes, with the zone when
// they share it too; "" when any node lacks the region or they differ.
func commonLocality(nodes []corev1.Node) string {
	if len(nodes) == 0 {
		return ""
	}
	var regions, zones []string
	for _, n := range nodes {
		regions = append(regions, n.Labels[RegionLabel])
		zones = append(zones, n.Labels[ZoneLabel])
	}
	regions, zones = slices.Compact(slices.Sorted(slices.Values(regions))), slices.Compact(slices.Sorted(slices.Values(zones)))
	if len(regions) != 1 || regions[0] == "" {
		return ""
	}
	if len(zones) == 1 && zones[0] != "" {
		return regions[0] + "/" + zones[0]
	}
	return regions[0]
}
