package password

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets this test binary serve as the hash worker of the pools the tests start, as the
// auth binary's main does.
func TestMain(m *testing.M) {
	if IsWorkerProcess() {
		os.Exit(RunWorkerProcess())
	}
	os.Exit(m.Run())
}

var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func startPool(t *testing.T, size int) *WorkerPool {
	t.Helper()
	p, err := StartWorkers(WorkerOptions{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	return p
}

// TestWorkerPoolMatchesInline: keys derived by worker processes equal the in-process ones, for
// the OWASP parameters and others, and a Hasher on the pool hashes and verifies.
func TestWorkerPoolMatchesInline(t *testing.T) {
	p := startPool(t, 2)
	salt := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name   string
		params Params
		pw     string
	}{
		{"owasp", OWASP, "correct horse battery staple"},
		{"cheap", cheap, "twelve chars!"},
		{"empty password", cheap, ""},
		{"long key, two lanes", Params{MemoryKiB: 128, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 64}, "ünïcödé pässwörd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := NewInline(1).DeriveKey(t.Context(), []byte(tc.pw), salt, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.DeriveKey(t.Context(), []byte(tc.pw), salt, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("worker key %x, inline key %x", got, want)
			}
		})
	}

	h, err := NewHasher(OWASP, p)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "wrong horse battery staple": false} {
		if ok, err := h.Verify(t.Context(), pw, enc); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}

// TestWorkerPoolBadRequests: parameters outside the bounds are refused before any worker is
// asked, and a worker that is asked anyway answers an error and stays usable.
func TestWorkerPoolBadRequests(t *testing.T) {
	p := startPool(t, 1)
	salt := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name   string
		params Params
		salt   []byte
		pw     []byte
		want   string
	}{
		{"too much memory", Params{MemoryKiB: maxWorkerKiB + 1, Time: 1, Threads: 1, KeyLen: 32}, salt, nil, "memory"},
		{"memory below 8 per lane", Params{MemoryKiB: 15, Time: 1, Threads: 2, KeyLen: 32}, salt, nil, "memory"},
		{"zero time", Params{MemoryKiB: 64, Time: 0, Threads: 1, KeyLen: 32}, salt, nil, "time"},
		{"too many passes", Params{MemoryKiB: 64, Time: 65, Threads: 1, KeyLen: 32}, salt, nil, "time"},
		{"zero threads", Params{MemoryKiB: 64, Time: 1, Threads: 0, KeyLen: 32}, salt, nil, "threads"},
		{"short key", Params{MemoryKiB: 64, Time: 1, Threads: 1, KeyLen: 8}, salt, nil, "key length"},
		{"long key", Params{MemoryKiB: 64, Time: 1, Threads: 1, KeyLen: 129}, salt, nil, "key length"},
		{"short salt", cheap, []byte("1234567"), nil, "salt"},
		{"long salt", cheap, make([]byte, maxWireSalt+1), nil, "salt"},
		{"long password", cheap, salt, make([]byte, maxWirePass+1), "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.DeriveKey(t.Context(), tc.pw, tc.salt, tc.params); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DeriveKey = %v, want an error naming %q", err, tc.want)
			}
			// The same request reaching a worker directly: an error response, not a broken worker.
			w := <-p.idle
			key, broken, err := w.derive(keyRequest{Params: tc.params, Salt: tc.salt, Password: tc.pw}, DefaultWorkerTimeout)
			p.idle <- w
			if key != nil || broken || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("worker answered %x, broken %v, %v; want an error response naming %q", key, broken, err, tc.want)
			}
		})
	}
	if _, err := p.DeriveKey(t.Context(), []byte("still works"), salt, cheap); err != nil {
		t.Fatalf("after the bad requests: %v", err)
	}
}

// TestWorkerPoolReplacesDeadWorker: a worker killed between derivations is replaced and the
// derivation still succeeds.
func TestWorkerPoolReplacesDeadWorker(t *testing.T) {
	p := startPool(t, 1)
	pids := idleWorkers(p)
	if len(pids) != 1 {
		t.Fatalf("idle workers %v, want one", pids)
	}
	proc, _ := os.FindProcess(pids[0])
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DeriveKey(t.Context(), []byte("pw"), []byte("0123456789abcdef"), cheap); err != nil {
		t.Fatalf("DeriveKey after the worker died: %v", err)
	}
	if now := idleWorkers(p); len(now) != 1 || now[0] == pids[0] {
		t.Fatalf("idle workers %v after replacing %d", now, pids[0])
	}
}

