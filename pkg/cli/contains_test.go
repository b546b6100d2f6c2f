package cli

import "testing"

// Contains came from link's own writer, where it tells a client dry run
// whether an apply would change anything.
func TestContains(t *testing.T) {
	have := map[string]any{"a": "1", "b": map[string]any{"c": []any{"x", "y"}, "d": int64(2)}}
	tests := map[string]struct {
		want any
		ok   bool
	}{
		"subset":        {map[string]any{"b": map[string]any{"d": int64(2)}}, true},
		"list equal":    {map[string]any{"b": map[string]any{"c": []any{"x", "y"}}}, true},
		"list differs":  {map[string]any{"b": map[string]any{"c": []any{"x"}}}, false},
		"value differs": {map[string]any{"a": "2"}, false},
		"missing key":   {map[string]any{"z": "1"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Contains(have, tc.want); got != tc.ok {
				t.Fatalf("Contains(%v, %v) = %v", have, tc.want, got)
			}
		})
	}
}
