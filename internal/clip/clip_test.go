package clip

import "testing"

func TestTo(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "abc", 8, "abc"},
		{"exact", "abcdefgh", 8, "abcdefgh"},
		{"cut", "abcdefghij", 8, "abcde…"},
		// "é" is two bytes: a cut inside it moves back to its start.
		{"rune boundary", "aaaaé" + "zzzz", 8, "aaaa…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := To(tc.s, tc.n); got != tc.want {
				t.Errorf("To(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
			if got := To(tc.s, tc.n); len(got) > tc.n {
				t.Errorf("To(%q, %d) has %d bytes", tc.s, tc.n, len(got))
			}
		})
	}
}