// TestWorkerPoolClose: Close stops the workers; later derivations fail with ErrClosed, and a
// second Close is a no-op.
func TestWorkerPoolClose(t *testing.T) {
	p, err := StartWorkers(WorkerOptions{Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	pids := idleWorkers(p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("worker %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := p.DeriveKey(context.Background(), nil, []byte("0123456789abcdef"), cheap); !errors.Is(err, ErrClosed) {
		t.Fatalf("DeriveKey after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestStartWorkersWrongExecutable: an executable that does not serve as a worker fails at
// start, naming the cause.
func TestStartWorkersWrongExecutable(t *testing.T) {
	for _, exe := range []string{"/bin/true", filepath.Join(t.TempDir(), "missing")} {
		if _, err := os.Stat("/bin/true"); err != nil {
			t.Skip("no /bin/true")
		}
		p, err := StartWorkers(WorkerOptions{Executable: exe, Size: 1})
		if err == nil {
			_ = p.Close()
			t.Fatalf("StartWorkers(%s) succeeded", exe)
		}
		if !strings.Contains(err.Error(), exe) {
			t.Errorf("StartWorkers(%s) = %v, want the executable named", exe, err)
		}
	}
}

// TestServeWorkerFrames drives ServeWorker in-process: the hello, a good request, a refused
// one, and the ways a stream goes out of step.
func TestServeWorkerFrames(t *testing.T) {
	good := keyRequest{Params: cheap, Salt: []byte("0123456789abcdef"), Password: []byte("pw")}
	frame := func(body []byte) []byte {
		var b bytes.Buffer
		if err := writeFrame(&b, body); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	badVersion := good.marshal()
	badVersion[0] = 2
	for _, tc := range []struct {
		name      string
		in        []byte
		responses int
		wantErr   bool
	}{
		{"no requests", nil, 0, false},
		{"one request", frame(good.marshal()), 1, false},
		{"two requests", append(frame(good.marshal()), frame(good.marshal())...), 2, false},
		{"refused request answered", frame(keyRequest{Params: Params{MemoryKiB: 64, Time: 0, Threads: 1, KeyLen: 32}, Salt: good.Salt}.marshal()), 1, false},
		{"wrong version", frame(badVersion), 0, true},
		{"trailing bytes", frame(append(good.marshal(), 0)), 0, true},
		{"truncated body", frame(good.marshal()[:20]), 0, true},
		{"truncated frame", frame(good.marshal())[:10], 0, true},
		{"oversized frame", []byte{0, 1, 0, 0}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ServeWorker(bytes.NewReader(tc.in), &out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ServeWorker = %v, want error %v", err, tc.wantErr)
			}
			r := bufio.NewReader(&out)
			if hello, err := readFrame(r); err != nil || string(hello) != helloFrameBody {
				t.Fatalf("hello = %q, %v", hello, err)
			}
			n := 0
			for {
				if _, err := readFrame(r); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != tc.responses {
				t.Fatalf("%d responses, want %d", n, tc.responses)
			}
		})
	}
}

// FuzzKeyRequest: any frame body decodes to a request or errBadFrame without panicking, and a
// decoded request encodes back to the same bytes.
func FuzzKeyRequest(f *testing.F) {
	f.Add(keyRequest{Params: cheap, Salt: []byte("0123456789abcdef"), Password: []byte("pw")}.marshal())
	f.Add(keyRequest{Params: OWASP, Salt: make([]byte, 64), Password: make([]byte, 512)}.marshal())
	f.Add([]byte{wireVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshalKeyRequest(b)
		if err != nil {
			if !errors.Is(err, errBadFrame) {
				t.Fatalf("error %v is not errBadFrame", err)
			}
			return
		}
		if got := r.marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, decoded from %x", got, b)
		}
		_ = r.validate()
	})
}

// idleWorkers returns the process ids of p's running workers that are not deriving a key.
func idleWorkers(p *WorkerPool) []int {
	var taken []*worker
	var pids []int
	for len(taken) < cap(p.idle) {
		select {
		case w := <-p.idle:
			taken = append(taken, w)
			if w != nil {
				pids = append(pids, w.cmd.Process.Pid)
			}
			continue
		default:
		}
		break
	}
	for _, w := range taken {
		p.idle <- w
	}
	return pids
}
