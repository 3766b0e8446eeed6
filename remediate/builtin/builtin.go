// Package builtin assembles what leakguard ships: it is the one package
// that imports every check and remediator, registers each under the name
// the policy uses, and passes each constructor what it needs. The
// commands get their registry here; the engine (package remediate)
// imports none of them.
package builtin

import (
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/remediate/node"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/remediate/restart"
)

// Deps are what the shipped plugins need beyond their policy arguments:
// serve builds them from its flags and its client configuration.
type Deps struct {
	// Profile is the profile remediator's store and client
	// configuration.
	Profile profile.Deps
}

// Registry returns a registry with every check and remediator that
// leakguard ships, built without dependencies: enough to validate,
// replay or print a policy (profile then holds: no store).
func Registry() *remediate.Registry { return New(Deps{}) }

// New returns a registry with every check and remediator that leakguard
// ships, passing each constructor its part of deps.
func New(deps Deps) *remediate.Registry {
	r := remediate.NewRegistry()
	for _, c := range []struct {
		name string
		f    remediate.CheckFactory
	}{
		{check.CheckWorkingSetSlope, check.NewWorkingSetSlope},
		{check.CheckOrphanCgroups, check.NewOrphanCgroups},
		{check.CheckAPIServerMemory, check.NewAPIServerMemory},
		{check.CheckNone, check.NewNone},
		{check.CheckDyingCgroups, check.NewDyingCgroups},
	} {
		mustAdd(r.AddCheck(c.name, c.f))
	}
	for _, info := range []remediate.RemediatorInfo{
		annotate.Info,
		restart.Info,
		node.CordonInfo,
		node.DrainInfo,
		profile.Info(deps.Profile),
	} {
		mustAdd(r.AddRemediator(info))
	}
	return r
}

// mustAdd panics on a registration error: the names above are fixed at
// build time, and a duplicate or empty one is a programming error that
// every test of the commands catches.
func mustAdd(err error) {
	if err != nil {
		panic("builtin: " + err.Error())
	}
}
