package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// stats are one case's latencies in one round.
type stats struct {
	n        int
	p50, p99 time.Duration
}

func statsOf(lat []time.Duration) stats {
	return stats{n: len(lat), p50: percentile(lat, 50), p99: percentile(lat, 99)}
}

// percentile is the nearest-rank p-th percentile of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printCase(out io.Writer, round int, c benchCase, s stats) {
	label := c.label + strings.Repeat(" ", max(0, 38-utf8.RuneCountInString(c.label)))
	_, _ = fmt.Fprintf(out, "round %d  %-3s %s n %5d  p50 %8.2f ms  p99 %8.2f ms\n", round, c.name, label, s.n, ms(s.p50), ms(s.p99))
}

// ratio is one cN/x ratio at p50 and p99.
type ratio struct {
	name     string
	p50, p99 float64
}

// ratiosOf are, for every c case, cN/d and cN/a at p50 and p99: of the one
// round given, or the median over the rounds given.
func ratiosOf(cases []benchCase, rounds []map[string]stats) []ratio {
	var out []ratio
	for _, c := range cases {
		if c.adm.hook == nil {
			continue
		}
		for _, base := range []string{"d", "a"} {
			var p50, p99 []float64
			for _, r := range rounds {
				p50 = append(p50, float64(r[c.name].p50)/float64(r[base].p50))
				p99 = append(p99, float64(r[c.name].p99)/float64(r[base].p99))
			}
			out = append(out, ratio{name: c.name + "/" + base, p50: median(p50), p99: median(p99)})
		}
	}
	return out
}

func median(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printRatios(out io.Writer, title string, rs []ratio) {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s p50 %.2f p99 %.2f", r.name, r.p50, r.p99)
	}
	_, _ = fmt.Fprintf(out, "%-20s ratios: %s\n", title, strings.Join(parts, " | "))
}
