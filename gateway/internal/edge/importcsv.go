package edge

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// ImportPath is the REST route of ImportMinersCsv.
const ImportPath = "/api/v1/miners:import"

// ImportMaxBodyBytes is the body limit of the import route, which replaces MAX_BODY_BYTES there
// when that is lower: ImportMinersCsv takes a CSV file of up to 64 MiB (a JSON body carries it
// base64-encoded, so about 48 MiB of CSV).
const ImportMaxBodyBytes = 64 << 20

// importMaxMessageBytes bounds the request message sent to mining (the file plus the envelope;
// mining accepts 80 MiB).
const importMaxMessageBytes = 80 << 20

const importMethod = "/hashinsight.mining.v1.MiningService/ImportMinersCsv"

// bodyLimitFor is the body limit of r: ImportMaxBodyBytes on the import route (unless limit is
// higher), limit elsewhere.
func bodyLimitFor(r *http.Request, limit int64) int64 {
	if r.Method == http.MethodPost && r.URL.Path == ImportPath && limit < ImportMaxBodyBytes {
		return ImportMaxBodyBytes
	}
	return limit
}

// RegisterImportRoute installs the import route's handler on mux. Call it after
// miningv1.RegisterMiningServiceHandler: it replaces the generated route for the same path
// (the last registration wins in grpc-gateway's mux) and keeps its JSON body.
//
// The body may be:
//   - text/csv (or application/csv): the file itself;
//   - multipart/form-data: the file in the part named "file" (else the first part with a file
//     name); parts named validate_only and upsert may carry the options;
//   - application/json (or no Content-Type): the ImportMinersCsvRequest, csv base64-encoded.
//
// The query parameters validate_only=true and upsert=true set the options for every kind of
// body. The answer is the ImportMinersCsvResponse; a file with bad rows answers 400
// VALIDATION_001 whose fields list every problem as {"field": "line 7: power_w", "description":
// reason} (see the mining importer).
func RegisterImportRoute(mux *runtime.ServeMux, client miningv1.MiningServiceClient) error {
	return mux.HandlePath(http.MethodPost, ImportPath, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		inbound, outbound := runtime.MarshalerForRequest(mux, r)
		req, err := importRequest(r, inbound)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, importMethod, runtime.WithHTTPPathPattern(ImportPath))
		if err != nil {
			WriteError(w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.ImportMinersCsv(ctx, req, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD),
			grpc.MaxCallSendMsgSize(importMaxMessageBytes))
		if err != nil {
			WriteError(w, r, err)
			return
		}
		runtime.ForwardResponseMessage(runtime.NewServerMetadataContext(ctx, md), mux, outbound, w, r, resp)
	})
}

// importRequest maps the HTTP request to ImportMinersCsvRequest.
func importRequest(r *http.Request, inbound runtime.Marshaler) (*miningv1.ImportMinersCsvRequest, error) {
	req := &miningv1.ImportMinersCsvRequest{}
	media := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if media, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, importInvalid("content_type", "malformed Content-Type")
		}
	}
	switch media {
	case "text/csv", "application/csv":
		body, err := readImportBody(r.Body)
		if err != nil {
			return nil, err
		}
		req.Csv = body
	case "multipart/form-data":
		if err := readMultipart(r, req); err != nil {
			return nil, err
		}
	case "", "application/json":
		if err := inbound.NewDecoder(r.Body).Decode(req); err != nil && !errors.Is(err, io.EOF) {
			if _, ok := bodyTooLarge(r.Context(), err); ok {
				return nil, err
			}
			return nil, importInvalid("body", "malformed JSON body")
		}
	default:
		return nil, importInvalid("content_type", "Content-Type must be text/csv, multipart/form-data or application/json")
	}
	q := r.URL.Query()
	for _, opt := range []struct {
		name string
		set  func()
	}{
		{"validate_only", func() { req.ValidateOnly = true }},
		{"upsert", func() { req.Upsert = true }},
	} {
		if !q.Has(opt.name) {
			continue
		}
		on, err := strconv.ParseBool(q.Get(opt.name))
		if err != nil {
			return nil, importInvalid(opt.name, "must be true or false")
		}
		if on {
			opt.set()
		}
	}
	return req, nil
}

// readMultipart reads the file part and the option parts of a multipart body, part by part
// (nothing is spooled to disk).
func readMultipart(r *http.Request, req *miningv1.ImportMinersCsvRequest) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return importInvalid("body", "malformed multipart body")
	}
	var fallback []byte
	found := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if _, ok := bodyTooLarge(r.Context(), err); ok {
				return err
			}
			return importInvalid("body", "malformed multipart body")
		}
		switch name := part.FormName(); {
		case name == "file":
			if req.Csv, err = readImportBody(part); err != nil {
				return err
			}
			found = true
		case name == "validate_only" || name == "upsert":
			v, err := io.ReadAll(io.LimitReader(part, 16))
			if err != nil {
				return errInvalidBody()
			}
			on, err := strconv.ParseBool(string(bytes.TrimSpace(v)))
			if err != nil {
				return importInvalid(name, "must be true or false")
			}
			if name == "upsert" {
				req.Upsert = on
			} else {
				req.ValidateOnly = on
			}
		case part.FileName() != "" && fallback == nil:
			if fallback, err = readImportBody(part); err != nil {
				return err
			}
		}
		_ = part.Close()
	}
	if !found {
		if fallback == nil {
			return importInvalid("file", `the multipart body has no file part (name it "file")`)
		}
		req.Csv = fallback
	}
	return nil
}

// readImportBody reads a body or part whole; over the route's limit it returns the
// MaxBytesError, which WriteError answers 413.
func readImportBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, mbe
		}
		return nil, errInvalidBody()
	}
	return b, nil
}

func importInvalid(field, msg string) error {
	return errcode.Error(errcode.Validation, codes.InvalidArgument, msg,
		errcode.FieldViolation{Field: field, Description: msg})
}
