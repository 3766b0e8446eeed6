// Command leaker is the lab's leaking workload on the real node: it
// allocates memory at a set rate and touches every page, so that the bytes
// count in its cgroup's working set (not only in its address space), until
// the kernel's OOM killer ends it at the container's limit, or until it
// reaches -max and holds there.
//
//	leaker -rate 4Mi                 grows 4 MiB/s until it is killed
//	leaker -rate 512Ki -initial 32Mi starts at 32 MiB, then grows
//	leaker -initial 64Mi -flat       holds 64 MiB and never grows
//	leaker -rate 4Mi -max 100Mi      grows to 100 MiB and holds there
//	leaker -flat -write /data/f -write-size 16Mi
//	                                 writes 16 MiB to /data/f (page cache
//	                                 charged to its memory cgroup), then
//	                                 holds nothing
//	leaker -rate 4Mi -worker         the growth happens in a child process,
//	                                 started again when it is killed, so that
//	                                 an OOM kill leaves PID 1 (and the
//	                                 container) running
//
// Sizes take the suffixes Ki, Mi and Gi. It logs its size every -report.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pageSize is the stride of the writes that make allocated memory
// resident; 4 KiB is the smallest page of every Linux architecture Go
// supports, so a write per 4 KiB touches every page.
const pageSize = 4096

// size is a byte count flag that accepts Ki, Mi and Gi suffixes.
type size int64

func (s *size) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *size) Set(v string) error {
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a non-negative integer with an optional Ki, Mi or Gi suffix", v)
	}
	*s = size(n * mult)
	return nil
}

func main() {
	var rate, initial, max size
	flag.Var(&rate, "rate", "bytes allocated and touched per second")
	flag.Var(&initial, "initial", "bytes allocated and touched at the start")
	flag.Var(&max, "max", "stop growing at this size and hold it (0: grow until killed)")
	flat := flag.Bool("flat", false, "hold -initial and never grow (-rate is ignored)")
	worker := flag.Bool("worker", false, "grow in a child process, started again whenever it dies")
	interval := flag.Duration("interval", 250*time.Millisecond, "allocate rate*interval bytes at each interval")
	report := flag.Duration("report", 10*time.Second, "log the size this often")
	restartDelay := flag.Duration("restart-delay", 5*time.Second, "with -worker: wait this long before starting a dead child again")
	write := flag.String("write", "", "at the start, write -write-size bytes to this file (through FILE.tmp, renamed when written)")
	var writeSize size
	flag.Var(&writeSize, "write-size", "bytes written to -write")
	flag.Parse()
	log.SetFlags(log.LUTC | log.Ldate | log.Ltime)

	if *write != "" {
		if err := writeFile(*write, int64(writeSize)); err != nil {
			log.Fatalf("write %s: %v", *write, err)
		}
		log.Printf("wrote %d B to %s", writeSize, *write)
	}

	if *worker {
		superviseWorker(*restartDelay)
		return
	}

	var held [][]byte
	total := int64(0)
	grow := func(n int64) {
		if max > 0 && total+n > int64(max) {
			n = int64(max) - total
		}
		if n <= 0 {
			return
		}
		b := make([]byte, n)
		for i := 0; i < len(b); i += pageSize {
			b[i] = 1
		}
		held = append(held, b)
		total += n
	}
	grow(int64(initial))
	log.Printf("pid %d started: initial %d B, rate %d B/s, max %d B, flat %t", os.Getpid(), initial, rate, max, *flat)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	logTick := time.NewTicker(*report)
	defer logTick.Stop()
	start := time.Now()
	for {
		select {
		case <-stop:
			log.Printf("stopping at %d B", total)
			return
		case <-logTick.C:
			log.Printf("holding %d B in %d chunks", total, len(held))
		case now := <-tick.C:
			if *flat || rate == 0 {
				continue
			}
			// Allocate what the rate owes since the start rather than a
			// fixed amount per tick, so that late ticks on a loaded
			// machine do not slow the leak down.
			owed := int64(initial) + int64(float64(rate)*now.Sub(start).Seconds())
			grow(owed - total)
		}
	}
}

// superviseWorker runs this program again without -worker as a child and
// starts it again after delay whenever it exits, until SIGTERM or SIGINT.
// The container's PID 1 is this supervisor, which allocates nothing: an
// OOM kill takes the child and the container goes on running.
func superviseWorker(delay time.Duration) {
	var args []string
	for _, a := range os.Args[1:] {
		if a != "-worker" && a != "--worker" && !strings.HasPrefix(a, "-worker=") && !strings.HasPrefix(a, "--worker=") {
			args = append(args, a)
		}
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatalf("find this program: %v", err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for {
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatalf("start the worker: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-stop:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-done
			return
		case err := <-done:
			log.Printf("worker pid %d ended: %v; starting another in %s", cmd.Process.Pid, err, delay)
		}
		select {
		case <-stop:
			return
		case <-time.After(delay):
		}
	}
}

// writeFile writes n bytes to path.tmp and renames it to path, so that
// path appears only once all of it is in the page cache.
func writeFile(path string, n int64) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for left := n; left > 0; {
		m := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:m]); err != nil {
			f.Close()
			return err
		}
		left -= m
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
