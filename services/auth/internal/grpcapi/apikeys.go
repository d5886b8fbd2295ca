package grpcapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
	"github.com/hashinsight/platform/services/auth/internal/credentials"
)

// maxAuthenticateCacheTTL is the longest a caller may cache an Authenticate answer.
const maxAuthenticateCacheTTL = 30 * time.Second

const day = 24 * time.Hour

func toAPIKeyState(s apikeys.State) authv1.ApiKeyState {
	switch s {
	case apikeys.StateActive:
		return authv1.ApiKeyState_API_KEY_STATE_ACTIVE
	case apikeys.StateRotated:
		return authv1.ApiKeyState_API_KEY_STATE_ROTATED
	case apikeys.StateExpired:
		return authv1.ApiKeyState_API_KEY_STATE_EXPIRED
	case apikeys.StateRevoked:
		return authv1.ApiKeyState_API_KEY_STATE_REVOKED
	}
	return authv1.ApiKeyState_API_KEY_STATE_UNSPECIFIED
}

func toAPIKey(k apikeys.Key, now time.Time) *authv1.ApiKey {
	return &authv1.ApiKey{
		Id:            k.ID,
		Name:          k.Name,
		DisplayPrefix: k.DisplayPrefix,
		UserId:        k.UserID,
		Permissions:   append([]string(nil), k.Scopes...),
		State:         toAPIKeyState(k.State(now)),
		CreateTime:    ts(k.CreatedAt),
		ExpireTime:    ts(k.ExpiresAt),
		LastUsedTime:  ts(k.LastUsedAt),
		RevokeTime:    ts(k.RevokedAt),
		RotatedFromId: k.RotatedFromID,
		RotatedToId:   k.RotatedToID,
	}
}

func toCollectorToken(t apikeys.CollectorToken) *authv1.CollectorToken {
	return &authv1.CollectorToken{
		Id:              t.ID,
		Name:            t.Name,
		SiteId:          t.SiteID,
		DisplayPrefix:   t.DisplayPrefix,
		CreatedByUserId: t.CreatedBy,
		CreateTime:      ts(t.CreatedAt),
		ExpireTime:      ts(t.ExpiresAt),
		LastUsedTime:    ts(t.LastUsedAt),
		RevokeTime:      ts(t.RevokedAt),
	}
}

// CreateApiKey implements authv1.AuthServiceServer.
func (s *Server) CreateApiKey(ctx context.Context, req *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	secret, k, err := s.creds.CreateKey(ctx, p, credentialsCreateKey(req))
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.CreateApiKeyResponse{ApiKey: toAPIKey(k, time.Now()), Secret: secret}, nil
}

