package grpcapi

import (
	"context"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/audit"
)

var _ authn.DenialRecorder = (*Server)(nil)

// RecordDenial implements authn.DenialRecorder: every call the auth service refuses for a missing
// permission becomes a permission_denied audit event (SECURITY).
func (s *Server) RecordDenial(ctx context.Context, d authn.Denial) {
	details := map[string]any{"method": d.Method, "permission": d.Permission}
	if c := d.Caller.String(); c != "" {
		details["caller"] = c
	}
	e := audit.Event{
		Level:     audit.LevelSecurity,
		Category:  audit.CategoryAuthorization,
		Action:    audit.ActionPermissionDenied,
		IPAddress: clientIP(ctx),
		Status:    audit.StatusFailure,
		Details:   details,
	}
	if p := d.Principal; p != nil {
		e.UserID, e.UserEmail, e.UserRole = p.Subject, p.Email, p.Role
		details["principal_kind"] = string(p.Kind)
		if p.APIKeyID != "" {
			details["api_key_id"] = p.APIKeyID
		}
	}
	s.audit.Record(ctx, e)
}
