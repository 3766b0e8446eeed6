package remediate

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Names of the profile remediator (remediate/profile) that this test
// meets.
const (
	AnnotationPprofPort  = "leakguard.io/pprof-port"
	ReasonNoProfileStore = "no-profile-store"
)

const profileRestartPolicy = `
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators:
      - name: annotate
      - name: profile
        args: {required: %v}
      - name: restart
        enabled: true
`

// A policy entry orders profile before restart: a profile that fails
// (here: the pod opts in, but no profile directory is configured)
// is held and the restart goes on, unless the entry makes it required.
func TestProfileBeforeRestart(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required %v", required), func(t *testing.T) {
			objs := restartFixtures(func(objs []runtime.Object) {
				for _, o := range objs {
					if p, ok := o.(*corev1.Pod); ok && p.Name == "web-7d9-abcde" {
						p.Annotations = map[string]string{AnnotationPprofPort: "6060"}
					}
				}
			})
			e, cs := newTestEngine(t, engineSetup{objs: objs, policy: fmt.Sprintf(profileRestartPolicy, required), opts: func(o *Options) { o.Querier = confirmingQuerier{} }})
			d, err := e.DecideOne(context.Background(), leakAlert())
			if len(d.Remediators) != 3 {
				t.Fatalf("remediators %+v", d.Remediators)
			}
			prof, restart := d.Remediators[1], d.Remediators[2]
			dep, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
			restarted := dep.Spec.Template.Annotations[AnnotationRestartedAt] != ""
			if !required {
				if err != nil || prof.Result != ResultHeld || !strings.HasPrefix(prof.Detail, ReasonNoProfileStore) || restart.Result != ResultActed || !restarted {
					t.Errorf("decision %s (%v): profile %+v, restart %+v, restarted %v; want profile held, restart acted", d.Decision, err, prof, restart, restarted)
				}
				return
			}
			if err == nil || d.Decision != DecisionError || prof.Result != ResultFailed || restart.Result == ResultActed || restarted {
				t.Errorf("decision %s (%v): profile %+v, restart %+v, restarted %v; want profile failed and no restart", d.Decision, err, prof, restart, restarted)
			}
		})
	}
}
