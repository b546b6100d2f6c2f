package link

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// Result is what a step found or did; a step line says it.
type Result string

// Step results of link and unlink.
const (
	OK      Result = "ok"
	Changed Result = "changed"
	Skipped Result = "skipped"
	// Needed: the step found something only the user can set; the warning
	// that follows says what.
	Needed Result = "action needed"
)

// changedIf is the result of a write that may have changed nothing.
func changedIf(changed bool) Result {
	if changed {
		return Changed
	}
	return OK
}

// StepLog prints one line per step and warnings, and keeps the objects
// that are (or would be) written for -o.
type StepLog struct {
	// Out gets the step lines, ErrOut the warnings.
	Out, ErrOut io.Writer
	// DryRun words changes as a dry run's.
	DryRun cli.DryRun
	// Collect keeps the objects written; with -o they are printed instead
	// of being described only in the step lines.
	Collect bool
	objects []runtime.Object
}

// Line prints one step's result.
func (l *StepLog) Line(cluster string, r Result, step, detail string) {
	result := string(r)
	if r == Changed {
		result += l.DryRun.Suffix()
	}
	fmt.Fprintf(l.Out, "%-9s %-20s %-17s %s\n", cluster, step, result, detail)
}

// Warnf prints a warning about a cluster.
func (l *StepLog) Warnf(cluster, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprintf(l.ErrOut, "Warning: %s: %s", cluster, msg)
}

// Object keeps a copy of an object that is (or would be) written.
func (l *StepLog) Object(obj runtime.Object) {
	if l.Collect {
		l.objects = append(l.objects, obj.DeepCopyObject())
	}
}

// Objects are the objects kept, in the order they were written.
func (l *StepLog) Objects() []runtime.Object { return l.objects }
