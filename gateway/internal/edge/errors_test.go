package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/errcode"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func withRetry(st *status.Status, d time.Duration) error {
	s, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	if err != nil {
		panic(err)
	}
	return s.Err()
}

// TestErrorMapping is the status → REST mapping table of the gateway.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantHTTP   int
		wantCode   string
		wantGRPC   string
		wantMsg    string // exact, when set
		noMsgText  string // must not appear in the body
		retryAfter string
		wantFields int
	}{
		{"unauthenticated with reason", errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "missing bearer token"), 401, "AUTH_001", "UNAUTHENTICATED", "missing bearer token", "", "", 0},
		{"expired", errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "token expired"), 401, "AUTH_003", "UNAUTHENTICATED", "token expired", "", "", 0},
		{"unauthenticated bare", status.Error(codes.Unauthenticated, "no credential"), 401, "AUTH_001", "UNAUTHENTICATED", "no credential", "", "", 0},
		{"permission denied", status.Error(codes.PermissionDenied, "needs miners:write"), 403, "AUTH_002", "PERMISSION_DENIED", "needs miners:write", "", "", 0},
		{"invalid argument with fields", errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request", errcode.FieldViolation{Field: "hashrate_th", Description: "must be > 0"}), 400, "VALIDATION_001", "INVALID_ARGUMENT", "invalid request", "", "", 1},
		{"invalid argument bare", status.Error(codes.InvalidArgument, "bad page_size"), 400, "VALIDATION_001", "INVALID_ARGUMENT", "bad page_size", "", "", 0},
		{"failed precondition", status.Error(codes.FailedPrecondition, "invoice already paid"), 400, "PRECONDITION_001", "FAILED_PRECONDITION", "invoice already paid", "", "", 0},
		{"not found", status.Error(codes.NotFound, "miner not found"), 404, "NOT_FOUND_001", "NOT_FOUND", "miner not found", "", "", 0},
		{"already exists", status.Error(codes.AlreadyExists, "email taken"), 409, "CONFLICT_001", "ALREADY_EXISTS", "email taken", "", "", 0},
		{"aborted", status.Error(codes.Aborted, "concurrent update"), 409, "CONFLICT_001", "ABORTED", "concurrent update", "", "", 0},
		{"rate limited with retry info", withRetry(errcode.New(errcode.RateLimited, codes.ResourceExhausted, "slow down"), 1500*time.Millisecond), 429, "API_001", "RESOURCE_EXHAUSTED", "slow down", "", "2", 0},
		{"rate limited sub-second", withRetry(status.New(codes.ResourceExhausted, "slow down"), 10*time.Millisecond), 429, "API_001", "RESOURCE_EXHAUSTED", "slow down", "", "1", 0},
		{"rate limited without retry info", status.Error(codes.ResourceExhausted, "slow down"), 429, "API_001", "RESOURCE_EXHAUSTED", "slow down", "", "", 0},
		{"database down", errcode.Error(errcode.DBUnavailable, codes.Unavailable, "pq: dial tcp 10.0.0.5:5432: refused"), 503, "DB_001", "UNAVAILABLE", "Database connection failed", "10.0.0.5", "", 0},
		{"query timeout", errcode.Error(errcode.DBTimeout, codes.DeadlineExceeded, "select took 31s"), 504, "DB_002", "DEADLINE_EXCEEDED", "Query timeout", "select", "", 0},
		{"upstream", errcode.Error(errcode.UpstreamFailed, codes.Unavailable, "coingecko 502"), 502, "API_002", "UNAVAILABLE", "External API failed", "coingecko", "", 0},
		{"backend unreachable", status.Error(codes.Unavailable, "connection error: desc = transport: dial tcp 127.0.0.1:7002"), 503, "UNAVAILABLE_001", "UNAVAILABLE", "Service unavailable", "127.0.0.1", "", 0},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), 504, "TIMEOUT_001", "DEADLINE_EXCEEDED", "Deadline exceeded", "context", "", 0},
		{"internal hides text", status.Error(codes.Internal, "panic: nil map at store.go:42"), 500, "INTERNAL_001", "INTERNAL", "Internal error", "store.go", "", 0},
		{"unknown hides text", status.Error(codes.Unknown, "secret detail"), 500, "INTERNAL_001", "UNKNOWN", "Internal error", "secret", "", 0},
		{"data loss", status.Error(codes.DataLoss, "disk"), 500, "INTERNAL_001", "DATA_LOSS", "Internal error", "disk", "", 0},
		{"blockchain", errcode.Error(errcode.BlockchainNotConfigured, codes.FailedPrecondition, "BLOCKCHAIN_PRIVATE_KEY unset"), 500, "BLOCKCHAIN_001", "FAILED_PRECONDITION", "Private key not configured", "BLOCKCHAIN_PRIVATE_KEY", "", 0},
		{"unimplemented", status.Error(codes.Unimplemented, "method MintCertificate not implemented"), 501, "UNIMPLEMENTED_001", "UNIMPLEMENTED", "Not implemented", "", "", 0},
		{"unknown reason keeps grpc status", errcode.Error("WEIRD_009", codes.NotFound, "x"), 404, "WEIRD_009", "NOT_FOUND", "x", "", "", 0},
		{"plain go error", errors.New("boom at db.go:1"), 500, "INTERNAL_001", "INTERNAL", "Internal error", "db.go", "", 0},
		{"client went away", context.Canceled, 499, "CANCELED_001", "CANCELLED", "request canceled", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/miners", nil)
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey, "req-1"))
			w := httptest.NewRecorder()
			WriteError(w, r, tt.err)

			if w.Code != tt.wantHTTP {
				t.Errorf("HTTP status = %d, want %d", w.Code, tt.wantHTTP)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			raw := w.Body.String()
			var body apiError
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if string(body.Code) != tt.wantCode || body.GRPCCode != tt.wantGRPC || body.RequestID != "req-1" {
				t.Errorf("body = %+v, want code %s grpc_code %s request_id req-1", body, tt.wantCode, tt.wantGRPC)
			}
			if tt.wantMsg != "" && body.Message != tt.wantMsg {
				t.Errorf("message = %q, want %q", body.Message, tt.wantMsg)
			}
			if tt.noMsgText != "" && strings.Contains(raw, tt.noMsgText) {
				t.Errorf("body %q leaks %q", raw, tt.noMsgText)
			}
			if len(body.Fields) != tt.wantFields {
				t.Errorf("fields = %v, want %d", body.Fields, tt.wantFields)
			}
		})
	}
}

func TestErrorBodyShape(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, "abc"))
	w := httptest.NewRecorder()
	WriteError(w, r, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "login required"))
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"code": "AUTH_001", "message": "login required", "grpc_code": "UNAUTHENTICATED", "request_id": "abc"}
	if len(m) != len(want) {
		t.Fatalf("body = %v, want exactly %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}
