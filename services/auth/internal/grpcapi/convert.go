package grpcapi

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	pgkit "github.com/hashinsight/platform/pkg/postgres"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/signing"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// ts converts a time to a Timestamp, nil for the zero time.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromTS converts a Timestamp to a time, zero for nil.
func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func toUser(u users.User) *authv1.User {
	return &authv1.User{
		Id:            u.ID,
		Email:         u.Email,
		DisplayName:   u.DisplayName,
		Role:          authn.RoleToProto(u.Role),
		CustomerId:    u.CustomerID,
		CustomerIds:   u.CustomerIDs,
		Permissions:   u.Permissions(),
		Disabled:      u.Disabled(),
		DisableTime:   ts(u.DisabledAt),
		LastLoginTime: ts(u.LastLoginAt),
		CreateTime:    ts(u.CreatedAt),
		UpdateTime:    ts(u.UpdatedAt),
	}
}

func toUsers(list []users.User) []*authv1.User {
	out := make([]*authv1.User, len(list))
	for i, u := range list {
		out[i] = toUser(u)
	}
	return out
}

// fromRole returns the role name of an enum value: "" for ROLE_UNSPECIFIED and "invalid" for an
// unknown number, so the domain reports it as an invalid role rather than "no filter".
func fromRole(r authv1.Role) string {
	if r == authv1.Role_ROLE_UNSPECIFIED {
		return ""
	}
	if name := authn.RoleFromProto(r); name != "" {
		return name
	}
	return "invalid"
}

func toTokenPair(p sessions.TokenPair) *authv1.TokenPair {
	return &authv1.TokenPair{
		AccessToken:            p.AccessToken,
		AccessTokenExpireTime:  ts(p.AccessExpiresAt),
		RefreshToken:           p.RefreshToken,
		RefreshTokenExpireTime: ts(p.RefreshExpiresAt),
		TokenType:              "Bearer",
	}
}

func toSigningKey(k signing.PublicKey) *authv1.SigningKey {
	return &authv1.SigningKey{
		KeyId:      k.ID,
		Algorithm:  k.Algorithm,
		PublicKey:  append([]byte(nil), k.Key...),
		Signing:    k.Signing,
		CreateTime: ts(k.CreatedAt),
		ExpireTime: ts(k.NotAfter),
	}
}

func toAuditLevel(l audit.Level) authv1.AuditLevel {
	switch l {
	case audit.LevelInfo:
		return authv1.AuditLevel_AUDIT_LEVEL_INFO
	case audit.LevelWarning:
		return authv1.AuditLevel_AUDIT_LEVEL_WARNING
	case audit.LevelSecurity:
		return authv1.AuditLevel_AUDIT_LEVEL_SECURITY
	case audit.LevelError:
		return authv1.AuditLevel_AUDIT_LEVEL_ERROR
	}
	return authv1.AuditLevel_AUDIT_LEVEL_UNSPECIFIED
}

func fromAuditLevel(l authv1.AuditLevel) (audit.Level, bool) {
	switch l {
	case authv1.AuditLevel_AUDIT_LEVEL_UNSPECIFIED:
		return "", true
	case authv1.AuditLevel_AUDIT_LEVEL_INFO:
		return audit.LevelInfo, true
	case authv1.AuditLevel_AUDIT_LEVEL_WARNING:
		return audit.LevelWarning, true
	case authv1.AuditLevel_AUDIT_LEVEL_SECURITY:
		return audit.LevelSecurity, true
	case authv1.AuditLevel_AUDIT_LEVEL_ERROR:
		return audit.LevelError, true
	}
	return "", false
}

func toAuditEvent(e audit.Event) *authv1.AuditEvent {
	out := &authv1.AuditEvent{
		Sequence:  e.Seq,
		EventId:   e.ID,
		Timestamp: ts(e.Timestamp),
		Level:     toAuditLevel(e.Level),
		Category:  e.Category,
		Action:    e.Action,
		UserId:    e.UserID,
		UserEmail: e.UserEmail,
		UserRole:  e.UserRole,
		IpAddress: e.IPAddress,
		Status:    e.Status,
		PrevHash:  e.PrevHash,
		Hash:      e.Hash,
	}
	if len(e.Details) > 0 {
		if d, err := structpb.NewStruct(e.Details); err == nil {
			out.Details = d
		}
	}
	return out
}

func durpb(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// storeStatus maps database outages: DB_001 when Postgres cannot be reached, DB_002 on a timeout.
func storeStatus(err error) (error, bool) {
	switch {
	case pgkit.IsTimeout(err):
		return errcode.Error(errcode.DBTimeout, codes.DeadlineExceeded, "database query timed out"), true
	case pgkit.IsUnavailable(err):
		return errcode.Error(errcode.DBUnavailable, codes.Unavailable, "database unavailable"), true
	}
	return nil, false
}
