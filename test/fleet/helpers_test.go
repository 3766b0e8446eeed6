package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

// repoRoot is the module root, two directories up from this package.
const repoRoot = "../.."

// ruleFile is the plain rule file vmalert loads: the generator's, with
// every group at the global interval (TestMain writes it). vmalert's instant
// queries look back only -datasource.queryStep (1m here), so a rule that
// reads a record of the 5m trend group a minute after its evaluation finds
// nothing; generated with --interval=0 --trend-interval=1m, every record is
// at most a minute old (docs/fleets.md).
var ruleFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leakguard-fleet-rules")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		p := rules.DefaultParams()
		p.Interval, p.TrendInterval = 0, model.Duration(time.Minute)
		files, err := rules.Files(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet: generate the rules:", err)
			return 1
		}
		ruleFile = filepath.Join(dir, "rules.yaml")
		if err := os.WriteFile(ruleFile, files[rules.RuleFilePath], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if f := os.Getenv("LEAKGUARD_FLEET_RULES"); f != "" {
			ruleFile = f // another rule file, to compare
		}
		return m.Run()
	}()
	os.Exit(code)
}

// tracesDir is the shared trace suite's cases.
var tracesDir = filepath.Join(repoRoot, "..", "shared", "traces", "cases")

// binary finds an engine binary: in LEAKGUARD_FLEET_BIN (hack/fleet-binaries.sh
// prints it), then on PATH. Missing, the test skips, unless LEAKGUARD_FLEET=1
// (make fleet) or CI is set, when it fails.
func binary(t *testing.T, name, install string) string {
	t.Helper()
	if dir := os.Getenv("LEAKGUARD_FLEET_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("LEAKGUARD_FLEET") == "1" || os.Getenv("CI") != "" {
		t.Fatalf("%s not found (%s); the fleet tests are required here", name, install)
	}
	t.Skipf("%s not found (%s; make fleet finds or builds it)", name, install)
	return ""
}

// alertmanagerBinary is Debian's name for Alertmanager, or upstream's.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus-alertmanager"); err == nil {
		return p
	}
	return binary(t, "alertmanager", "Debian: apt-get install prometheus-alertmanager")
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// loopback is a free loopback address, host:port.
func loopback(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a started engine; its output is logged when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// start runs bin with args until the test ends (killed then, and waited
// for), logging its output if the test failed.
func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit after kill", name)
		}
		if t.Failed() || os.Getenv("LEAKGUARD_FLEET_VERBOSE") != "" {
			t.Logf("%s output (last 6000 bytes):\n%s", name, tail(p.out.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// run runs bin to completion within timeout, failing the test on an error.
func run(t *testing.T, timeout time.Duration, name, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v (timeout %v)\n%s", name, err, timeout, tail(string(out), 6000))
	}
	return string(out)
}

// waitFor polls cond every 200 ms until it is true, failing the test after
// timeout or on an error; exited, when set, fails it early.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error), exited ...*process) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		for _, p := range exited {
			select {
			case err := <-p.done:
				p.done <- err
				t.Fatalf("waiting for %s: %s exited: %v", what, p.name, err)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReady waits until GET url answers 200.
func waitReady(t *testing.T, p *process, url string) {
	t.Helper()
	waitFor(t, 60*time.Second, p.name+" ready", func() (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}, p)
}

// startReady starts a server and waits until GET its ready URL answers 200.
// attempt gives its arguments and that URL, with fresh loopback ports each
// time: a port found free can be taken before the server binds it, and a
// server that exits before it is ready is started again, three times at
// most. One that runs and does not get ready fails the test.
func startReady(t *testing.T, name, bin string, attempt func() (args []string, ready string)) *process {
	t.Helper()
	for i := 1; ; i++ {
		args, ready := attempt()
		p := start(t, name, bin, args...)
		err := awaitReady(p, ready, 60*time.Second)
		if err == nil {
			return p
		}
		if !errors.Is(err, errExited) || i == 3 {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s, attempt %d: %v; output:\n%s", name, i, err, tail(p.out.String(), 2000))
	}
}

var errExited = errors.New("exited before it was ready")

func awaitReady(p *process, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := http.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%w: %v", errExited, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready at %s after %v", url, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// labelString renders a label set as {a="x", b="y"}, sorted, for messages.
func labelString(ls map[string]string) string {
	keys := sortedKeys(ls)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
