package profile

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
	"github.com/prometheus/common/model"
)

// topObjects is how many object kinds the apiserver's summary names.
const topObjects = 5

// objectsQuery is the PromQL query for the object kinds the apiserver
// holds most of: the rules' per-resource object count (whose source is
// apiserver_storage_objects, or apiserver_resource_objects on older
// apiservers), confined to this cluster's series in a fleet.
func (p Profile) objectsQuery() string {
	sel := rules.RecAPIServerObjects
	if p.Cluster != "" {
		label := p.ClusterLabel
		if label == "" {
			label = remediate.DefaultClusterLabel
		}
		sel += fmt.Sprintf("{%s=%q}", label, p.Cluster)
	}
	return fmt.Sprintf("topk(%d, %s)", topObjects, sel)
}

// objects asks Prometheus for the object kinds the apiserver holds most
// of, under Timeout. A query that cannot be answered leaves them out and
// says why; it never fails the profile.
func (p Profile) objects(ctx context.Context, now time.Time) ([]ObjectCount, string) {
	if p.Querier == nil {
		return nil, "no Prometheus to ask"
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	q := p.objectsQuery()
	v, _, _, err := p.Querier.Query(ctx, q, now)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Sprintf("%s: answered a %s, not a vector", q, v.Type())
	}
	var out []ObjectCount
	for _, s := range vec {
		out = append(out, ObjectCount{Resource: string(s.Metric["resource"]), Count: int64(s.Value)})
	}
	if len(out) == 0 {
		return nil, q + ": no series"
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Resource < out[j].Resource
	})
	if len(out) > topObjects {
		out = out[:topObjects]
	}
	return out, ""
}
