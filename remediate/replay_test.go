package remediate

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"
)

func TestReplay(t *testing.T) {
	e, cs := newTestEngine(t, engineSetup{opts: func(o *Options) { o.ReadOnly = true }})
	alerts := []template.Alert{
		leakAlert(),
		alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": "n1"}),
		alert("firing", map[string]string{"alertname": "ContainerOOMKilled", "namespace": "kube-system", "pod": "kube-apiserver-cp1", "container": "x"}),
		alert("resolved", map[string]string{"alertname": "ContainerOOMKilled", "namespace": "shop", "pod": "lonely", "container": "x"}),
	}
	var out bytes.Buffer
	if err := Replay(context.Background(), e, alerts, &out); err != nil {
		t.Fatalf("Replay() error: %v", err)
	}
	want := `ALERT                STATUS    TARGET               CHECK                                     GUARDS                                              REMEDIATORS       DECISION  REASON
ContainerMemoryLeak  firing    Deployment shop/web  working-set-slope: 8.0 MiB/h > 1.0 MiB/h  namespace: ok, opt-out: ok, cooldown: ok, rate: ok  annotate dry-run  dry-run   would-act
NodeOrphanCgroups    firing    Node n1              orphan-cgroups: no data                   namespace: ok, opt-out: ok                          -                 held      check-no-data
ContainerOOMKilled   firing    -                    none                                      namespace: held                                     -                 held      namespace-excluded
ContainerOOMKilled   resolved  -                    -                                         -                                                   -                 resolved  -

plans:
  0 ContainerMemoryLeak Deployment shop/web: annotate dry-run: would patch Deployment shop/web annotations leakguard.io/finding=ContainerMemoryLeak

why:
  1 NodeOrphanCgroups Node n1: check orphan-cgroups: no series: no data
  2 ContainerOOMKilled -: namespace kube-system is excluded unless the policy includes it
`
	if got := out.String(); got != want {
		t.Errorf("Replay() table:\n%s\nwant:\n%s", got, want)
	}
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" {
			t.Errorf("Replay() made a %s on %s; want reads only", v, a.GetResource().Resource)
		}
	}
	e2, _ := newTestEngine(t, engineSetup{})
	if err := Replay(context.Background(), e2, alerts, &out); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Replay(writable engine) error = %v, want read-only", err)
	}
}
