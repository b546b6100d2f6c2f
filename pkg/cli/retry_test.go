package cli

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestRetryOnConflict(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "cm", errors.New("changed"))
	t.Run("a lost race is retried, then succeeds", func(t *testing.T) {
		n := 0
		err := RetryOnConflict(context.Background(), func(i int, _ bool) error {
			n = i
			if i < 3 {
				return conflict
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
	})
	t.Run("gives up after MaxAttempts, telling the last attempt", func(t *testing.T) {
		n, lastSeen := 0, false
		err := RetryOnConflict(context.Background(), func(i int, last bool) error {
			n, lastSeen = i, last
			return conflict
		})
		if !apierrors.IsConflict(err) || n != MaxAttempts || !lastSeen {
			t.Fatalf("err %v, %d attempts, last %v", err, n, lastSeen)
		}
	})
	t.Run("another error is not retried", func(t *testing.T) {
		n := 0
		err := RetryOnConflict(context.Background(), func(i int, _ bool) error { n = i; return errors.New("forbidden") })
		if err == nil || n != 1 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
	})
}

func TestForEachBoundsWorkers(t *testing.T) {
	var running, peak, done atomic.Int32
	block := make(chan struct{})
	go func() {
		for done.Load() < 10 {
			if running.Load() == 3 {
				close(block)
				return
			}
		}
	}()
	ForEach(3, 10, func(int) {
		r := running.Add(1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		<-block
		running.Add(-1)
		done.Add(1)
	})
	if done.Load() != 10 || peak.Load() != 3 {
		t.Fatalf("ran %d, peak %d workers; want 10 and 3", done.Load(), peak.Load())
	}
}
