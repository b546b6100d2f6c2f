package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ErrInterrupted is the cause of a context that NotifyContext cancelled.
var ErrInterrupted = errors.New("interrupted")

// NotifyContext returns a context that the first SIGINT (Ctrl-C) or
// SIGTERM cancels, with ErrInterrupted naming the signal as its cause, so
// that a command stops its requests, undoes what it must and says so. A
// second signal ends the process at once, as it would without this.
func NotifyContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			signal.Stop(signals)
			cancel(fmt.Errorf("%w by %s", ErrInterrupted, signalName(sig)))
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(signals)
			close(done)
			cancel(context.Canceled)
		})
	}
}

// cleanupTimeout bounds the undo that runs after a failure or an interrupt.
const cleanupTimeout = 30 * time.Second

// UndoContext is the context an undo runs in: an interrupt, which cancels
// ctx, must not stop it, but it is bounded.
func UndoContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// WithInterrupt says that a command's failure comes from an interrupt.
func WithInterrupt(ctx context.Context, command string, err error) error {
	if cause := Interrupted(ctx); cause != nil && err != nil {
		return fmt.Errorf("%s %w: %w", command, cause, err)
	}
	return err
}

// Interrupted returns the cause of ctx's end when a signal ended it.
func Interrupted(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrInterrupted) {
		return err
	}
	return nil
}

func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
