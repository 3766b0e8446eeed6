// Package check holds the checks that leakguard ships, one file each: a
// check re-asks Prometheus whether an alert's finding still holds before
// the engine acts (remediate.Check). remediate/builtin registers them
// under the names the policy uses. See README.md beside this file, and
// docs/extending.md to add one.
package check
