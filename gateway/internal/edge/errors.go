package edge

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/hashinsight/platform/pkg/errcode"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Codes used for errors the gateway produces itself.
const (
	codeInternal   = errcode.Internal
	codeValidation = errcode.Validation
	codeNotFound   = errcode.NotFound
	// internalMessage replaces the text of every 5xx status that carries no
	// client-safe description.
	internalMessage = "internal error"
)

// apiError is the REST error body of DESIGN.md §4.
type apiError struct {
	Code      errcode.Code             `json:"code"`
	Message   string                   `json:"message"`
	GRPCCode  string                   `json:"grpc_code"`
	RequestID string                   `json:"request_id"`
	Fields    []errcode.FieldViolation `json:"fields,omitempty"`
}

// writeError writes body as the JSON error response with httpStatus,
// filling in the request id from the context.
func writeError(w http.ResponseWriter, r *http.Request, httpStatus int, body apiError) {
	body.RequestID = RequestID(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Del("Content-Length")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(body)
}

// WriteError writes the standard JSON error body for a gRPC status error (or
// any error, which is treated as Internal) to w. It is what the grpc-gateway
// error handler and the gateway's own handlers use.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if limit, ok := bodyTooLarge(r.Context(), err); ok {
		writeTooLarge(w, r, limit)
		return
	}
	st := statusOf(err)
	httpStatus, body := restError(st)
	if httpStatus == http.StatusTooManyRequests {
		if d := retryAfter(st); d != "" {
			w.Header().Set("Retry-After", d)
		}
	}
	writeError(w, r, httpStatus, body)
}

// statusOf converts err to a status. Context errors keep their meaning
// (a client that went away is Canceled, not Internal).
func statusOf(err error) *status.Status {
	if st, ok := status.FromError(err); ok {
		return st
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	}
	return status.New(codes.Internal, internalMessage)
}

// restError maps a status to the HTTP status and body:
//   - code: the ErrorInfo reason (hashinsight.io domain) when present,
//     otherwise derived from the gRPC code by errcode.FromGRPCCode;
//   - HTTP status: errcode.HTTPStatus of a known code; for an unknown
//     reason, the grpc-gateway mapping of the gRPC code;
//   - message: the status message for 4xx; for 5xx only the code's
//     client-safe description, never the backend's text.
func restError(st *status.Status) (int, apiError) {
	code, explicit := errcode.FromStatus(st)
	httpStatus := errcode.HTTPStatus(code)
	if explicit && !code.Known() {
		httpStatus = errcode.HTTPStatusFromGRPC(st.Code())
	}
	msg := st.Message()
	if httpStatus >= 500 {
		msg = code.Description()
		if msg == "" {
			msg = internalMessage
		}
	} else if msg == "" {
		msg = code.Description()
	}
	return httpStatus, apiError{
		Code:     code,
		Message:  msg,
		GRPCCode: errcode.GRPCCodeName(st.Code()),
		Fields:   errcode.FieldViolations(st),
	}
}

// retryAfter returns the Retry-After value (whole seconds, rounded up, at
// least 1) of st's google.rpc.RetryInfo, or "".
func retryAfter(st *status.Status) string {
	for _, d := range st.Details() {
		ri, ok := d.(*errdetails.RetryInfo)
		if !ok || ri.GetRetryDelay() == nil {
			continue
		}
		secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
		if secs < 1 {
			secs = 1
		}
		return strconv.FormatInt(int64(secs), 10)
	}
	return ""
}

// errorHandler is the grpc-gateway ErrorHandlerFunc.
func errorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, err)
}

// routingErrorHandler answers unknown routes and methods with the same JSON
// body: 404 NOT_FOUND_001 and 405 (grpc code UNIMPLEMENTED, as grpc-gateway
// itself reports it).
func routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusNotFound:
		writeError(w, r, http.StatusNotFound, apiError{Code: codeNotFound, Message: "no route for " + r.Method + " " + r.URL.Path, GRPCCode: "NOT_FOUND"})
	case http.StatusMethodNotAllowed:
		writeError(w, r, http.StatusMethodNotAllowed, apiError{Code: errcode.Unimplemented, Message: "method " + r.Method + " not allowed on " + r.URL.Path, GRPCCode: "UNIMPLEMENTED"})
	case http.StatusBadRequest:
		writeError(w, r, http.StatusBadRequest, apiError{Code: codeValidation, Message: "bad request", GRPCCode: "INVALID_ARGUMENT"})
	default:
		writeError(w, r, http.StatusInternalServerError, apiError{Code: codeInternal, Message: internalMessage, GRPCCode: "INTERNAL"})
	}
}

// errInvalidBody is the status for a request body that could not be read.
// A body over the size limit is answered 413 by WriteError, which checks the
// request's limit state first.
func errInvalidBody() error {
	return errcode.Error(errcode.Validation, codes.InvalidArgument, "cannot read request body")
}
