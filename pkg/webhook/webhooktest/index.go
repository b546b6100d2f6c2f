package webhooktest

import (
	"slices"
	"sync"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
)

// Index is an in-memory webhook.Index.
type Index struct {
	mu      sync.Mutex
	entries []webhook.EntryRef
	rules   []rule
}

type rule struct {
	host, namespace string
	exportTo        []string
}

// AddEntry records a ServiceEntry.
func (x *Index) AddEntry(e webhook.EntryRef) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.entries = append(x.entries, e)
}

// AddRule records a DestinationRule for host in namespace.
func (x *Index) AddRule(host, namespace string, exportTo ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rules = append(x.rules, rule{host, namespace, exportTo})
}

// Synced implements webhook.Index.
func (x *Index) Synced() bool { return true }

// Entries implements webhook.Index.
func (x *Index) Entries(host string) []webhook.EntryRef {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []webhook.EntryRef
	for _, e := range x.entries {
		if e.Host == host {
			out = append(out, e)
		}
	}
	return out
}

// Entry implements webhook.Index.
func (x *Index) Entry(host, namespace string) *rules.Entry {
	for _, e := range x.Entries(host) {
		if rules.Visible(e.Namespace, e.ExportTo, namespace) {
			return &e.Entry
		}
	}
	return nil
}

// HasDestinationRule implements webhook.Index.
func (x *Index) HasDestinationRule(host, namespace string, exportTo []string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.ContainsFunc(x.rules, func(r rule) bool {
		return r.host == host && rules.VisibleTogether(r.namespace, r.exportTo, namespace, exportTo)
	})
}
