package platform

import (
	"context"
	"slices"

	"github.com/hashinsight/platform/pkg/authn"
)

// Scope is the set of customers whose miners a caller may see: every customer (owners, admins,
// services, operators) or exactly CustomerIDs (a client's one customer, a broker's assigned
// ones). A call without a principal sees nothing.
//
// In SQL, filter with ScopePredicate and bind All and CustomerIDs:
//
//	WHERE ($1::bool OR customer_id = ANY($2::uuid[]))
type Scope struct {
	All         bool
	CustomerIDs []string
}

// ScopePredicate is the SQL condition of a Scope on a miners row aliased m, with All bound to
// $1 and CustomerIDs to $2; renumber with fmt when the query binds them elsewhere.
const ScopePredicate = `($1::bool OR m.customer_id = ANY($2::uuid[]))`

// ScopeFrom returns the tenant scope of the caller of ctx.
func ScopeFrom(ctx context.Context) Scope {
	p, _ := authn.FromContext(ctx)
	all, ids := authn.CustomerFilter(p)
	if ids == nil {
		ids = []string{}
	}
	return Scope{All: all, CustomerIDs: ids}
}

// Sees reports whether the scope includes a miner owned by customerID ("" for an unassigned
// miner, which only unrestricted callers see).
func (s Scope) Sees(customerID string) bool {
	return s.All || (customerID != "" && slices.Contains(s.CustomerIDs, customerID))
}

// Narrow applies a requested customer filter to the scope: "" keeps the scope; a customer
// outside it yields a scope that sees nothing (the answer is empty, as for a customer without
// miners, so nothing about other tenants leaks).
func (s Scope) Narrow(customerID string) Scope {
	switch {
	case customerID == "":
		return s
	case s.Sees(customerID):
		return Scope{CustomerIDs: []string{customerID}}
	default:
		return Scope{CustomerIDs: []string{}}
	}
}
