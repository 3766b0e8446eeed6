package remediate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

func TestCooling(t *testing.T) {
	key := CooldownAnnotation("annotate")
	tests := []struct {
		name string
		ann  map[string]string
		want bool
	}{
		{"none", nil, false},
		{"recent", map[string]string{key: testNow.Add(-time.Minute).Format(time.RFC3339)}, true},
		{"exactly one cooldown ago", map[string]string{key: testNow.Add(-time.Hour).Format(time.RFC3339)}, false},
		{"old", map[string]string{key: testNow.Add(-2 * time.Hour).Format(time.RFC3339)}, false},
		{"future", map[string]string{key: testNow.Add(time.Hour).Format(time.RFC3339)}, true},
		{"garbage", map[string]string{key: "yesterday"}, false},
		{"other remediator", map[string]string{CooldownAnnotation("restart"): testNow.Format(time.RFC3339)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := cooling(tc.ann, "annotate", time.Hour, testNow); got != tc.want {
				t.Errorf("cooling(%v) = %v, want %v", tc.ann, got, tc.want)
			}
		})
	}
}

func deploymentTarget(t *testing.T, cs k8sClient) *Target {
	t.Helper()
	tg, err := ResolveTarget(context.Background(), cs, TargetWorkload, leakAlert())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestClaimCooldownConflicts injects Conflicts on the claim: an unrelated
// change is retried, a claim by someone else backs off, and a target that
// never stops changing gives up with a transient error.
func TestClaimCooldownConflicts(t *testing.T) {
	key := CooldownAnnotation("annotate")
	tests := []struct {
		name string
		// conflicts is how many claims fail before the reactor lets
		// patches through.
		conflicts int
		// otherClaims makes the reactor write another replica's claim
		// before answering Conflict.
		otherClaims   bool
		claimed       bool
		MarkTransient bool
		patches       int
	}{
		{name: "no conflict", conflicts: 0, claimed: true, patches: 1},
		{name: "unrelated change then success", conflicts: 1, claimed: true, patches: 2},
		{name: "another replica claimed first", conflicts: 1, otherClaims: true, claimed: false, patches: 1},
		{name: "keeps changing", conflicts: 99, MarkTransient: true, patches: cooldownAttempts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCluster(t, fixtures()...)
			tg := deploymentTarget(t, cs)
			left := tc.conflicts
			cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if left == 0 {
					return false, nil, nil
				}
				left--
				obj, _ := cs.Tracker().Get(gvrDeployments, "shop", "web")
				m, _ := metaOf(obj)
				m.SetResourceVersion(m.GetResourceVersion() + "0")
				if tc.otherClaims {
					m.SetAnnotations(map[string]string{key: testNow.Add(-time.Second).Format(time.RFC3339)})
				}
				if err := cs.Tracker().Update(gvrDeployments, obj, "shop"); err != nil {
					t.Errorf("tracker update: %v", err)
				}
				return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("modified"))
			})
			results, err := claimCooldowns(context.Background(), cs, tg, []string{"annotate"}, time.Hour, testNow, nil)
			claimed := len(results) == 1 && results[0].claimed
			if claimed != tc.claimed || IsTransient(err) != tc.MarkTransient || (err != nil) != tc.MarkTransient {
				t.Errorf("claimCooldowns() = %+v, %v; want claimed %v, transient error %v", results, err, tc.claimed, tc.MarkTransient)
			}
			if got := len(patches(cs, "deployments")); got != tc.patches {
				t.Errorf("%d patches, want %d", got, tc.patches)
			}
			d := getDeployment(t, cs)
			wantAnn := ""
			switch {
			case tc.claimed:
				wantAnn = testNow.Format(time.RFC3339)
			case tc.otherClaims:
				wantAnn = testNow.Add(-time.Second).Format(time.RFC3339)
			}
			if got := d.GetAnnotations()[key]; got != wantAnn {
				t.Errorf("annotation %s = %q, want %q", key, got, wantAnn)
			}
		})
	}
}