// ListApiKeys implements authv1.AuthServiceServer.
func (s *Server) ListApiKeys(ctx context.Context, req *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, next, err := s.creds.ListKeys(ctx, p, apikeys.ListFilter{
		UserID: req.GetUserId(), IncludeInactive: req.GetIncludeInactive(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	now := time.Now()
	out := make([]*authv1.ApiKey, len(list))
	for i, k := range list {
		out[i] = toAPIKey(k, now)
	}
	return &authv1.ListApiKeysResponse{ApiKeys: out, NextPageToken: next}, nil
}

// RotateApiKey implements authv1.AuthServiceServer.
func (s *Server) RotateApiKey(ctx context.Context, req *authv1.RotateApiKeyRequest) (*authv1.RotateApiKeyResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	overlap := apikeys.DefaultOverlap
	if req.GetOverlap() != nil {
		overlap = req.GetOverlap().AsDuration()
	}
	secret, next, old, err := s.creds.RotateKey(ctx, p, req.GetId(), overlap)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	now := time.Now()
	return &authv1.RotateApiKeyResponse{ApiKey: toAPIKey(next, now), Secret: secret, Previous: toAPIKey(old, now)}, nil
}

// RevokeApiKey implements authv1.AuthServiceServer.
func (s *Server) RevokeApiKey(ctx context.Context, req *authv1.RevokeApiKeyRequest) (*authv1.RevokeApiKeyResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.creds.RevokeKey(ctx, p, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.RevokeApiKeyResponse{ApiKey: toAPIKey(k, time.Now())}, nil
}

// CreateCollectorToken implements authv1.AuthServiceServer.
func (s *Server) CreateCollectorToken(ctx context.Context, req *authv1.CreateCollectorTokenRequest) (*authv1.CreateCollectorTokenResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	secret, t, err := s.creds.CreateCollectorToken(ctx, p, req.GetSiteId(), req.GetName(), time.Duration(req.GetExpiresInDays())*day)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.CreateCollectorTokenResponse{CollectorToken: toCollectorToken(t), Secret: secret}, nil
}

// ListCollectorTokens implements authv1.AuthServiceServer.
func (s *Server) ListCollectorTokens(ctx context.Context, req *authv1.ListCollectorTokensRequest) (*authv1.ListCollectorTokensResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, next, err := s.creds.ListCollectorTokens(ctx, p, apikeys.TokenFilter{
		SiteID: req.GetSiteId(), IncludeInactive: req.GetIncludeInactive(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := make([]*authv1.CollectorToken, len(list))
	for i, t := range list {
		out[i] = toCollectorToken(t)
	}
	return &authv1.ListCollectorTokensResponse{CollectorTokens: out, NextPageToken: next}, nil
}

// RevokeCollectorToken implements authv1.AuthServiceServer.
func (s *Server) RevokeCollectorToken(ctx context.Context, req *authv1.RevokeCollectorTokenRequest) (*authv1.RevokeCollectorTokenResponse, error) {
	ctx = withClientIP(ctx)
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.creds.RevokeCollectorToken(ctx, p, req.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.RevokeCollectorTokenResponse{CollectorToken: toCollectorToken(t)}, nil
}

// Authenticate implements authv1.AuthServiceServer.
func (s *Server) Authenticate(ctx context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	p, err := s.creds.Resolve(ctx, req.GetCredential(), req.GetSiteId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	ttl := maxAuthenticateCacheTTL
	if !p.ExpiresAt.IsZero() {
		ttl = max(min(ttl, time.Until(p.ExpiresAt)), 0)
	}
	return &authv1.AuthenticateResponse{Principal: authn.ToProto(p), CacheTtl: durpb(ttl)}, nil
}

// apiKeyStatus maps the apikeys and authn sentinels.
func (s *Server) apiKeyStatus(err error) (error, bool) {
	switch {
	case errors.Is(err, authn.ErrExpired), errors.Is(err, apikeys.ErrExpired):
		return errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "credential expired"), true
	case errors.Is(err, authn.ErrInvalidCredential), errors.Is(err, apikeys.ErrInvalidKey), errors.Is(err, apikeys.ErrRevoked):
		return errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "invalid credential"), true
	case errors.Is(err, apikeys.ErrSiteMismatch):
		return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, "the collector token is bound to another site"), true
	case errors.Is(err, apikeys.ErrScopeExceeds), errors.Is(err, apikeys.ErrPermissionDenied):
		return errcode.Error(errcode.AuthForbidden, codes.PermissionDenied, clientText(err)), true
	case errors.Is(err, apikeys.ErrNotFound), errors.Is(err, apikeys.ErrUnknownUser):
		return errcode.Error(errcode.NotFound, codes.NotFound, "not found"), true
	case errors.Is(err, apikeys.ErrInactive):
		return errcode.Error(errcode.Conflict, codes.FailedPrecondition, clientText(err)), true
	case errors.Is(err, apikeys.ErrInvalidArgument):
		msg := clientText(err)
		return errcode.Error(errcode.Validation, codes.InvalidArgument, "invalid request: "+msg,
			errcode.FieldViolation{Field: apiKeyField(msg), Description: msg}), true
	}
	return nil, false
}

// clientText is the apikeys error text without the package prefixes ("apikeys: rotate: ...").
func clientText(err error) string {
	msg := err.Error()
	for {
		rest, ok := strings.CutPrefix(msg, "apikeys: ")
		if !ok {
			break
		}
		msg = rest
		// Drop an operation prefix such as "rotate: " that precedes the sentinel.
		for _, op := range []string{"create: ", "rotate: ", "list: ", "revoke: ", "create collector token: ", "list collector tokens: ", "revoke collector token: "} {
			msg = strings.TrimPrefix(msg, op)
		}
	}
	return msg
}

// apiKeyField names the request field an apikeys.ErrInvalidArgument is about.
func apiKeyField(msg string) string {
	switch {
	case strings.Contains(msg, "name"):
		return "name"
	case strings.Contains(msg, "scope"), strings.Contains(msg, "permission"):
		return "permissions"
	case strings.Contains(msg, "overlap"):
		return "overlap"
	case strings.Contains(msg, "site"):
		return "site_id"
	case strings.Contains(msg, "lifetime"):
		return "expires_in_days"
	case strings.Contains(msg, "page"):
		return "page_token"
	case strings.Contains(msg, "owner"):
		return "user_id"
	}
	return ""
}

func credentialsCreateKey(req *authv1.CreateApiKeyRequest) credentials.CreateKeyInput {
	return credentials.CreateKeyInput{
		Name:        req.GetName(),
		Permissions: req.GetPermissions(),
		TTL:         time.Duration(req.GetExpiresInDays()) * day,
		UserID:      req.GetUserId(),
	}
}
