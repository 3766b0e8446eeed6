package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestEnsureToken: token ensure creates the Secret with a random token
// when absent, leaves an existing one as it is (a token, or one without
// the key: an error, still unchanged), and names the missing rights when
// the API server forbids a request.
func TestEnsureToken(t *testing.T) {
	existing := func(data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "leakguard-webhook-token", Namespace: "leakguard", ResourceVersion: "7"}, Data: data}
	}
	forbid := func(verb string) k8stesting.ReactionFunc {
		return func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "leakguard-webhook-token", errors.New("RBAC: "+verb+" not allowed"))
		}
	}
	for _, tc := range []struct {
		name        string
		objects     []runtime.Object
		reactVerb   string
		wantCreated bool
		wantErr     []string // substrings of the error; none: no error
		wantLog     string
	}{
		{name: "absent: created", wantCreated: true, wantLog: "created the webhook token's Secret"},
		{name: "present: unchanged", objects: []runtime.Object{existing(map[string][]byte{"token": []byte("mine")})}, wantLog: "exists, left unchanged"},
		{name: "present without the key: error, unchanged", objects: []runtime.Object{existing(map[string][]byte{"other": []byte("x"), "another": []byte("y")})},
			wantErr: []string{`without a token under key "token"`, "left unchanged", "(keys: another, other)"}},
		{name: "get forbidden", reactVerb: "get",
			wantErr: []string{"get Secret leakguard/leakguard-webhook-token: forbidden", "get on secrets named leakguard-webhook-token and create on secrets in namespace leakguard", "deploy/components/trial-token"}},
		{name: "create forbidden", reactVerb: "create",
			wantErr: []string{"create Secret leakguard/leakguard-webhook-token: forbidden", "create on secrets in namespace leakguard"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.objects...)
			if tc.reactVerb != "" {
				client.PrependReactor(tc.reactVerb, "secrets", forbid(tc.reactVerb))
			}
			var before []corev1.Secret
			if l, err := client.CoreV1().Secrets("leakguard").List(context.Background(), metav1.ListOptions{}); err == nil {
				before = l.Items
			}
			var logs bytes.Buffer
			token, created, err := ensureToken(context.Background(), client, "leakguard", "leakguard-webhook-token", "token", slog.New(slog.NewTextHandler(&logs, nil)))
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("error %v", err)
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want it to say %q", err, want)
				}
			}
			if created != tc.wantCreated {
				t.Errorf("created = %v, want %v", created, tc.wantCreated)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q, want %q", logs.String(), tc.wantLog)
			}
			if tc.reactVerb != "" {
				return
			}
			after, err := client.CoreV1().Secrets("leakguard").List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantCreated {
				if len(before) == 1 && !bytes.Equal(token, before[0].Data["token"]) {
					t.Errorf("token %q, want the existing Secret's", token)
				}
				if diff := cmp.Diff(before, after.Items); diff != "" {
					t.Errorf("Secrets changed (-before +after):\n%s", diff)
				}
				return
			}
			if len(after.Items) != 1 {
				t.Fatalf("Secrets %+v, want one", after.Items)
			}
			s := after.Items[0]
			raw, err := base64.StdEncoding.DecodeString(string(s.Data["token"]))
			if err != nil || len(raw) != tokenBytes || len(s.Data) != 1 {
				t.Errorf("Secret data %q, want one key token holding %d random bytes, base64 (%v)", s.Data, tokenBytes, err)
			}
			if strings.Contains(logs.String(), string(s.Data["token"])) {
				t.Error("the log holds the token")
			}
			if !bytes.Equal(token, s.Data["token"]) {
				t.Errorf("token %q, want the created Secret's %q", token, s.Data["token"])
			}
		})
	}
}

// TestEnsureTokenRace: a Secret created by someone else between the check
// and the create counts as existing, and is not changed.
func TestEnsureTokenRace(t *testing.T) {
	client := fake.NewClientset()
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "leakguard-webhook-token", Namespace: "leakguard"}, Data: map[string][]byte{"token": []byte("theirs")}}
	client.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if err := client.Tracker().Add(theirs); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, theirs.Name)
	})
	var logs bytes.Buffer
	token, created, err := ensureToken(context.Background(), client, "leakguard", "leakguard-webhook-token", "token", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || created || string(token) != "theirs" {
		t.Fatalf("created %v, token %q, error %v; want theirs left, no error", created, token, err)
	}
	s, err := client.CoreV1().Secrets("leakguard").Get(context.Background(), theirs.Name, metav1.GetOptions{})
	if err != nil || string(s.Data["token"]) != "theirs" {
		t.Errorf("Secret %+v (%v), want theirs unchanged", s, err)
	}
}

// TestTokenUsage: token wants the subcommand ensure and non-empty names.
func TestTokenUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"create"}, {"ensure", "extra"}, {"--namespace=x", "ensure"}, {"ensure", "--secret="}, {"ensure", "--no-such-flag"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"token"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("token %q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

// TestCopyToken: the copy in Alertmanager's namespace is created with the
// same token when absent, left when it holds the same token, and refused
// (unchanged) when it holds another or none, or when forbidden.
func TestCopyToken(t *testing.T) {
	secret := func(token string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "leakguard-webhook-token", Namespace: "monitoring", ResourceVersion: "3"}, Data: map[string][]byte{"token": []byte(token)}}
	}
	for _, tc := range []struct {
		name        string
		objects     []runtime.Object
		forbid      bool
		wantCreated bool
		wantErr     string
		wantLog     string
	}{
		{name: "absent: created", wantCreated: true, wantLog: "copied the webhook token into a new Secret"},
		{name: "same token: unchanged", objects: []runtime.Object{secret("s3cret")}, wantLog: "holds the same token, left unchanged"},
		{name: "another token: error, unchanged", objects: []runtime.Object{secret("other")}, wantErr: "holds another token than leakguard/leakguard-webhook-token: left unchanged"},
		{name: "no token: error, unchanged", objects: []runtime.Object{secret("")}, wantErr: `without a token under key "token"`},
		{name: "forbidden", forbid: true, wantErr: "create on secrets in namespace monitoring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.objects...)
			if tc.forbid {
				client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "leakguard-webhook-token", errors.New("RBAC"))
				})
			}
			var logs bytes.Buffer
			created, err := copyToken(context.Background(), client, "monitoring", "leakguard-webhook-token", "token", []byte("s3cret"), "leakguard", slog.New(slog.NewTextHandler(&logs, nil)))
			if (err != nil) != (tc.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if created != tc.wantCreated || !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("created %v, log %q; want %v, %q", created, logs.String(), tc.wantCreated, tc.wantLog)
			}
			if tc.forbid {
				return
			}
			got, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "monitoring", "leakguard-webhook-token")
			if err != nil {
				t.Fatal(err)
			}
			want := secret("s3cret")
			if len(tc.objects) > 0 {
				want = tc.objects[0].(*corev1.Secret)
			}
			if g := got.(*corev1.Secret); !bytes.Equal(g.Data["token"], want.Data["token"]) || (len(tc.objects) > 0 && g.ResourceVersion != want.ResourceVersion) {
				t.Errorf("Secret %+v, want token %q unchanged", g, want.Data["token"])
			}
		})
	}
}
