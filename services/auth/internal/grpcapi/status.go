package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/password"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/signing"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// toStatus is the one place the auth service turns an error into a gRPC status. Domain errors
// carry client-safe texts; anything unrecognised is logged and answers Internal without its text
// (pkg/grpcserver also hides the text of Internal statuses).
func (s *Server) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (e.g. built by a handler)
	}
	var fe *users.FieldError
	var te *sessions.ThrottledError
	switch {
	case errors.As(err, &fe):
		return errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request: "+fe.Error(),
			errcode.FieldViolation{Field: fe.Field, Description: fe.Reason})
	case errors.As(err, &te):
		if te.Busy {
			return retryLater(te.RetryAfter, "too many logins in progress; retry later")
		}
		return throttled(te.RetryAfter)

	case errors.Is(err, users.ErrNotFound):
		return errcode.Error(errcode.NotFound, codes.NotFound, err.Error())
	case errors.Is(err, users.ErrEmailTaken):
		return errcode.Error(errcode.Conflict, codes.AlreadyExists, err.Error())
	case errors.Is(err, users.ErrOwnerRequired), errors.Is(err, users.ErrBootstrapClosed), errors.Is(err, users.ErrRoleNotAssignable):
		return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, err.Error())
	case errors.Is(err, users.ErrLastOwner), errors.Is(err, users.ErrDisableSelf), errors.Is(err, users.ErrNotBroker):
		return errcode.Error(errcode.Precondition, codes.FailedPrecondition, err.Error())

	case errors.Is(err, sessions.ErrInvalidCredentials), errors.Is(err, sessions.ErrInvalidRefreshToken),
		errors.Is(err, sessions.ErrTokenReuse), errors.Is(err, sessions.ErrNoUser):
		return errcode.Error(errcode.AuthRequired, codes.Unauthenticated, err.Error())
	case errors.Is(err, sessions.ErrRefreshExpired):
		return errcode.Error(errcode.AuthExpired, codes.Unauthenticated, err.Error())

	case errors.Is(err, audit.ErrInvalidFilter), errors.Is(err, audit.ErrInvalidEvent):
		return errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request: "+err.Error())

	case errors.Is(err, signing.ErrDecrypt), errors.Is(err, signing.ErrNoSigningKey):
		s.logger.ErrorContext(ctx, "signing key unavailable", slog.Any("error", err))
		return errcode.Error(errcode.EncryptionNotConfigured, codes.Internal, "internal error")
	case errors.Is(err, password.ErrMalformedHash):
		s.logger.ErrorContext(ctx, "stored password hash is malformed", slog.Any("error", err))
		return errcode.Error(errcode.Internal, codes.Internal, "internal error")

	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return errcode.Error(errcode.DBTimeout, codes.DeadlineExceeded, "deadline exceeded")
	}
	if st, ok := s.apiKeyStatus(err); ok {
		return st
	}
	if st, ok := storeStatus(err); ok {
		s.logger.WarnContext(ctx, "database unavailable", slog.Any("error", err))
		return st
	}
	s.logger.ErrorContext(ctx, "unexpected error", slog.Any("error", err))
	return errcode.Error(errcode.Internal, codes.Internal, "internal error")
}

// throttled is ResourceExhausted API_001 with a google.rpc.RetryInfo, from which the gateway sets
// Retry-After (whole seconds, rounded up).
func throttled(wait time.Duration) error {
	return retryLater(wait, "too many failed login attempts; retry later")
}

// retryLater is ResourceExhausted API_001 with msg and a RetryInfo of wait.
func retryLater(wait time.Duration, msg string) error {
	wait = max(wait.Round(time.Millisecond), time.Millisecond)
	st := errcode.New(errcode.RateLimited, codes.ResourceExhausted, msg)
	withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
	if err != nil {
		return st.Err()
	}
	return withRetry.Err()
}
