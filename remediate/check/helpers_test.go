package check

import (
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/remediate/remediatetest"
)

// testNow is the clock of the checks' tests.
var testNow = remediatetest.Now

func vec(v float64) model.Vector { return remediatetest.Vec(v) }

func alert(status string, labels map[string]string) template.Alert {
	return remediatetest.Alert(status, labels)
}
