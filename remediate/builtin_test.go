package remediate_test

import (
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// The engine's internal tests get what leakguard ships through
// remediate.BuiltinRegistry (export_test.go).
func init() { remediate.BuiltinRegistry = builtin.Registry }
