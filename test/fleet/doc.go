// Package fleet holds the tests of leakguard's rules and routing on the
// central engines a fleet uses: VictoriaMetrics with vmalert, and Thanos
// (sidecars, Query and Ruler), each sending to a real Alertmanager that routes
// by cluster. The package has no code of its own; see its _test.go files and
// `make fleet`.
package fleet
