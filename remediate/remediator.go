package remediate

import (
	"context"
	"time"

	"github.com/prometheus/alertmanager/template"
	"k8s.io/client-go/kubernetes"
)

// Remediator acts on a resolved target. Name is the word the policy uses.
// Remediate must be idempotent: Alertmanager redelivers on 5xx and on its
// repeat interval, and the engine's cooldown only bounds how often it runs.
// It returns a short description of what it did.
type Remediator interface {
	Name() string
	Remediate(ctx context.Context, env Env, t *Target, f Finding) (string, error)
}

// Env is what a remediator acts through.
type Env struct {
	Client kubernetes.Interface
	Now    time.Time
}

// Finding is what the engine knows about the alert it acts on.
type Finding struct {
	Alert template.Alert
	Check Result
}

// AlertName returns the finding's alert name.
func (f Finding) AlertName() string { return f.Alert.Labels["alertname"] }
