package authn

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// RoleFromProto returns the role name of r ("" for ROLE_UNSPECIFIED or an unknown value).
func RoleFromProto(r authv1.Role) string {
	switch r {
	case authv1.Role_ROLE_OWNER:
		return RoleOwner
	case authv1.Role_ROLE_ADMIN:
		return RoleAdmin
	case authv1.Role_ROLE_BROKER:
		return RoleBroker
	case authv1.Role_ROLE_CLIENT:
		return RoleClient
	}
	return ""
}

// RoleToProto returns the enum value of role (ROLE_UNSPECIFIED for an unknown name).
func RoleToProto(role string) authv1.Role {
	switch role {
	case RoleOwner:
		return authv1.Role_ROLE_OWNER
	case RoleAdmin:
		return authv1.Role_ROLE_ADMIN
	case RoleBroker:
		return authv1.Role_ROLE_BROKER
	case RoleClient:
		return authv1.Role_ROLE_CLIENT
	}
	return authv1.Role_ROLE_UNSPECIFIED
}

// ToProto converts p to the wire form. An operator, which the proto has no kind for, travels as
// PRINCIPAL_KIND_SERVICE with service "operator/<name>".
func ToProto(p *Principal) *authv1.Principal {
	if p == nil {
		return nil
	}
	out := &authv1.Principal{
		Email:            p.Email,
		Role:             RoleToProto(p.Role),
		Permissions:      append([]string(nil), p.Permissions...),
		AllCustomers:     p.AllCustomers,
		CustomerIds:      append([]string(nil), p.CustomerIDs...),
		ApiKeyId:         p.APIKeyID,
		CollectorTokenId: p.CollectorTokenID,
		SiteId:           p.SiteID,
	}
	switch p.Kind {
	case KindUser:
		out.Kind, out.UserId = authv1.PrincipalKind_PRINCIPAL_KIND_USER, p.Subject
	case KindAPIKey:
		out.Kind, out.UserId = authv1.PrincipalKind_PRINCIPAL_KIND_API_KEY, p.Subject
	case KindCollector:
		out.Kind, out.UserId = authv1.PrincipalKind_PRINCIPAL_KIND_COLLECTOR, p.Subject
	case KindService, KindOperator:
		out.Kind, out.Service = authv1.PrincipalKind_PRINCIPAL_KIND_SERVICE, p.Subject
	}
	if !p.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(p.ExpiresAt)
	}
	return out
}

// FromProto converts the wire form to a Principal; nil for nil or PRINCIPAL_KIND_UNSPECIFIED.
func FromProto(pb *authv1.Principal) *Principal {
	if pb == nil {
		return nil
	}
	p := &Principal{
		Subject:          pb.GetUserId(),
		Email:            pb.GetEmail(),
		Role:             RoleFromProto(pb.GetRole()),
		Permissions:      append([]string(nil), pb.GetPermissions()...),
		AllCustomers:     pb.GetAllCustomers(),
		CustomerIDs:      append([]string(nil), pb.GetCustomerIds()...),
		APIKeyID:         pb.GetApiKeyId(),
		CollectorTokenID: pb.GetCollectorTokenId(),
		SiteID:           pb.GetSiteId(),
	}
	switch pb.GetKind() {
	case authv1.PrincipalKind_PRINCIPAL_KIND_USER:
		p.Kind = KindUser
	case authv1.PrincipalKind_PRINCIPAL_KIND_API_KEY:
		p.Kind = KindAPIKey
	case authv1.PrincipalKind_PRINCIPAL_KIND_COLLECTOR:
		p.Kind = KindCollector
	case authv1.PrincipalKind_PRINCIPAL_KIND_SERVICE:
		p.Kind, p.Subject = KindService, pb.GetService()
		if strings.HasPrefix(pb.GetService(), "operator/") {
			p.Kind = KindOperator
		}
	default:
		return nil
	}
	if pb.GetExpireTime() != nil {
		p.ExpiresAt = pb.GetExpireTime().AsTime()
	}
	return p
}
