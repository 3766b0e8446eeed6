package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// binDir returns the binaries' directory, or skips the test without them
// (fails with LEAKGUARD_E2E=1).
func binDir(t *testing.T) string {
	t.Helper()
	dir, err := FindBinaries("../../..")
	if err != nil {
		if os.Getenv("LEAKGUARD_E2E") == "1" {
			t.Fatalf("the e2e binaries are required (LEAKGUARD_E2E=1): %v", err)
		}
		t.Skipf("no e2e binaries: %v; set LEAKGUARD_E2E=1 to make this a failure", err)
	}
	return dir
}

// TestLab starts a lab and checks what the tests rely on: the admin may
// write, a request without credentials is refused, and the server's
// certificate is the lab's own.
func TestLab(t *testing.T) {
	l := New(t, Options{BinDir: binDir(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := l.Admin.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, &configMap, metav1.CreateOptions{}); err != nil {
		t.Errorf("admin create ConfigMap: %v", err)
	}

	anonymous := rest.CopyConfig(l.AdminConfig)
	anonymous.CertData, anonymous.KeyData = nil, nil
	c, err := kubernetes.NewForConfig(anonymous)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("list namespaces without credentials: %v, want 401 Unauthorized", err)
	}

	untrusting := rest.CopyConfig(l.AdminConfig)
	untrusting.CAData = nil
	c, err = kubernetes.NewForConfig(untrusting)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discovery().ServerVersion(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the lab's CA: %v, want a certificate error", err)
	}
}

// TestLabCleansUpAfterFailure runs, in a child process, a test whose
// subtest starts a lab and fails; the child reports whether the lab's
// processes and directory were gone once the subtest had ended.
func TestLabCleansUpAfterFailure(t *testing.T) {
	bin := binDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := helper(ctx, bin, "fail")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child test: %v, want it to fail\n%s", err, out)
	}
	if !strings.Contains(string(out), "after the failed subtest: directory gone, etcd gone, kube-apiserver gone") {
		t.Errorf("the failed test's lab was not cleaned up:\n%s", out)
	}
}

// TestLabDiesWithTestBinary kills, in a child process, a test binary
// whose lab is running, as go test's -timeout or a crash would: the
// lab's processes must not outlive it.
func TestLabDiesWithTestBinary(t *testing.T) {
	bin := binDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := helper(ctx, bin, "hang")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()

	var dir string
	var pids []int
	sc := bufio.NewScanner(stdout)
	for dir == "" && sc.Scan() {
		_, after, ok := strings.Cut(sc.Text(), "lab running: ")
		if !ok {
			continue
		}
		f := strings.Fields(after)
		if len(f) != 3 {
			t.Fatalf("unexpected report %q", sc.Text())
		}
		dir = f[0]
		for _, v := range f[1:] {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("pid in %q: %v", sc.Text(), err)
			}
			pids = append(pids, n)
		}
	}
	if dir == "" {
		t.Fatalf("the child test did not report its lab (scan: %v)", sc.Err())
	}
	// The directory stays behind after SIGKILL; it is in the temporary
	// directory, and this test removes it.
	defer os.RemoveAll(dir)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the killed test binary's lab is still running", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func helper(ctx context.Context, bin, mode string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperLab$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "LEAKGUARD_LAB_HELPER="+mode, "LEAKGUARD_E2E_BIN="+bin)
	return cmd
}

// alive reports whether pid names a process that has not exited (a
// zombie, exited but not yet reaped by its new parent, counts as gone).
func alive(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(status)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestHelperLab is the child of the two tests above.
func TestHelperLab(t *testing.T) {
	mode := os.Getenv("LEAKGUARD_LAB_HELPER")
	bin := os.Getenv("LEAKGUARD_E2E_BIN")
	switch mode {
	case "fail":
		var l *Lab
		t.Run("fails", func(t *testing.T) {
			l = New(t, Options{BinDir: bin})
			t.Fatal("failing on purpose, with the lab running")
		})
		if l == nil {
			t.Fatal("no lab started")
		}
		gone := func(ok bool) string {
			if ok {
				return "gone"
			}
			return "left"
		}
		_, err := os.Stat(l.dir)
		fmt.Printf("after the failed subtest: directory %s, etcd %s, kube-apiserver %s\n",
			gone(errors.Is(err, fs.ErrNotExist)), gone(!alive(l.etcd.cmd.Process.Pid)), gone(!alive(l.apiserver.cmd.Process.Pid)))
	case "hang":
		l := New(t, Options{BinDir: bin})
		fmt.Printf("lab running: %s %d %d\n", l.dir, l.etcd.cmd.Process.Pid, l.apiserver.cmd.Process.Pid)
		// Killed by the parent; the bound keeps an orphan from hanging.
		time.Sleep(time.Minute)
	default:
		t.Skip("run by TestLabCleansUpAfterFailure and TestLabDiesWithTestBinary only")
	}
}

var configMap = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "lab-probe"}, Data: map[string]string{"k": "v"}}
