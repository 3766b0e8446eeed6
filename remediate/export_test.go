package remediate

// BuiltinRegistry is remediate/builtin.Registry, set by builtin_test.go
// (package remediate_test, in this package's test binary): the engine's
// tests run the policies leakguard ships, with the checks and
// remediators it ships, but the engine package itself imports none of
// them, and an internal test cannot import builtin (builtin imports the
// engine).
var BuiltinRegistry func() *Registry

// shippedRegistry is the registry of the engine's tests: everything that
// leakguard ships.
func shippedRegistry() *Registry {
	if BuiltinRegistry == nil {
		panic("remediate tests: BuiltinRegistry is not set (builtin_test.go sets it)")
	}
	return BuiltinRegistry()
}
