package transient

import (
	"errors"
	"fmt"
	"testing"
)

type flagged bool

func (f flagged) Error() string   { return "flagged" }
func (f flagged) Transient() bool { return bool(f) }

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"transient", flagged(true), true},
		{"says no", flagged(false), false},
		{"wrapped", fmt.Errorf("outer: %w", flagged(true)), true},
		{"joined", errors.Join(errors.New("x"), flagged(true)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Is(tc.err); got != tc.want {
				t.Errorf("Is(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
