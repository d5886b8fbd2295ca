package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/hashinsight/platform/pkg/errcode"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"google.golang.org/grpc/codes"
)

// Collector upload routes of the HashInsight Remote edge collector
// (DESIGN.md §5). The collector tries the second one first in its "auto"
// mode.
const (
	CollectorUploadPath = "/api/collector/upload"
	CollectorBatchPath  = "/api/edge/v1/telemetry/batch"
)

const uploadMethod = "/hashinsight.mining.v1.MiningService/UploadCollectorBatch"

// CollectorResponse is the body the collector expects; it counts an upload
// as done only on HTTP 200 with "success": true.
type CollectorResponse struct {
	Success         bool     `json:"success"`
	Received        int64    `json:"received"`
	Online          int64    `json:"online"`
	SiteID          string   `json:"site_id"`
	IngestedAt      string   `json:"ingested_at,omitempty"`
	Stored          int64    `json:"stored"`
	Duplicates      int64    `json:"duplicates"`
	UnknownMinerIDs []string `json:"unknown_miner_ids,omitempty"`
}

// RegisterCollectorRoutes installs the raw-body handlers of both upload
// routes on mux. Call it after miningv1.RegisterMiningServiceHandler: the
// generated routes for the same paths decode a JSON body, and the last
// registration wins in grpc-gateway's mux.
//
// The handler reads the body as sent (gzip-compressed JSON, not decoded
// here; mining decompresses and parses it, bounded by the body limit
// middleware), maps the X-Site-ID, X-Device-ID, X-Zone-ID, X-Upload-Mode
// and Content-Encoding headers to the request fields and calls
// UploadCollectorBatch with the same forwarded metadata as every REST route
// (Authorization, X-Collector-Key, request id, client IP, trace context).
func RegisterCollectorRoutes(mux *runtime.ServeMux, client miningv1.MiningServiceClient) error {
	for _, path := range []string{CollectorUploadPath, CollectorBatchPath} {
		h := collectorHandler(mux, client, path)
		if err := mux.HandlePath(http.MethodPost, path, h); err != nil {
			return err
		}
	}
	return nil
}

func collectorHandler(mux *runtime.ServeMux, client miningv1.MiningServiceClient, path string) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		req, err := collectorRequest(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, uploadMethod, runtime.WithHTTPPathPattern(path))
		if err != nil {
			WriteError(w, r, err)
			return
		}
		resp, err := client.UploadCollectorBatch(ctx, req)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		out := CollectorResponse{
			Success:         resp.GetSuccess(),
			Received:        resp.GetReceived(),
			Online:          resp.GetOnline(),
			SiteID:          resp.GetSiteId(),
			Stored:          resp.GetStored(),
			Duplicates:      resp.GetDuplicates(),
			UnknownMinerIDs: resp.GetUnknownMinerIds(),
		}
		if ts := resp.GetIngestedAt(); ts != nil {
			out.IngestedAt = ts.AsTime().UTC().Format(time.RFC3339Nano)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(out)
	}
}

// collectorRequest maps the HTTP request to UploadCollectorBatchRequest.
func collectorRequest(r *http.Request) (*miningv1.UploadCollectorBatchRequest, error) {
	invalid := func(field, msg string) error {
		return errcode.Error(errcode.Validation, codes.InvalidArgument, msg,
			errcode.FieldViolation{Field: field, Description: msg})
	}
	siteID := strings.TrimSpace(r.Header.Get("X-Site-ID"))
	if siteID == "" {
		return nil, invalid("site_id", "X-Site-ID header is required")
	}
	var mode miningv1.UploadMode
	switch m := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Upload-Mode"))); m {
	case "":
		mode = miningv1.UploadMode_UPLOAD_MODE_UNSPECIFIED
	case "raw":
		mode = miningv1.UploadMode_UPLOAD_MODE_RAW
	case "latest":
		mode = miningv1.UploadMode_UPLOAD_MODE_LATEST
	default:
		return nil, invalid("upload_mode", "X-Upload-Mode must be raw or latest")
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "gzip", "identity":
	default:
		return nil, invalid("content_encoding", "Content-Encoding must be gzip or identity")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := bodyTooLarge(r.Context(), err); ok {
			return nil, err // WriteError answers 413
		}
		return nil, errInvalidBody()
	}
	return &miningv1.UploadCollectorBatchRequest{
		SiteId:          siteID,
		DeviceId:        r.Header.Get("X-Device-ID"),
		ZoneId:          r.Header.Get("X-Zone-ID"),
		UploadMode:      mode,
		ContentEncoding: enc,
		Body:            body,
	}, nil
}
