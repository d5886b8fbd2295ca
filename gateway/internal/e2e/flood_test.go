package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashinsight/platform/gateway/internal/e2e/loadtest"
	"github.com/hashinsight/platform/pkg/cpuprio"
)

// floodChildEnv turns this test binary into a login-flood process (see TestMain): the value is
// its floodSpec as JSON. The flood runs in a process of its own, as an attacker's load would,
// so that its garbage collection and goroutine scheduling are not part of the latencies the
// benchmark process measures; it still shares this machine's CPUs with the mesh.
const floodChildEnv = "E2E_FLOOD_CHILD"

// floodSpec is one phase of bad logins.
type floodSpec struct {
	URL string
	// Victims are existing accounts' emails; every other attempt names an unknown account.
	Victims []string
	Rate    int
	Seconds int
	// First numbers the phase's first attempt, so that every phase uses new addresses and
	// unknown emails.
	First int
}

// floodSummary is what a flood process reports of its phase.
type floodSummary struct {
	Sent, Completed, Errors, Dropped int64
	Statuses                         map[int]int64
	P50, P99, Max                    time.Duration
	// MaxLag is how far the flood fell behind its schedule at worst (loadtest.Result.MaxLag).
	MaxLag time.Duration
}

func (s floodSummary) String() string {
	return fmt.Sprintf("sent %d completed %d errors %d dropped %d  behind schedule at most %s  p50 %s p99 %s max %s  statuses %v",
		s.Sent, s.Completed, s.Errors, s.Dropped, s.MaxLag.Round(time.Microsecond), s.P50, s.P99, s.Max, s.Statuses)
}

// badLogins is attempt i of a flood: half of them for the victims, half for unknown accounts,
// every one from its own address in 10.0.0.0/8 (through the trusted proxy) and with its own
// wrong password.
func badLogins(spec floodSpec) loadtest.Do {
	client := loadtest.NewFastClient(30 * time.Second)
	return client.Do(func(i int) loadtest.Request {
		n := spec.First + i
		email := spec.Victims[n%len(spec.Victims)]
		if n%2 == 1 {
			email = fmt.Sprintf("nobody-%d@e2e.test", n)
		}
		return loadtest.Request{
			Method: http.MethodPost,
			URL:    spec.URL + "/api/v1/auth/login",
			Header: [][2]string{
				{"Content-Type", "application/json"},
				{"X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255)},
			},
			Body: fmt.Appendf(nil, `{"email":%q,"password":"wrong-%d"}`, email, n),
		}
	})
}

// runFloodChild is the flood process: it reads its spec from the environment, says "ready",
// starts the flood when a line arrives on stdin and writes its floodSummary as JSON to stdout.
func runFloodChild(raw string) int {
	var spec floodSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad spec %q: %v\n", floodChildEnv, raw, err)
		return 2
	}
	for _, bad := range []struct {
		field string
		is    bool
	}{{"URL", spec.URL == ""}, {"Rate", spec.Rate <= 0}, {"Seconds", spec.Seconds <= 0}, {"Victims", len(spec.Victims) == 0}, {"First", spec.First < 0}} {
		if bad.is {
			fmt.Fprintf(os.Stderr, "%s: bad spec %q: %s missing or out of range\n", floodChildEnv, raw, bad.field)
			return 2
		}
	}
	// An attacker's load generator runs elsewhere; here it shares the CPUs with the mesh, so it
	// takes only CPU time the mesh leaves idle. The run reports whether it still offered the
	// full rate.
	if err := cpuprio.LowerToIdle(19); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", floodChildEnv, err)
		return 1
	}
	do := badLogins(spec)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintf(os.Stderr, "%s: waiting for the start: %v\n", floodChildEnv, err)
		return 1
	}
	r := loadtest.Run(context.Background(), loadtest.Config{Rate: spec.Rate, Duration: time.Duration(spec.Seconds) * time.Second}, do)
	out := floodSummary{Sent: r.Sent, Completed: r.Completed, Errors: r.Errors, Dropped: r.Dropped,
		Statuses: r.Statuses, P50: r.P(0.50), P99: r.P(0.99), Max: r.Hist.Max(), MaxLag: r.MaxLag}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", floodChildEnv, err)
		return 1
	}
	return 0
}

// floodProc is a started flood process, ready to go.
type floodProc struct {
	cmd   *exec.Cmd
	start io.WriteCloser
	out   *bufio.Reader
}

// startFlood starts a flood process for spec (this test binary again) and waits until it is
// ready to send. The process is killed when tb ends unless Wait has reaped it.
func startFlood(tb testing.TB, spec floodSpec) (*floodProc, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floodChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = stdin.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the flood process: %w", err)
	}
	p := &floodProc{cmd: cmd, start: stdin, out: bufio.NewReader(stdout)}
	tb.Cleanup(func() {
		if p.cmd.ProcessState == nil { // not reaped: a benchmark that failed in between
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	if line, err := p.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		return nil, fmt.Errorf("flood process did not get ready: %q %v", line, err)
	}
	return p, nil
}

// Go starts the flood.
func (p *floodProc) Go() error {
	_, err := io.WriteString(p.start, "go\n")
	return err
}

// Wait waits for the flood to end and returns its summary; the process is reaped, so its CPU
// time counts as the driver's.
func (p *floodProc) Wait() (floodSummary, error) {
	var s floodSummary
	decErr := json.NewDecoder(p.out).Decode(&s)
	_ = p.start.Close()
	if err := p.cmd.Wait(); err != nil {
		return s, fmt.Errorf("flood process: %w", err)
	}
	if decErr != nil {
		return s, fmt.Errorf("flood process summary: %w", decErr)
	}
	return s, nil
}
