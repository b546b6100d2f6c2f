package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

type orderOptions struct{ calls []string }

func (o *orderOptions) Complete(*cobra.Command, []string) error {
	o.calls = append(o.calls, "complete")
	return nil
}

func (o *orderOptions) Validate() error {
	o.calls = append(o.calls, "validate")
	return errors.New("--to is required")
}

func (o *orderOptions) Run(context.Context) error {
	o.calls = append(o.calls, "run")
	return nil
}

func TestRunEStopsAtValidate(t *testing.T) {
	o := &orderOptions{}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	if err := RunE(o)(cmd, nil); err == nil || strings.Join(o.calls, ",") != "complete,validate" {
		t.Fatalf("RunE = %v after %v; want the Validate error, and Run never called", err, o.calls)
	}
}
