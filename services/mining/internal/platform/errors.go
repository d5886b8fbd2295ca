package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
	pgkit "github.com/hashinsight/platform/pkg/postgres"
)

// NotFoundError is a resource that does not exist or that the caller may not see (another
// tenant's resource answers exactly like a missing one).
type NotFoundError struct {
	// What is the kind of resource ("miner", "miner model").
	What string
	// ID is the identifier the caller gave.
	ID string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.What, e.ID) }

// NotFound returns a *NotFoundError.
func NotFound(what, id string) error { return &NotFoundError{What: what, ID: id} }

// FieldError is a request field with a value the domain refuses (beyond the proto's rules).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// InvalidField returns a *FieldError.
func InvalidField(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// ConflictError is a write that collides with existing data (a duplicate serial, a name already
// used at the site).
type ConflictError struct {
	Field  string
	Reason string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Reason }

// Conflict returns a *ConflictError.
func Conflict(field, reason string) error { return &ConflictError{Field: field, Reason: reason} }

// PreconditionError is a request that is well-formed but cannot be carried out in the current
// state (a catalogue model still used by miners, say).
type PreconditionError struct{ Reason string }

func (e *PreconditionError) Error() string { return e.Reason }

// Precondition returns a *PreconditionError.
func Precondition(reason string) error { return &PreconditionError{Reason: reason} }

// ToStatus is the one place the mining service turns an error into a gRPC status. Domain errors
// carry client-safe texts; statuses pass through; anything unrecognised is logged and answers
// Internal without its text.
func ToStatus(ctx context.Context, logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var (
		nf *NotFoundError
		fe *FieldError
		ce *ConflictError
		pe *PreconditionError
	)
	switch {
	case errors.As(err, &nf):
		return errcode.Error(errcode.NotFound, codes.NotFound, nf.Error())
	case errors.As(err, &fe):
		return errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request: "+fe.Error(),
			errcode.FieldViolation{Field: fe.Field, Description: fe.Reason})
	case errors.As(err, &ce):
		return errcode.Error(errcode.Conflict, codes.AlreadyExists, ce.Error(),
			errcode.FieldViolation{Field: ce.Field, Description: ce.Reason})
	case errors.As(err, &pe):
		return errcode.Error(errcode.Precondition, codes.FailedPrecondition, pe.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded), pgkit.IsTimeout(err):
		return errcode.Error(errcode.DBTimeout, codes.DeadlineExceeded, "database query timed out")
	case pgkit.IsUnavailable(err):
		logger.WarnContext(ctx, "database unavailable", slog.Any("error", err))
		return errcode.Error(errcode.DBUnavailable, codes.Unavailable, "database unavailable")
	}
	logger.ErrorContext(ctx, "unexpected error", slog.Any("error", err))
	return errcode.Error(errcode.Internal, codes.Internal, "internal error")
}
