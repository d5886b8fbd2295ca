package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/cmd/hictl/internal/devmesh"
	"github.com/hashinsight/platform/cmd/hictl/internal/opconn"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// DefaultImportTimeout bounds a whole `miners import` unless --timeout says otherwise.
const DefaultImportTimeout = 5 * time.Minute

// importChunkBytes is the size of the CSV chunks hictl streams (the API takes up to 1 MiB).
const importChunkBytes = 256 << 10

// miningFlags are the flags of the commands that call the mining service.
type miningFlags struct {
	op      operatorFlags
	addr    string
	timeout time.Duration
}

func (f *miningFlags) registerOn(cmd *cobra.Command, defTimeout time.Duration) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.addr, "addr", "", "mining service gRPC `HOST:PORT` (default: $MINING_GRPC_ADDR, else 127.0.0.1:7002)")
	fs.DurationVar(&f.timeout, "timeout", defTimeout, "deadline of the whole command")
	f.op.registerOn(fs)
}

// connect dials the mining service with the operator certificate. Close the pool when done.
func (f *miningFlags) connect(ctx context.Context, s IO) (miningv1.MiningServiceClient, *opconn.Pool, string, error) {
	if f.timeout <= 0 {
		return nil, nil, "", usageError{fmt.Errorf("--timeout must be positive, got %s", f.timeout)}
	}
	addr := f.addr
	if addr == "" {
		addr = devmesh.DialAddr(devmesh.ResolveEndpoints(s.lookupEnv).GRPC["mining"])
	}
	cfg, err := f.op.config(s)
	if err != nil {
		return nil, nil, "", err
	}
	pool, err := opconn.New(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	cc, err := pool.Conn(ctx, opconn.Target{Name: "mining", Addr: addr})
	if err != nil {
		_ = pool.Close()
		return nil, nil, "", err
	}
	return miningv1.NewMiningServiceClient(cc), pool, addr, nil
}

func newMinersCmd(s IO) *cobra.Command {
	var mf miningFlags
	cmd := newGroupCmd("miners", "Manage the miner fleet: bulk import",
		`miners works on the fleet inventory through the mining service, over gRPC with the operator
certificate (hictl acts as operator/<name> with every permission).`)
	mf.registerOn(cmd, DefaultImportTimeout)
	cmd.AddCommand(newMinersImportCmd(s, &mf))
	return cmd
}

func newMinersImportCmd(s IO, mf *miningFlags) *cobra.Command {
	var (
		file             string
		validate, upsert bool
	)
	cmd := &cobra.Command{
		Use:   "import --file FILE.csv [--validate] [--upsert]",
		Short: "Import miners from a CSV file (all-or-nothing, every bad row reported)",
		Long: `import streams a CSV file to the mining service (ImportMiners) with a progress bar, then
prints the result. Header: name,model,hashrate_th,power_w,efficiency plus optionally
customer_id,site,serial, in any order; efficiency may be empty (derived from power_w /
hashrate_th). Nothing is written unless every row is valid; every bad row is printed with its
line, column and reason, and the exit status is then 1.

--validate checks every row (also against the existing miners) and writes nothing. --upsert
updates the miners that already exist (matched by serial, else by name and site) instead of
reporting them; importing the same file again then changes nothing.`,
		Example: `  hictl miners import --file miners.csv --validate
  hictl miners import --file miners.csv
  hictl miners import --file miners.csv --upsert --addr mining.internal:7002`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("--file is required")}
			}
			f, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("open %s: %w", file, err)
			}
			defer f.Close()
			info, err := f.Stat()
			if err != nil {
				return fmt.Errorf("stat %s: %w", file, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), mf.timeout)
			defer cancel()
			client, pool, addr, err := mf.connect(ctx, s)
			if err != nil {
				return err
			}
			defer pool.Close()
			hdr := &miningv1.ImportMinersRequest_Header{ValidateOnly: validate, Upsert: upsert, FileName: filepath.Base(file)}
			res, err := importMiners(ctx, client, hdr, f, info.Size(), s.Stderr)
			if res != nil {
				printImportResult(s.Stdout, res)
			}
			if err != nil {
				st, ok := status.FromError(err)
				if ok && st.Code() == codes.InvalidArgument && res != nil {
					return exitError{fmt.Errorf("import refused: %d problems; nothing was written", len(res.GetErrors())), ExitError}
				}
				if ok {
					return &rpcError{op: "import miners", addr: addr, timeout: mf.timeout, identity: pool.Identity().String(), st: st}
				}
				return fmt.Errorf("import miners: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&file, "file", "f", "", "CSV file to import")
	fs.BoolVar(&validate, "validate", false, "check every row, write nothing")
	fs.BoolVar(&upsert, "upsert", false, "update existing miners (by serial, else name and site) instead of refusing them")
	return cmd
}

// importMiners streams r (size bytes) after hdr and returns the result the server sent, if any,
// and the stream's final error. The progress bar on progress counts bytes sent; its description
// follows the server's progress (phase, rows parsed and invalid).
func importMiners(ctx context.Context, client miningv1.MiningServiceClient, hdr *miningv1.ImportMinersRequest_Header,
	r io.Reader, size int64, progress io.Writer) (*miningv1.ImportResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.ImportMiners(ctx)
	if err != nil {
		return nil, err
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(progress),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetDescription("sending"),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
	)
	defer func() { _ = bar.Finish(); fmt.Fprintln(progress) }()

	sent := make(chan error, 1)
	go func() {
		err := sendFile(stream, hdr, r, bar)
		if errors.Is(err, errReadFile) {
			cancel() // abort: closing the send side would import a truncated file
		}
		sent <- err
	}()

	var res *miningv1.ImportResult
	for {
		msg, err := stream.Recv()
		if err != nil {
			sendErr := <-sent
			if errors.Is(sendErr, errReadFile) {
				return nil, sendErr
			}
			if errors.Is(err, io.EOF) {
				err = nil
				if sendErr != nil && !errors.Is(sendErr, io.EOF) {
					err = sendErr
				}
			}
			return res, err
		}
		switch ev := msg.GetEvent().(type) {
		case *miningv1.ImportMinersResponse_Progress:
			p := ev.Progress
			phase := strings.ToLower(strings.TrimPrefix(p.GetPhase().String(), "IMPORT_PHASE_"))
			desc := fmt.Sprintf("%s: %d rows parsed, %d invalid", phase, p.GetRowsParsed(), p.GetRowsInvalid())
			if p.GetRowsWritten() > 0 {
				desc += fmt.Sprintf(", %d written", p.GetRowsWritten())
			}
			bar.Describe(desc)
		case *miningv1.ImportMinersResponse_Result:
			res = ev.Result
		}
	}
}

// errReadFile marks a failure to read the file being imported.
var errReadFile = errors.New("read file")

// sendFile sends the header and then r in chunks, and closes the send side. io.EOF means the
// server ended the stream early (its status says why); errReadFile that r failed.
func sendFile(stream miningv1.MiningService_ImportMinersClient, hdr *miningv1.ImportMinersRequest_Header, r io.Reader, bar *progressbar.ProgressBar) error {
	if err := stream.Send(&miningv1.ImportMinersRequest{Payload: &miningv1.ImportMinersRequest_Header_{Header: hdr}}); err != nil {
		return err
	}
	buf := make([]byte, importChunkBytes)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			chunk := append([]byte(nil), buf[:n]...)
			if err := stream.Send(&miningv1.ImportMinersRequest{Payload: &miningv1.ImportMinersRequest_Chunk{Chunk: chunk}}); err != nil {
				return err
			}
			_ = bar.Add(n)
		}
		if errors.Is(rerr, io.EOF) {
			return stream.CloseSend()
		}
		if rerr != nil {
			return fmt.Errorf("%w: %w", errReadFile, rerr)
		}
	}
}

// printImportResult prints the counts and every problem, one per line.
func printImportResult(w io.Writer, res *miningv1.ImportResult) {
	state := "written"
	switch {
	case res.GetValidateOnly() && len(res.GetErrors()) == 0:
		state = "valid (validate only: nothing written)"
	case !res.GetCommitted():
		state = "refused: nothing written"
	}
	fmt.Fprintf(w, "rows: %d  created: %d  updated: %d  unchanged: %d  %s\n",
		res.GetTotalRows(), res.GetCreatedCount(), res.GetUpdatedCount(), res.GetUnchangedCount(), state)
	if len(res.GetErrors()) > 0 {
		fmt.Fprintf(w, "%d problems:\n", len(res.GetErrors()))
	}
	for _, e := range res.GetErrors() {
		if e.GetColumn() != "" {
			fmt.Fprintf(w, "  line %d, %s: %s\n", e.GetLine(), e.GetColumn(), e.GetReason())
		} else {
			fmt.Fprintf(w, "  line %d: %s\n", e.GetLine(), e.GetReason())
		}
	}
}
