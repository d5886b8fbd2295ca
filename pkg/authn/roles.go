package authn

import "slices"

// Permissions: the full vocabulary (DESIGN.md §3).
const (
	PermMinersRead     = "miners:read"
	PermMinersWrite    = "miners:write"
	PermMinersDelete   = "miners:delete"
	PermModelsWrite    = "models:write"
	PermCustomersRead  = "customers:read"
	PermCustomersWrite = "customers:write"
	PermBillingRead    = "billing:read"
	PermBillingWrite   = "billing:write"
	PermSLARead        = "sla:read"
	PermSLAWrite       = "sla:write"
	PermAnalyticsRead  = "analytics:read"
	PermAnalyticsWrite = "analytics:write"
	PermUsersAdmin     = "users:admin"
	PermAPIKeysManage  = "apikeys:manage"
	PermAuditRead      = "audit:read"
	PermCollectorWrite = "collector:write"
	// PermSelf is acting on one's own account (me, logout); every principal holds it.
	PermSelf = "self"
)

// Roles of human users.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleBroker = "broker"
	RoleClient = "client"
)

// allPermissions is the vocabulary in a stable order.
func allPermissions() []string {
	return []string{
		PermMinersRead, PermMinersWrite, PermMinersDelete, PermModelsWrite,
		PermCustomersRead, PermCustomersWrite, PermBillingRead, PermBillingWrite,
		PermSLARead, PermSLAWrite, PermAnalyticsRead, PermAnalyticsWrite,
		PermUsersAdmin, PermAPIKeysManage, PermAuditRead, PermCollectorWrite, PermSelf,
	}
}

// AllPermissions returns every permission, in a stable order (a fresh slice).
func AllPermissions() []string { return allPermissions() }

// Roles returns the role names, most privileged first (a fresh slice).
func Roles() []string { return []string{RoleOwner, RoleAdmin, RoleBroker, RoleClient} }

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool {
	switch role {
	case RoleOwner, RoleAdmin, RoleBroker, RoleClient:
		return true
	}
	return false
}

// ValidPermission reports whether perm belongs to the vocabulary.
func ValidPermission(perm string) bool { return slices.Contains(allPermissions(), perm) }

// PermissionsForRole returns the permissions of role (a fresh slice), nil for an unknown role.
// Owners and admins hold every permission; what separates them is that only an owner may create
// or modify owners (see CanAssignRole).
func PermissionsForRole(role string) []string {
	switch role {
	case RoleOwner, RoleAdmin:
		return allPermissions()
	case RoleBroker:
		return []string{
			PermMinersRead, PermMinersWrite, PermCustomersRead, PermCustomersWrite,
			PermBillingRead, PermSLARead, PermAnalyticsRead, PermAPIKeysManage, PermSelf,
		}
	case RoleClient:
		return []string{PermMinersRead, PermBillingRead, PermSLARead, PermAnalyticsRead, PermAPIKeysManage, PermSelf}
	}
	return nil
}

// RoleSeesAllCustomers reports whether role is free of the tenant filter (owner, admin).
func RoleSeesAllCustomers(role string) bool { return role == RoleOwner || role == RoleAdmin }

// CanAssignRole reports whether a user of role actor may give role target to a user (or change
// the role of a user who has target): owners may assign any role, admins any role but owner,
// others none.
func CanAssignRole(actor, target string) bool {
	if !ValidRole(target) {
		return false
	}
	switch actor {
	case RoleOwner:
		return true
	case RoleAdmin:
		return target != RoleOwner
	}
	return false
}

// Missing returns the permissions of requested that held does not cover, in the order of
// requested ("self" is always covered). An API key's scope must have none missing from its
// creator's (and owner's) permissions.
func Missing(requested, held []string) []string {
	var out []string
	for _, r := range requested {
		if r != PermSelf && !slices.Contains(held, r) {
			out = append(out, r)
		}
	}
	return out
}
