// Package errcode holds the HashInsight error codes of the operations manual
// (Appendix D, as amended by DESIGN.md §4) and the helpers that carry them on
// the wire: a gRPC status with a google.rpc.ErrorInfo detail whose reason is
// the code and whose domain is "hashinsight.io", plus google.rpc.BadRequest
// field violations for validation failures.
//
// Services build their errors with New in their single toStatus function;
// the gateway reads them back with FromStatus and renders the REST error body
// with HTTPStatus and GRPCCodeName.
package errcode

import (
	"errors"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the google.rpc.ErrorInfo domain of every HashInsight error.
const Domain = "hashinsight.io"

// Code is a HashInsight error code such as "AUTH_001".
type Code string

// The manual's error codes (Appendix D) plus the ones DESIGN.md §4 adds.
const (
	// AuthRequired: not logged in / no valid credential (401).
	AuthRequired Code = "AUTH_001"
	// AuthForbidden: insufficient permissions, or an mTLS caller not on the
	// method's allow-list (403).
	AuthForbidden Code = "AUTH_002"
	// AuthExpired: session or token expired (401).
	AuthExpired Code = "AUTH_003"
	// Validation: the request is malformed or violates a field rule (400).
	Validation Code = "VALIDATION_001"
	// NotFound: the resource does not exist or is not visible to the caller (404).
	NotFound Code = "NOT_FOUND_001"
	// Conflict: the resource already exists or changed concurrently (409).
	Conflict Code = "CONFLICT_001"
	// RateLimited: too many requests (429, with Retry-After).
	RateLimited Code = "API_001"
	// UpstreamFailed: an external API failed (502).
	UpstreamFailed Code = "API_002"
	// DBUnavailable: the database connection failed (503).
	DBUnavailable Code = "DB_001"
	// DBTimeout: a query timed out (504).
	DBTimeout Code = "DB_002"
	// CacheUnavailable: Redis is unavailable (503).
	CacheUnavailable Code = "CACHE_001"
	// BlockchainNotConfigured: the chain private key is not configured (500).
	BlockchainNotConfigured Code = "BLOCKCHAIN_001"
	// EncryptionNotConfigured: the encryption key is not configured (500).
	EncryptionNotConfigured Code = "ENCRYPTION_001"
)

// Codes that are not in the manual. They are only produced by FromStatus for
// a status that carries no ErrorInfo, so that every error still has a code.
const (
	// Internal: an unexpected server error (500).
	Internal Code = "INTERNAL_001"
	// Unavailable: a backend is unavailable (503).
	Unavailable Code = "UNAVAILABLE_001"
	// Timeout: the deadline was exceeded (504).
	Timeout Code = "TIMEOUT_001"
	// Unimplemented: the operation is not built yet (501).
	Unimplemented Code = "UNIMPLEMENTED_001"
	// Precondition: the resource is not in a state that allows the operation (400).
	Precondition Code = "PRECONDITION_001"
	// Canceled: the caller canceled the request (499).
	Canceled Code = "CANCELED_001"
)

type codeInfo struct {
	http        int
	grpc        codes.Code
	description string
}

var table = map[Code]codeInfo{
	AuthRequired:            {http.StatusUnauthorized, codes.Unauthenticated, "Not logged in"},
	AuthForbidden:           {http.StatusForbidden, codes.PermissionDenied, "Insufficient permissions"},
	AuthExpired:             {http.StatusUnauthorized, codes.Unauthenticated, "Session expired"},
	Validation:              {http.StatusBadRequest, codes.InvalidArgument, "Invalid request"},
	NotFound:                {http.StatusNotFound, codes.NotFound, "Not found"},
	Conflict:                {http.StatusConflict, codes.AlreadyExists, "Conflict"},
	RateLimited:             {http.StatusTooManyRequests, codes.ResourceExhausted, "Too many requests"},
	UpstreamFailed:          {http.StatusBadGateway, codes.Unavailable, "External API failed"},
	DBUnavailable:           {http.StatusServiceUnavailable, codes.Unavailable, "Database connection failed"},
	DBTimeout:               {http.StatusGatewayTimeout, codes.DeadlineExceeded, "Query timeout"},
	CacheUnavailable:        {http.StatusServiceUnavailable, codes.Unavailable, "Redis unavailable"},
	BlockchainNotConfigured: {http.StatusInternalServerError, codes.Internal, "Private key not configured"},
	EncryptionNotConfigured: {http.StatusInternalServerError, codes.Internal, "Encryption key not configured"},
	Internal:                {http.StatusInternalServerError, codes.Internal, "Internal error"},
	Unavailable:             {http.StatusServiceUnavailable, codes.Unavailable, "Service unavailable"},
	Timeout:                 {http.StatusGatewayTimeout, codes.DeadlineExceeded, "Deadline exceeded"},
	Unimplemented:           {http.StatusNotImplemented, codes.Unimplemented, "Not implemented"},
	Precondition:            {http.StatusBadRequest, codes.FailedPrecondition, "Precondition failed"},
	Canceled:                {499, codes.Canceled, "Request canceled"},
}

// Known reports whether c is one of the codes of this package.
func (c Code) Known() bool {
	_, ok := table[c]
	return ok
}

// String returns the code itself, e.g. "AUTH_001".
func (c Code) String() string { return string(c) }

// Description is the manual's short, client-safe description of the code
// ("Not logged in"); empty for an unknown code.
func (c Code) Description() string { return table[c].description }

// GRPCCode is the gRPC code that normally carries c; Unknown for an unknown code.
func (c Code) GRPCCode() codes.Code {
	if i, ok := table[c]; ok {
		return i.grpc
	}
	return codes.Unknown
}

// HTTPStatus is the HTTP status of the REST error body for code c
// (500 for an unknown code).
func HTTPStatus(c Code) int {
	if i, ok := table[c]; ok {
		return i.http
	}
	return http.StatusInternalServerError
}

// FieldViolation names a request field and why it is invalid. Field is the
// field path as in google.rpc.BadRequest ("miner.hashrate_th", "items[2].name").
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// New returns a status with grpcCode and msg that carries an ErrorInfo with
// reason code, and, when fields are given, a BadRequest with those field
// violations. msg is sent to clients: never put internal error text in it.
func New(code Code, grpcCode codes.Code, msg string, fields ...FieldViolation) *status.Status {
	st := status.New(grpcCode, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: string(code), Domain: Domain}}
	if len(fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       f.Field,
				Description: f.Description,
			})
		}
		details = append(details, br)
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		// Only fails for an OK code, which has no details by definition.
		return st
	}
	return withDetails
}