// TestClaimCooldownsOneWrite: the cooldowns of a whole plan are claimed
// in one patch, so two replicas cannot split a plan between them. After a
// Conflict the claim is judged again on the object re-read: a remediator
// another replica claimed meanwhile holds, the rest are claimed together.
func TestClaimCooldownsOneWrite(t *testing.T) {
	plan := []string{"annotate", "restart", "profile"}
	recent := testNow.Add(-time.Second).Format(time.RFC3339)
	tests := []struct {
		name string
		// other is what another replica claims before the reactor
		// answers the first patch with Conflict (nil: no conflict).
		other       []string
		wantClaimed []bool
		patches     int
	}{
		{name: "no conflict", wantClaimed: []bool{true, true, true}, patches: 1},
		{name: "another replica claimed the whole plan", other: plan, wantClaimed: []bool{false, false, false}, patches: 1},
		{name: "another replica claimed one", other: []string{"restart"}, wantClaimed: []bool{true, false, true}, patches: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCluster(t, fixtures()...)
			tg := deploymentTarget(t, cs)
			conflicted := false
			cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if tc.other == nil || conflicted {
					return false, nil, nil
				}
				conflicted = true
				obj, _ := cs.Tracker().Get(gvrDeployments, "shop", "web")
				m, _ := metaOf(obj)
				m.SetResourceVersion(m.GetResourceVersion() + "0")
				ann := map[string]string{}
				for _, name := range tc.other {
					ann[CooldownAnnotation(name)] = recent
				}
				m.SetAnnotations(ann)
				if err := cs.Tracker().Update(gvrDeployments, obj, "shop"); err != nil {
					t.Errorf("tracker update: %v", err)
				}
				return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("modified"))
			})
			results, err := claimCooldowns(context.Background(), cs, tg, plan, time.Hour, testNow, nil)
			if err != nil {
				t.Fatalf("claimCooldowns() error: %v", err)
			}
			ann := getDeployment(t, cs).GetAnnotations()
			for i, name := range plan {
				if results[i].claimed != tc.wantClaimed[i] {
					t.Errorf("%s claimed = %v, want %v", name, results[i].claimed, tc.wantClaimed[i])
				}
				want := testNow.Format(time.RFC3339)
				if !tc.wantClaimed[i] {
					want = recent
					if got := results[i].last.Format(time.RFC3339); got != recent {
						t.Errorf("%s held by the action at %s, want %s", name, got, recent)
					}
				}
				if got := ann[CooldownAnnotation(name)]; got != want {
					t.Errorf("annotation %s = %q, want %q", CooldownAnnotation(name), got, want)
				}
			}
			if got := len(patches(cs, "deployments")); got != tc.patches {
				t.Errorf("%d patches, want %d (one per attempt, whatever the plan's size)", got, tc.patches)
			}
		})
	}
}

func TestReleaseCooldown(t *testing.T) {
	key := CooldownAnnotation("annotate")
	old := testNow.Add(-3 * time.Hour).Format(time.RFC3339)
	objs := fixtures()
	for _, o := range objs {
		if kindOf(o) == KindDeployment {
			o.(interface{ SetAnnotations(map[string]string) }).SetAnnotations(map[string]string{key: old})
		}
	}
	cs := newCluster(t, objs...)
	tg := deploymentTarget(t, cs)
	results, err := claimCooldowns(context.Background(), cs, tg, []string{"annotate"}, time.Hour, testNow, nil)
	if err != nil || !results[0].claimed {
		t.Fatalf("claimCooldowns() = %+v, %v", results, err)
	}
	if err := releaseCooldown(context.Background(), cs, tg, "annotate", results[0]); err != nil {
		t.Fatalf("releaseCooldown() error: %v", err)
	}
	if got := getDeployment(t, cs).GetAnnotations()[key]; got != old {
		t.Errorf("after release %s = %q, want the previous %q", key, got, old)
	}
	if p := string(patches(cs, "deployments")[1].Patch); strings.Contains(p, "resourceVersion\":\"1\"") {
		t.Errorf("release patch %s carries the old resourceVersion", p)
	}
}
