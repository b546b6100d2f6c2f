// Package gethook lets a test run code in the middle of what it tests: a
// dynamic client that calls Before ahead of every Get of one resource, so
// that another writer can act between a read and the write that follows
// it. It imports nothing of kubectl-mesh, so every package's tests can use
// it, pkg/vip's own included.
package gethook

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Client is a dynamic client whose Gets of GVR call Before (when set)
// first, outside any lock of the client underneath.
type Client struct {
	dynamic.Interface
	GVR    schema.GroupVersionResource
	Before func()
}

// Resource is the client of gvr, hooked when it is c.GVR.
func (c *Client) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	ri := c.Interface.Resource(gvr)
	if gvr != c.GVR {
		return ri
	}
	return resource{ri, c}
}

type resource struct {
	dynamic.NamespaceableResourceInterface
	c *Client
}

func (r resource) Namespace(ns string) dynamic.ResourceInterface {
	return namespaced{r.NamespaceableResourceInterface.Namespace(ns), r.c}
}

type namespaced struct {
	dynamic.ResourceInterface
	c *Client
}

func (n namespaced) Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*unstructured.Unstructured, error) {
	if n.c.Before != nil {
		n.c.Before()
	}
	return n.ResourceInterface.Get(ctx, name, opts, sub...)
}