// Error is New(...).Err().
func Error(code Code, grpcCode codes.Code, msg string, fields ...FieldViolation) error {
	return New(code, grpcCode, msg, fields...).Err()
}

// FromStatus returns the HashInsight code of st: the reason of its
// hashinsight.io ErrorInfo when present (explicit is then true), otherwise a
// code derived from the gRPC code (explicit false). An OK status returns "".
func FromStatus(st *status.Status) (code Code, explicit bool) {
	if st == nil || st.Code() == codes.OK {
		return "", false
	}
	if info := ErrorInfo(st); info != nil {
		return Code(info.GetReason()), true
	}
	return FromGRPCCode(st.Code()), false
}

// FromError is FromStatus for an error; errors that are not gRPC statuses
// give Internal. A nil error gives "".
func FromError(err error) Code {
	if err == nil {
		return ""
	}
	st, ok := status.FromError(err)
	if !ok {
		return Internal
	}
	c, _ := FromStatus(st)
	return c
}

// ErrorInfo returns st's ErrorInfo detail of the hashinsight.io domain, or nil.
func ErrorInfo(st *status.Status) *errdetails.ErrorInfo {
	if st == nil {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info
		}
	}
	return nil
}

// FieldViolations returns the BadRequest field violations carried by st.
func FieldViolations(st *status.Status) []FieldViolation {
	if st == nil {
		return nil
	}
	var out []FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return out
}

// FromGRPCCode is the default HashInsight code of a gRPC code, used when a
// status carries no ErrorInfo.
func FromGRPCCode(c codes.Code) Code {
	switch c {
	case codes.OK:
		return ""
	case codes.Unauthenticated:
		return AuthRequired
	case codes.PermissionDenied:
		return AuthForbidden
	case codes.InvalidArgument, codes.OutOfRange:
		return Validation
	case codes.NotFound:
		return NotFound
	case codes.AlreadyExists, codes.Aborted:
		return Conflict
	case codes.ResourceExhausted:
		return RateLimited
	case codes.FailedPrecondition:
		return Precondition
	case codes.Unavailable:
		return Unavailable
	case codes.DeadlineExceeded:
		return Timeout
	case codes.Unimplemented:
		return Unimplemented
	case codes.Canceled:
		return Canceled
	default: // Unknown, Internal, DataLoss
		return Internal
	}
}

// HTTPStatusFromGRPC maps a gRPC code to an HTTP status the way grpc-gateway
// does (OK 200, InvalidArgument 400, Unavailable 503, …; Canceled 499).
func HTTPStatusFromGRPC(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}

// GRPCCodeName is the canonical upper-case name of a gRPC code as used in
// the REST error body: "UNAUTHENTICATED", "INVALID_ARGUMENT", "OK".
func GRPCCodeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	}
	// The rest are single words (Unknown, Aborted, Unimplemented, Internal,
	// Unavailable, DataLoss → DATA_LOSS, Unauthenticated) or out of range.
	if c == codes.DataLoss {
		return "DATA_LOSS"
	}
	return strings.ToUpper(c.String())
}

// Is reports whether err is a gRPC status whose HashInsight code is c.
func Is(err error, c Code) bool {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return false
	}
	got, _ := FromStatus(se.GRPCStatus())
	return got == c
}
