package annotate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"

	"k8s.io/apimachinery/pkg/types"
)

// Name is the name of the annotate remediator.
const Name = "annotate"

// Annotations that annotate writes on the target.
const (
	AnnotationFinding    = "leakguard.io/finding"
	AnnotationSubject    = "leakguard.io/subject"
	AnnotationValue      = "leakguard.io/value"
	AnnotationSince      = "leakguard.io/since"
	AnnotationRunbookURL = "leakguard.io/runbook-url"
)

// maxValueLen bounds the value annotation taken from an alert's
// description, which is free text.
const maxValueLen = 256

// Annotate marks the target with the finding: the alert name, the pod and
// container it came from, the measured value, when the alert started and
// its runbook, as leakguard.io/* annotations written with a JSON merge
// patch. It changes nothing that runs.
type Annotate struct{}

var _ remediate.Remediator = Annotate{}

// Info declares annotate: any target, not disruptive.
var Info = remediate.RemediatorInfo{
	Name:    Name,
	Targets: []string{remediate.TargetWorkload, remediate.TargetPod, remediate.TargetNode, remediate.TargetAPIServer},
	New:     New,
}

// New builds the annotate remediator; it takes no arguments.
func New(args json.RawMessage) (remediate.Remediator, error) {
	if err := remediate.DecodeArgs(args, &struct{}{}); err != nil {
		return nil, err
	}
	return Annotate{}, nil
}

// Plan writes the annotations. Keys without a value are removed, so that
// a finding does not keep the runbook of a previous one.
func (a Annotate) Plan(t *remediate.Target, f remediate.Finding, _ time.Time) remediate.Plan {
	return remediate.Plan{
		Action: fmt.Sprintf("patch %s annotations %s=%s", t.Object, AnnotationFinding, f.AlertName()),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			return a.apply(ctx, env, t, f)
		},
	}
}

func (Annotate) apply(ctx context.Context, env remediate.Env, t *remediate.Target, f remediate.Finding) (string, error) {
	ann := FindingAnnotations(t, f)
	values := map[string]any{}
	for _, k := range []string{AnnotationFinding, AnnotationSubject, AnnotationValue, AnnotationSince, AnnotationRunbookURL} {
		if v, ok := ann[k]; ok {
			values[k] = v
		} else {
			values[k] = nil
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": values}})
	if err != nil {
		return "", fmt.Errorf("annotate %s: %w", t.Object, err)
	}
	rv, err := remediate.PatchObject(ctx, env.Client, t.Object, types.MergePatchType, patch)
	if err != nil {
		return "", fmt.Errorf("annotate: %w", err)
	}
	t.ResourceVersion = rv
	return fmt.Sprintf("annotated %s with %s", t.Object, ann[AnnotationFinding]), nil
}

// FindingAnnotations returns the annotations annotate writes for f on t.
func FindingAnnotations(t *remediate.Target, f remediate.Finding) map[string]string {
	a := map[string]string{AnnotationFinding: f.AlertName()}
	var subject []string
	if t.Pod != nil && t.Pod.String() != t.Object.String() {
		subject = append(subject, "pod "+t.Pod.Namespace+"/"+t.Pod.Name)
	}
	if c := f.Alert.Labels["container"]; c != "" {
		subject = append(subject, "container "+c)
	}
	if len(subject) > 0 {
		a[AnnotationSubject] = strings.Join(subject, ", ")
	}
	switch {
	case f.Check.HasValue:
		a[AnnotationValue] = f.Check.Summary
	case f.Alert.Annotations["description"] != "":
		a[AnnotationValue] = remediate.Truncate(f.Alert.Annotations["description"], maxValueLen)
	}
	if !f.Alert.StartsAt.IsZero() {
		a[AnnotationSince] = f.Alert.StartsAt.UTC().Format(time.RFC3339)
	}
	if u := f.Alert.Annotations["runbook_url"]; u != "" {
		a[AnnotationRunbookURL] = u
	}
	return a
}
