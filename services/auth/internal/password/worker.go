package password

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashinsight/platform/pkg/cpuprio"
)

// WorkerEnv, set to "1", makes a process a hash worker: the auth binary's main (and the
// TestMain of a test binary that starts a WorkerPool) checks IsWorkerProcess first and then
// runs RunWorkerProcess instead of its normal work.
const WorkerEnv = "HASHINSIGHT_PASSWORD_WORKER"

// WorkerNice is the nice value of a worker's every thread: the lowest priority, so the kernel
// runs a hash only on CPU time nothing else wants.
const WorkerNice = 19

// Defaults of WorkerOptions.
const (
	// DefaultWorkerTimeout bounds one derivation (writing the request to reading the key). A
	// hash takes ≈25 ms of a free core; at the lowest priority on a saturated machine it can
	// take far longer, and a worker that stays silent this long is killed and replaced.
	DefaultWorkerTimeout = 30 * time.Second
	// workerStartTimeout bounds a new worker's hello.
	workerStartTimeout = 10 * time.Second
	// workerStopTimeout is how long Close waits for a worker to exit after its input closes.
	workerStopTimeout = 2 * time.Second
)

// ErrClosed is returned by a closed WorkerPool.
var ErrClosed = errors.New("password: hash workers stopped")

// IsWorkerProcess reports whether this process was started as a hash worker.
func IsWorkerProcess() bool { return os.Getenv(WorkerEnv) == "1" }

// RunWorkerProcess is a hash worker's whole life: it lowers the priority of every thread to
// WorkerNice, then serves requests from stdin until stdin closes (its auth process stopped or
// died). It returns the process exit code.
func RunWorkerProcess() int {
	if err := cpuprio.LowerToIdle(WorkerNice); err != nil {
		fmt.Fprintf(os.Stderr, "password worker: lower priority: %v\n", err)
		return 1
	}
	if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "password worker: %v\n", err)
		return 1
	}
	return 0
}

// ServeWorker sends the hello frame to w, then answers each request frame read from r with
// one response frame, until r ends between frames (nil) or a frame is malformed or I/O fails
// (an error: the peer is out of step). A request outside the bounds is answered with an error
// response, not computed.
func ServeWorker(r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	if err := writeFrame(w, []byte(helloFrameBody)); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	for {
		body, err := readFrame(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		req, err := unmarshalKeyRequest(body)
		if err != nil {
			return err
		}
		key, err := deriveKey(req)
		if err := writeFrame(w, keyResponse(key, err)); err != nil {
			return fmt.Errorf("respond: %w", err)
		}
	}
}

// WorkerOptions configure StartWorkers.
type WorkerOptions struct {
	// Executable is the program to start as a worker: one whose main runs RunWorkerProcess when
	// IsWorkerProcess. Default: this process's own executable.
	Executable string
	// Size is the number of workers (DefaultConcurrency when ≤ 0, at most MaxConcurrency).
	Size int
	// Timeout bounds one derivation (DefaultWorkerTimeout when 0).
	Timeout time.Duration
	// Logger receives worker restarts; default discards.
	Logger *slog.Logger
}

// WorkerPool is an Engine whose keys are derived by worker processes, one derivation per worker
// at a time. Each worker is the given executable started with only WorkerEnv and GOMAXPROCS=1
// in its environment (no secrets), talking the wire protocol of wire.go over its stdin and
// stdout. A worker that fails (exits, times out, answers out of step) is killed and replaced,
// and the derivation is retried once on the new worker.
type WorkerPool struct {
	opts WorkerOptions
	// idle holds every worker not deriving; a nil entry is a worker to start on next use.
	idle chan *worker
	// stopped is closed by Close.
	stopped   chan struct{}
	closeOnce sync.Once
}

// StartWorkers starts the pool's workers and waits for each to say hello, so a wrong
// Executable fails here rather than at the first login.
func StartWorkers(opts WorkerOptions) (*WorkerPool, error) {
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("password: find own executable for hash workers: %w", err)
		}
		opts.Executable = exe
	}
	if opts.Size <= 0 {
		opts.Size = DefaultConcurrency()
	}
	opts.Size = min(opts.Size, MaxConcurrency)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultWorkerTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &WorkerPool{opts: opts, idle: make(chan *worker, opts.Size), stopped: make(chan struct{})}
	for range opts.Size {
		w, err := startWorker(opts.Executable)
		if err != nil {
			for range len(p.idle) {
				_ = (<-p.idle).stop()
			}
			return nil, err
		}
		p.idle <- w
	}
	return p, nil
}

