package remediate

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// maxReads bounds the objects one delivery keeps (a delivery holds up to
// about 5,000 alerts, the body limit); past it the memo starts over.
const maxReads = 256

// reads is what one delivery has read of the objects that alerts share:
// the pods of one Deployment, which an Alertmanager group often delivers
// together, resolve to the same ReplicaSet, Deployment and Namespace, and
// each was read once per alert. Pods are not kept (each alert names its
// own). An object read is kept until the delivery writes anything
// (forget), so that no alert judges an object leakguard has changed since
// it was read; a change made by someone else meanwhile is what the
// claim's resourceVersion precondition and its re-read are for, as for an
// object read a moment earlier. A not-found is kept too; other errors are
// not. A reads belongs to one delivery, whose alerts are decided one after
// the other; a nil *reads reads through.
type reads struct {
	objs map[readKey]readResult
	// namespace is the last namespace label found valid (checkName): the
	// alerts of a delivery are most often of one namespace.
	namespace string
}

type readKey struct{ kind, namespace, name string }

type readResult struct {
	obj metav1.Object
	err error
}

func newReads() *reads { return &reads{objs: map[readKey]readResult{}} }

// get reads the object as getObject does, or returns what this delivery
// read of it.
func (m *reads) get(ctx context.Context, c kubernetes.Interface, kind, ns, name string) (metav1.Object, error) {
	if m == nil || kind == KindPod {
		return GetObject(ctx, c, kind, ns, name)
	}
	k := readKey{kind, ns, name}
	if res, ok := m.objs[k]; ok {
		return res.obj, res.err
	}
	obj, err := GetObject(ctx, c, kind, ns, name)
	if err == nil || apierrors.IsNotFound(err) {
		if len(m.objs) >= maxReads {
			clear(m.objs)
		}
		m.objs[k] = readResult{obj, err}
	}
	return obj, err
}

// forget drops everything read: the delivery has written.
func (m *reads) forget() {
	if m != nil {
		clear(m.objs)
	}
}

// checkNamespace is checkName("namespace", ns), remembering the last
// valid one.
func (m *reads) checkNamespace(ns string) error {
	if m != nil && ns != "" && ns == m.namespace {
		return nil
	}
	if err := checkName("namespace", ns); err != nil {
		return err
	}
	if m != nil {
		m.namespace = ns
	}
	return nil
}
