package rules

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"iter"
	"net/netip"
	"slices"
	"strings"
)

// DefaultVIPRange is IPv4 class E: never routed on the internet, so a VIP
// taken from it cannot shadow a real destination.
const DefaultVIPRange = "240.0.0.0/4"

// DefaultExcludedRanges are the parts of class E a VIP must never use:
// Istio's own auto-allocation range and the limited broadcast address.
var DefaultExcludedRanges = []string{"240.240.0.0/16", "255.255.255.255/32"}

// VIPSpace is the set of addresses a `.global` ServiceEntry may use: an IPv4
// range minus excluded ranges. The zero value is not usable; build one with
// NewVIPSpace or DefaultVIPSpace.
type VIPSpace struct {
	rng      netip.Prefix
	excluded []netip.Prefix // masked, inside rng, sorted, non-overlapping
	size     uint64
}

// DefaultVIPSpace is class E minus DefaultExcludedRanges.
func DefaultVIPSpace() VIPSpace {
	s, err := NewVIPSpace(DefaultVIPRange, DefaultExcludedRanges)
	if err != nil {
		panic(err) // the defaults are constants
	}
	return s
}

// NewVIPSpace builds a space from a CIDR range and excluded CIDRs. Excluded
// ranges outside the range are ignored; overlapping ones are merged.
func NewVIPSpace(rng string, excluded []string) (VIPSpace, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(rng))
	if err != nil || !p.Addr().Is4() {
		return VIPSpace{}, fmt.Errorf("VIP range %q is not an IPv4 CIDR; use e.g. %s", rng, DefaultVIPRange)
	}
	p = p.Masked()
	var ex []netip.Prefix
	for _, e := range excluded {
		q, err := netip.ParsePrefix(strings.TrimSpace(e))
		if err != nil || !q.Addr().Is4() {
			return VIPSpace{}, fmt.Errorf("excluded VIP range %q is not an IPv4 CIDR; use e.g. %s", e, DefaultExcludedRanges[0])
		}
		q = q.Masked()
		switch {
		case !p.Overlaps(q):
			continue
		case q.Bits() < p.Bits(): // q covers the whole range
			return VIPSpace{}, fmt.Errorf("excluded VIP range %s covers the whole VIP range %s", q, p)
		}
		ex = append(ex, q)
	}
	slices.SortFunc(ex, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	// Drop prefixes nested in an earlier (wider or equal) one.
	merged := ex[:0]
	for _, q := range ex {
		if n := len(merged); n > 0 && merged[n-1].Contains(q.Addr()) {
			continue
		}
		merged = append(merged, q)
	}
	size := prefixSize(p)
	for _, q := range merged {
		size -= prefixSize(q)
	}
	if size == 0 {
		return VIPSpace{}, fmt.Errorf("VIP range %s has no address left after exclusions", p)
	}
	return VIPSpace{rng: p, excluded: merged, size: size}, nil
}

func prefixSize(p netip.Prefix) uint64 { return 1 << (32 - p.Bits()) }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// Range is the configured range.
func (s VIPSpace) Range() netip.Prefix { return s.rng }

// Excluded are the excluded ranges that intersect the range.
func (s VIPSpace) Excluded() []netip.Prefix { return slices.Clone(s.excluded) }

// Size is the number of usable addresses.
func (s VIPSpace) Size() uint64 { return s.size }

// Contains reports whether a is a usable VIP.
func (s VIPSpace) Contains(a netip.Addr) bool {
	if !a.Is4() || !s.rng.Contains(a) {
		return false
	}
	for _, q := range s.excluded {
		if q.Contains(a) {
			return false
		}
	}
	return true
}

// ExcludedBy returns the excluded range that holds a, if any.
func (s VIPSpace) ExcludedBy(a netip.Addr) (netip.Prefix, bool) {
	for _, q := range s.excluded {
		if q.Contains(a) {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// At returns the i-th usable address (0 ≤ i < Size), counting in address
// order and skipping the excluded ranges.
func (s VIPSpace) At(i uint64) netip.Addr {
	v := uint64(u32(s.rng.Addr())) + i%s.size
	for _, q := range s.excluded {
		if uint64(u32(q.Addr())) <= v {
			v += prefixSize(q)
		}
	}
	return addr(uint32(v))
}

// Index is the inverse of At: the position of a usable address.
func (s VIPSpace) Index(a netip.Addr) (uint64, bool) {
	if !s.Contains(a) {
		return 0, false
	}
	v := uint64(u32(a)) - uint64(u32(s.rng.Addr()))
	for _, q := range s.excluded {
		if q.Addr().Less(a) {
			v -= prefixSize(q)
		}
	}
	return v, true
}

// Next returns the usable address after a, wrapping to the start of the
// range. a need not be usable itself.
func (s VIPSpace) Next(a netip.Addr) netip.Addr {
	if i, ok := s.Index(a); ok {
		return s.At(i + 1)
	}
	for b := a.Next(); b.IsValid() && s.rng.Contains(b); {
		if q, ok := s.ExcludedBy(b); ok {
			b = addr(u32(q.Addr()) + uint32(prefixSize(q)-1)).Next()
			continue
		}
		return b
	}
	return s.At(0)
}

// HashIndex is the stable position of host in a space of the given size:
// FNV-1a of the host, so the same host gets the same first candidate on every
// run, in every process and in every cluster.
func HashIndex(host string, size uint64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.ToLower(host)))
	return h.Sum64() % size
}

// Candidate is the first VIP to try for host.
func (s VIPSpace) Candidate(host string) netip.Addr {
	return s.At(HashIndex(host, s.size))
}

// Candidates yields every usable address once, starting at Candidate(host)
// and probing onward in address order with wrap-around.
func (s VIPSpace) Candidates(host string) iter.Seq[netip.Addr] {
	start := HashIndex(host, s.size)
	return func(yield func(netip.Addr) bool) {
		for i := range s.size {
			if !yield(s.At(start + i)) {
				return
			}
		}
	}
}

// All yields every usable address in order.
func (s VIPSpace) All() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for i := range s.size {
			if !yield(s.At(i)) {
				return
			}
		}
	}
}

// String describes the space, e.g. "240.0.0.0/4 except 240.240.0.0/16".
func (s VIPSpace) String() string {
	if len(s.excluded) == 0 {
		return s.rng.String()
	}
	ex := make([]string, len(s.excluded))
	for i, q := range s.excluded {
		ex[i] = q.String()
	}
	return s.rng.String() + " except " + strings.Join(ex, ", ")
}
