package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	grpcprotovalidate "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
)

// internalMessage is all a client learns about an internal failure.
const internalMessage = "internal error"

// traceAttrs returns the trace and span ids of ctx's span, if any.
func traceAttrs(ctx context.Context) []any {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []any{"trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String()}
}

// loggingInterceptors log one line per finished call: code, duration, trace
// and span ids and the caller's mTLS identity. Successful calls go to Debug
// (see codeToLevel), failed ones to Info (client errors) or above.
func (s *Server) loggingInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		s.logger.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	opts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(codeToLevel),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			f := logging.Fields(traceAttrs(ctx))
			if id, err := mtls.PeerIdentity(ctx); err == nil {
				f = append(f, "caller", id.String())
			}
			return f
		}),
	}
	return logging.UnaryServerInterceptor(logger, opts...), logging.StreamServerInterceptor(logger, opts...)
}

// authorize applies the access policy to one call and returns the context
// the handler sees.
func (s *Server) authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	caller, err := mtls.PeerIdentity(ctx)
	if err != nil {
		return ctx, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "a verified mTLS client certificate is required")
	}
	if openMethod(fullMethod) {
		return ctx, nil
	}
	rule, ok := s.cfg.Policy.Rule(fullMethod)
	if !ok {
		return ctx, errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, "method has no access rule: denied")
	}
	if !mtls.MatchAny(rule.Callers, caller) {
		return ctx, errcode.Error(errcode.AuthForbidden, codes.PermissionDenied,
			fmt.Sprintf("caller %s is not allowed to call this method", caller))
	}
	if s.cfg.Principal == nil {
		return ctx, nil
	}
	newCtx, err := s.cfg.Principal.Authenticate(ctx, rule, caller)
	if err != nil {
		if _, isStatus := status.FromError(err); !isStatus {
			s.logger.ErrorContext(ctx, "principal authentication failed", append(traceAttrs(ctx), "grpc.method", fullMethod, "error", err)...)
			return ctx, status.Error(codes.Internal, internalMessage)
		}
		return ctx, err
	}
	if newCtx == nil {
		newCtx = ctx
	}
	return newCtx, nil
}

func (s *Server) accessUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) accessStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if ctx == ss.Context() {
		return handler(srv, ss)
	}
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = ctx
	return handler(srv, w)
}

// endWatchOnDrain cancels health Watch streams when the drain starts:
// they never end on their own and would hold GracefulStop until the timeout.
func (s *Server) endWatchOnDrain(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != "/grpc.health.v1.Health/Watch" {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = ctx
	return handler(srv, w)
}

// validationInterceptors run protovalidate and give its violations the
// HashInsight error shape.
func validationInterceptors(v protovalidate.Validator) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := grpcprotovalidate.UnaryServerInterceptor(v)
	stream := grpcprotovalidate.StreamServerInterceptor(v)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			resp, err := unary(ctx, req, info, handler)
			return resp, toValidationStatus(err)
		}, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return toValidationStatus(stream(srv, ss, info, handler))
		}
}

// toValidationStatus rewrites an InvalidArgument status carrying
// buf.validate.Violations into VALIDATION_001 with BadRequest field
// violations; other errors pass unchanged.
func toValidationStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return err
	}
	var fields []errcode.FieldViolation
	for _, d := range st.Details() {
		vs, ok := d.(*validate.Violations)
		if !ok {
			continue
		}
		for _, v := range vs.GetViolations() {
			desc := v.GetMessage()
			if desc == "" {
				desc = v.GetRuleId()
			}
			fields = append(fields, errcode.FieldViolation{Field: protovalidate.FieldPathString(v.GetField()), Description: desc})
		}
	}
	if len(fields) == 0 {
		return err
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		if f.Field == "" {
			parts[i] = f.Description
		} else {
			parts[i] = f.Field + ": " + f.Description
		}
	}
	return errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "), fields...)
}

// hide replaces the message of Internal, Unknown and DataLoss errors (and
// of plain errors, which gRPC would send as Unknown with their text) with
// "internal error", keeping only the ErrorInfo reason, and logs the
// original. Bare context errors become Canceled / DeadlineExceeded.
func (s *Server) hide(ctx context.Context, fullMethod string, err error) error {
	if err == nil {
		return nil
	}
	st, isStatus := status.FromError(err)
	if !isStatus {
		switch {
		case errors.Is(err, context.Canceled):
			return status.Error(codes.Canceled, context.Canceled.Error())
		case errors.Is(err, context.DeadlineExceeded):
			return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
		}
	}
	code := st.Code()
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
	default:
		return err
	}
	if st.Message() == internalMessage && len(st.Details()) == 0 {
		return err // already hidden (recovery)
	}
	s.logger.ErrorContext(ctx, "internal error hidden from client",
		append(traceAttrs(ctx), "grpc.method", fullMethod, "grpc.code", code.String(), "error", err)...)
	if info := errcode.ErrorInfo(st); info != nil {
		return errcode.Error(errcode.Code(info.GetReason()), code, internalMessage)
	}
	return status.Error(code, internalMessage)
}

func (s *Server) hideUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, s.hide(ctx, info.FullMethod, err)
	}
	return resp, nil
}

func (s *Server) hideStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return s.hide(ss.Context(), info.FullMethod, handler(srv, ss))
}

// recoveryInterceptors turn a panic into Internal "internal error", logging
// the panic value and stack with the trace id.
func (s *Server) recoveryInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	opt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		s.logger.ErrorContext(ctx, "panic in gRPC handler",
			append(traceAttrs(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))...)
		return status.Error(codes.Internal, internalMessage)
	})
	return recovery.UnaryServerInterceptor(opt), recovery.StreamServerInterceptor(opt)
}

// codeToLevel is go-grpc-middleware's default mapping except that success is Debug and
// UNIMPLEMENTED is a warning: an RPC of the contract that is not built yet is expected, not a
// server fault.
func codeToLevel(code codes.Code) logging.Level {
	switch code {
	case codes.OK:
		// A successful call is logged at Debug: at thousands of calls a second the line costs
		// about a third of a cache-hit read's CPU, and the gateway's access log already records
		// every request with its request and trace ids. Failures keep their levels.
		return logging.LevelDebug
	case codes.Unimplemented:
		return logging.LevelWarn
	}
	return logging.DefaultServerCodeToLevel(code)
}