// Slots implements Engine.
func (p *WorkerPool) Slots() int { return p.opts.Size }

// DeriveKey implements Engine.
func (p *WorkerPool) DeriveKey(ctx context.Context, password, salt []byte, params Params) ([]byte, error) {
	req := keyRequest{Params: params, Salt: salt, Password: password}
	if err := req.validate(); err != nil {
		return nil, err
	}
	var w *worker
	select {
	case w = <-p.idle:
	case <-p.stopped:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-p.stopped: // Close began while this call took the worker: give it back to Close
		p.idle <- w
		return nil, ErrClosed
	default:
	}
	var (
		key []byte
		err error
	)
	for attempt := 0; attempt < 2; attempt++ {
		if w == nil {
			if w, err = startWorker(p.opts.Executable); err != nil {
				break
			}
		}
		var broken bool
		key, broken, err = w.derive(req, p.opts.Timeout)
		if !broken {
			break
		}
		p.opts.Logger.Warn("password: hash worker failed; replacing it", "pid", w.cmd.Process.Pid, "error", err)
		w.kill()
		w = nil
	}
	p.idle <- w
	if err != nil {
		return nil, fmt.Errorf("password: derive key: %w", err)
	}
	return key, nil
}

// Close waits for every worker to finish its derivation, then stops it. Later DeriveKey calls
// fail with ErrClosed.
func (p *WorkerPool) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		close(p.stopped)
		for range cap(p.idle) { // every worker comes back once its derivation ends
			if w := <-p.idle; w != nil {
				errs = append(errs, w.stop())
			}
		}
	})
	return errors.Join(errs...)
}

// worker is one running worker process.
type worker struct {
	cmd *exec.Cmd
	in  *os.File // the worker's stdin (our write end)
	out *os.File // the worker's stdout (our read end)
	r   *bufio.Reader
}

// startWorker starts exe as a worker and waits for its hello.
func startWorker(exe string) (*worker, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("password: hash worker pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("password: hash worker pipe: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{WorkerEnv + "=1", "GOMAXPROCS=1"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	err = cmd.Start()
	inR.Close() // the child holds its own copies
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("password: start hash worker %s: %w", exe, err)
	}
	w := &worker{cmd: cmd, in: inW, out: outR, r: bufio.NewReaderSize(outR, 512)}
	_ = outR.SetReadDeadline(time.Now().Add(workerStartTimeout))
	hello, err := readFrame(w.r)
	if err != nil || string(hello) != helloFrameBody {
		w.kill()
		if err == nil {
			err = errBadFrame
		}
		return nil, fmt.Errorf("password: %s did not start as a hash worker (its main must run password.RunWorkerProcess when password.IsWorkerProcess): %w", exe, err)
	}
	return w, nil
}

// derive sends req and reads the key. broken reports that the worker can no longer be used
// (I/O failed, timed out or answered out of step); an error response leaves it usable.
func (w *worker) derive(req keyRequest, timeout time.Duration) (key []byte, broken bool, err error) {
	deadline := time.Now().Add(timeout)
	_ = w.in.SetWriteDeadline(deadline)
	_ = w.out.SetReadDeadline(deadline)
	if err := writeFrame(w.in, req.marshal()); err != nil {
		return nil, true, err
	}
	body, err := readFrame(w.r)
	if err != nil {
		return nil, true, err
	}
	key, err = parseKeyResponse(body, req.Params.KeyLen)
	return key, errors.Is(err, errBadFrame), err
}

// stop closes the worker's input, which ends it, and waits for it to exit (killing it after
// workerStopTimeout).
func (w *worker) stop() error {
	w.in.Close()
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	timer := time.NewTimer(workerStopTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		_ = w.cmd.Process.Kill()
		err = <-done
	}
	w.out.Close()
	if err != nil {
		return fmt.Errorf("password: hash worker %d: %w", w.cmd.Process.Pid, err)
	}
	return nil
}

// kill ends the worker at once.
func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
	w.in.Close()
	w.out.Close()
}
