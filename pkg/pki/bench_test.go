package pki

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRootAnd10Intermediates measures what `certs root` followed by
// `certs intermediate` for ten clusters costs, per key algorithm. Compare
// the two with benchstat or by their ns/op ratio.
func BenchmarkRootAnd10Intermediates(b *testing.B) {
	for _, spec := range []KeySpec{{Algorithm: KeyRSA, Size: 4096}, {Algorithm: KeyECDSA, Size: 256}} {
		b.Run(fmt.Sprintf("%s-%d", spec.Algorithm, spec.Size), func(b *testing.B) {
			for b.Loop() {
				root, err := NewRoot(RootRequest{Validity: DefaultRootValidity, Key: spec})
				if err != nil {
					b.Fatal(err)
				}
				for i := range 10 {
					if _, err := NewIntermediate(root, IntermediateRequest{Cluster: fmt.Sprintf("cluster%d", i), Validity: DefaultIntermediateValidity, Key: spec}, time.Now()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
