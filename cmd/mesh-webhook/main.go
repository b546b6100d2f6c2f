// Command mesh-webhook is the admission webhook that checks and completes
// every Istio ServiceEntry with a `.global` host and keeps their VIPs unique
// per cluster. See pkg/webhook.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/version"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mesh-webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	o := webhook.NewOptions()
	fs := pflag.NewFlagSet("mesh-webhook", pflag.ContinueOnError)
	o.AddFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == pflag.ErrHelp {
			return nil
		}
		return err
	}
	if *showVersion {
		_, err := fmt.Fprintln(os.Stdout, "mesh-webhook", version.Version)
		return err
	}
	if err := o.Complete(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-o.LogLevel)}))
	if limit := webhook.SetMemoryLimit("/sys/fs/cgroup"); limit > 0 {
		log.Info("memory limit from the cgroup", "softLimitBytes", limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return webhook.Run(ctx, o, log.WithValues("version", version.Version))
}
