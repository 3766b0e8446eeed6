package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReceiverConfigExample checks deploy/alertmanager/receiver.yaml with the
// real Alertmanager's amtool, merged into a minimal configuration (a root
// receiver) with its file paths pointed at temporary files.
func TestReceiverConfigExample(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Skip("amtool not installed (Debian: apt-get install prometheus-alertmanager)")
	}
	example, err := os.ReadFile(filepath.Join("..", "deploy", "alertmanager", "receiver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := string(example)
	for _, path := range []string{
		"/etc/alertmanager/secrets/leakguard-webhook-token/token",
		"/etc/alertmanager/secrets/leakguard-webhook-tls/ca.crt",
	} {
		if !strings.Contains(cfg, path) {
			t.Fatalf("receiver.yaml no longer mentions %s; update this test", path)
		}
		cfg = strings.ReplaceAll(cfg, path, writeFile(t, dir, filepath.Base(path), "x"))
	}
	cfg = strings.Replace(cfg, "route:\n", "route:\n  receiver: people\n", 1) + "  - name: people\n"
	file := writeFile(t, dir, "alertmanager.yml", cfg)
	out, err := exec.Command(amtool, "check-config", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("amtool check-config on receiver.yaml = %v:\n%s", err, out)
	}
	for _, want := range []string{"url: https://leakguard.leakguard.svc:8443" + AlertsPath, "send_resolved: true", "type: Bearer", "credentials_file:"} {
		if !strings.Contains(string(example), want) {
			t.Errorf("receiver.yaml lacks %q", want)
		}
	}
}
