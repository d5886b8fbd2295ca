package errcode_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		code     errcode.Code
		grpcCode codes.Code
		http     int
	}{
		{errcode.AuthRequired, codes.Unauthenticated, http.StatusUnauthorized},
		{errcode.AuthForbidden, codes.PermissionDenied, http.StatusForbidden},
		{errcode.AuthExpired, codes.Unauthenticated, http.StatusUnauthorized},
		{errcode.Validation, codes.InvalidArgument, http.StatusBadRequest},
		{errcode.NotFound, codes.NotFound, http.StatusNotFound},
		{errcode.Conflict, codes.AlreadyExists, http.StatusConflict},
		{errcode.RateLimited, codes.ResourceExhausted, http.StatusTooManyRequests},
		{errcode.DBUnavailable, codes.Unavailable, http.StatusServiceUnavailable},
		{errcode.DBTimeout, codes.DeadlineExceeded, http.StatusGatewayTimeout},
		{errcode.UpstreamFailed, codes.Unavailable, http.StatusBadGateway},
		{errcode.BlockchainNotConfigured, codes.Internal, http.StatusInternalServerError},
		{errcode.EncryptionNotConfigured, codes.Internal, http.StatusInternalServerError},
		{errcode.CacheUnavailable, codes.Unavailable, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.GRPCCode(); got != tt.grpcCode {
				t.Errorf("GRPCCode() = %v, want %v", got, tt.grpcCode)
			}
			if got := errcode.HTTPStatus(tt.code); got != tt.http {
				t.Errorf("HTTPStatus() = %d, want %d", got, tt.http)
			}
			if tt.code.Description() == "" {
				t.Error("empty description")
			}
			// Through the wire form and back.
			err := errcode.Error(tt.code, tt.grpcCode, "boom")
			wrapped := fmt.Errorf("op: %w", err)
			st, ok := status.FromError(wrapped)
			if !ok {
				t.Fatal("not a status")
			}
			got, explicit := errcode.FromStatus(st)
			if got != tt.code || !explicit {
				t.Errorf("FromStatus = %q,%v, want %q,true", got, explicit, tt.code)
			}
			if direct := status.Convert(err); direct.Code() != tt.grpcCode || direct.Message() != "boom" {
				t.Errorf("status = %v %q", direct.Code(), direct.Message())
			}
			if !errcode.Is(wrapped, tt.code) {
				t.Error("Is() = false")
			}
			if errcode.FromError(wrapped) != tt.code {
				t.Error("FromError mismatch")
			}
		})
	}
}

func TestFieldViolations(t *testing.T) {
	st := errcode.New(errcode.Validation, codes.InvalidArgument, "invalid request",
		errcode.FieldViolation{Field: "miner.hashrate_th", Description: "must be greater than 0"},
		errcode.FieldViolation{Field: "name", Description: "value is required"})
	fv := errcode.FieldViolations(st)
	if len(fv) != 2 || fv[0].Field != "miner.hashrate_th" || fv[1].Description != "value is required" {
		t.Fatalf("FieldViolations = %+v", fv)
	}
	// Survives the proto round trip.
	st2 := status.FromProto(st.Proto())
	if got := errcode.FieldViolations(st2); len(got) != 2 {
		t.Fatalf("after proto round trip: %+v", got)
	}
	if c, _ := errcode.FromStatus(st2); c != errcode.Validation {
		t.Fatalf("code = %q", c)
	}
}

func TestDefaultsFromGRPCCode(t *testing.T) {
	tests := []struct {
		grpcCode codes.Code
		want     errcode.Code
		http     int
		name     string
	}{
		{codes.Unauthenticated, errcode.AuthRequired, 401, "UNAUTHENTICATED"},
		{codes.PermissionDenied, errcode.AuthForbidden, 403, "PERMISSION_DENIED"},
		{codes.InvalidArgument, errcode.Validation, 400, "INVALID_ARGUMENT"},
		{codes.NotFound, errcode.NotFound, 404, "NOT_FOUND"},
		{codes.AlreadyExists, errcode.Conflict, 409, "ALREADY_EXISTS"},
		{codes.ResourceExhausted, errcode.RateLimited, 429, "RESOURCE_EXHAUSTED"},
		{codes.Unavailable, errcode.Unavailable, 503, "UNAVAILABLE"},
		{codes.DeadlineExceeded, errcode.Timeout, 504, "DEADLINE_EXCEEDED"},
		{codes.Unimplemented, errcode.Unimplemented, 501, "UNIMPLEMENTED"},
		{codes.Internal, errcode.Internal, 500, "INTERNAL"},
		{codes.Unknown, errcode.Internal, 500, "UNKNOWN"},
		{codes.DataLoss, errcode.Internal, 500, "DATA_LOSS"},
		{codes.Canceled, errcode.Canceled, 499, "CANCELLED"},
		{codes.FailedPrecondition, errcode.Precondition, 400, "FAILED_PRECONDITION"},
	}
	for _, tt := range tests {
		t.Run(tt.grpcCode.String(), func(t *testing.T) {
			got, explicit := errcode.FromStatus(status.New(tt.grpcCode, "x"))
			if got != tt.want || explicit {
				t.Errorf("FromStatus = %q,%v want %q,false", got, explicit, tt.want)
			}
			if h := errcode.HTTPStatusFromGRPC(tt.grpcCode); h != tt.http {
				t.Errorf("HTTPStatusFromGRPC = %d want %d", h, tt.http)
			}
			if h := errcode.HTTPStatus(got); h != tt.http {
				t.Errorf("HTTPStatus(%s) = %d want %d", got, h, tt.http)
			}
			if n := errcode.GRPCCodeName(tt.grpcCode); n != tt.name {
				t.Errorf("GRPCCodeName = %q want %q", n, tt.name)
			}
		})
	}
	if c, _ := errcode.FromStatus(status.New(codes.OK, "")); c != "" {
		t.Errorf("OK gave %q", c)
	}
	if errcode.FromError(errors.New("plain")) != errcode.Internal {
		t.Error("plain error should be Internal")
	}
	if errcode.FromError(nil) != "" {
		t.Error("nil error should give empty code")
	}
}
