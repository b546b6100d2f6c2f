package cli

import (
	"context"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// MaxAttempts bounds the read-modify-write attempts on one object when
// other writers keep changing it.
const MaxAttempts = 5

// LostRace says whether a write lost a race with another writer (a
// Conflict on a resourceVersion precondition, or AlreadyExists on a
// create) and should be recomputed from a fresh read.
func LostRace(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// RetryOnConflict runs attempt until it succeeds, fails for another reason
// than a lost race, or has run MaxAttempts times, and returns its last
// error. attempt reads what it writes afresh when n > 1; last says no
// retry follows, so it can report instead of trying again. The context
// ends the loop between attempts.
func RetryOnConflict(ctx context.Context, attempt func(n int, last bool) error) error {
	for n := 1; ; n++ {
		err := attempt(n, n >= MaxAttempts)
		if err == nil || !LostRace(err) || n >= MaxAttempts {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// ForEach calls fn(i) for i in [0, n) on at most workers goroutines
// (workers < 1: one per item) and returns when every call has.
func ForEach(workers, n int, fn func(i int)) {
	if workers < 1 || workers > n {
		workers = n
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
