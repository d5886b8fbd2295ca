package commands

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcserver"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// fakeImport stands in for the mining service's ImportMiners (the real one is tested in
// services/mining): it records what hictl streamed and answers like the service, refusing a
// file that contains "bad".
type fakeImport struct {
	miningv1.UnimplementedMiningServiceServer
	mu     sync.Mutex
	header *miningv1.ImportMinersRequest_Header
	got    bytes.Buffer
}

func (f *fakeImport) ImportMiners(stream grpc.BidiStreamingServer[miningv1.ImportMinersRequest, miningv1.ImportMinersResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.header = first.GetHeader()
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		f.got.Write(msg.GetChunk())
		_ = stream.Send(&miningv1.ImportMinersResponse{Event: &miningv1.ImportMinersResponse_Progress{Progress: &miningv1.ImportProgress{
			Phase: miningv1.ImportPhase_IMPORT_PHASE_PARSING, BytesReceived: int64(f.got.Len())}}})
	}
	rows := int64(strings.Count(f.got.String(), "\n") - 1)
	res := &miningv1.ImportResult{TotalRows: rows, ValidateOnly: f.header.GetValidateOnly()}
	if strings.Contains(f.got.String(), "bad") {
		res.Errors = []*miningv1.ImportRowError{{Line: 3, Column: "power_w", Reason: "must be greater than 0"}, {Line: 4, Reason: "invalid UTF-8"}}
	} else {
		res.CreatedCount, res.Committed = rows, !f.header.GetValidateOnly()
	}
	if err := stream.Send(&miningv1.ImportMinersResponse{Event: &miningv1.ImportMinersResponse_Result{Result: res}}); err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		return errcode.Error(errcode.Validation, codes.InvalidArgument, "import refused")
	}
	return nil
}

func TestMinersImport(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := devca.Ensure(filepath.Join(repo, ".data", "certs"), []mtls.Identity{mtls.Service("mining"), mtls.Operator("dev")})
	if err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(files.Config(mtls.Service("mining")), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := access.Load(protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcserver.New(grpcserver.Config{Service: "mining", TLS: src.ServerTLS(), Policy: policy, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeImport{}
	miningv1.RegisterMiningServiceServer(srv.GRPC(), fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, lis, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	op := files.Leaves[mtls.Operator("dev")]
	flags := []string{"--addr", lis.Addr().String(), "--cacert", files.CACert, "--cert", op.Cert, "--key", op.Key}

	// A file larger than several chunks arrives whole; the result is printed.
	var csv strings.Builder
	csv.WriteString("name,model,hashrate_th,power_w,efficiency\n")
	for range 30000 {
		csv.WriteString("m,Antminer S19,95,3250,\n")
	}
	path := filepath.Join(repo, "miners.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := hictl(t, repo, nil, append([]string{"miners", "import", "--file", path, "--upsert"}, flags...)...)
	if code != ExitOK || !strings.Contains(out, "rows: 30000  created: 30000  updated: 0  unchanged: 0  written") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if fake.got.String() != csv.String() || !fake.header.GetUpsert() || fake.header.GetFileName() != "miners.csv" {
		t.Fatalf("server got %d bytes, header %v", fake.got.Len(), fake.header)
	}

	// --validate, then a bad file: every problem printed, exit 1.
	fake.got.Reset()
	code, out = hictl(t, repo, nil, append([]string{"miners", "import", "-f", path, "--validate"}, flags...)...)
	if code != ExitOK || !strings.Contains(out, "valid (validate only: nothing written)") || !fake.header.GetValidateOnly() {
		t.Fatalf("validate: exit %d:\n%s", code, out)
	}
	fake.got.Reset()
	if err := os.WriteFile(path, []byte("name,model,hashrate_th,power_w,efficiency\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = hictl(t, repo, nil, append([]string{"miners", "import", "--file", path}, flags...)...)
	for _, want := range []string{"refused: nothing written", "2 problems:", "  line 3, power_w: must be greater than 0", "  line 4: invalid UTF-8",
		"import refused: 2 problems; nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if code != ExitError {
		t.Fatalf("exit %d, want %d", code, ExitError)
	}

	// Usage errors.
	if code, out := hictl(t, repo, nil, "miners", "import"); code != ExitUsage {
		t.Fatalf("no --file: exit %d: %s", code, out)
	}
}
