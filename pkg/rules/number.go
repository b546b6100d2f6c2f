package rules

// Integer reads an integer field of an object decoded from JSON or YAML,
// whichever decoder delivered it: int64 (the API server's unstructured
// JSON), float64 (encoding/json), int (YAML), int32. A number with a fraction is
// not an integer.
func Integer(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), float64(int64(n)) == n
	}
	return 0, false
}

// PortNumber reads a port number: an Integer in 1-65535. Anything else (0,
// 70000, 1.5, "8000") is not a port number and is never truncated into one.
func PortNumber(v any) (uint32, bool) {
	n, ok := Integer(v)
	if !ok || n < 1 || n > 65535 {
		return 0, false
	}
	return uint32(n), true
}
