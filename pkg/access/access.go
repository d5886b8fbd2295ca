// Package access reads the per-method access declaration
// (hashinsight.options.v1.access) from the registered protobuf descriptors
// and turns it into a Policy: for every full gRPC method name, which mTLS
// callers may invoke it and which permission the calling principal needs.
//
// Authorization is thereby declared once, on the RPC in the .proto file, and
// enforced by pkg/grpcserver (and the gateway) from the descriptors; a
// method without a declaration makes Load fail, so it cannot be served by
// accident.
package access

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hashinsight/platform/pkg/mtls"
	optionsv1 "github.com/hashinsight/platform/proto/hashinsight/options/v1"
)

// PackagePrefix is the proto package prefix of HashInsight services; Load
// without service names covers every service under it.
const PackagePrefix = "hashinsight."

// Rule is the access declaration of one method.
type Rule struct {
	// Permission the calling principal must hold, e.g. "miners:read".
	// Empty only when Public.
	Permission string `json:"permission,omitempty"`
	// Public methods need no user credential; the caller allow-list still applies.
	Public bool `json:"public,omitempty"`
	// Callers are the mTLS identity patterns allowed to call the method
	// ("svc/gateway", "operator/*"). Deny by default.
	Callers []string `json:"callers"`
}

// Policy maps full gRPC method names ("/hashinsight.mining.v1.MiningService/GetMiner")
// to their Rule. A Policy is immutable once built and safe for concurrent use.
type Policy struct {
	rules map[string]Rule
}

// NewPolicy builds a Policy from explicit rules keyed by full method name.
// It is meant for tests and for servers that host hand-written services;
// production servers use Load.
func NewPolicy(rules map[string]Rule) *Policy {
	p := &Policy{rules: make(map[string]Rule, len(rules))}
	for m, r := range rules {
		r.Callers = slices.Clone(r.Callers)
		p.rules[m] = r
	}
	return p
}

// Load builds the Policy of the named services from protoregistry.GlobalFiles.
// With no names it covers every service whose package starts with
// "hashinsight.". It fails when a named service is not registered, when a
// method has no access option, or when a declaration is malformed.
func Load(serviceNames ...protoreflect.FullName) (*Policy, error) {
	return LoadFrom(protoregistry.GlobalFiles, serviceNames...)
}

// LoadFrom is Load over an explicit descriptor registry.
func LoadFrom(files *protoregistry.Files, serviceNames ...protoreflect.FullName) (*Policy, error) {
	var services []protoreflect.ServiceDescriptor
	if len(serviceNames) == 0 {
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			if !strings.HasPrefix(string(fd.Package()), PackagePrefix) {
				return true
			}
			for i := range fd.Services().Len() {
				services = append(services, fd.Services().Get(i))
			}
			return true
		})
	} else {
		for _, name := range serviceNames {
			d, err := files.FindDescriptorByName(name)
			if err != nil {
				return nil, fmt.Errorf("access: service %s: %w", name, err)
			}
			sd, ok := d.(protoreflect.ServiceDescriptor)
			if !ok {
				return nil, fmt.Errorf("access: %s is not a service", name)
			}
			services = append(services, sd)
		}
	}

	p := &Policy{rules: make(map[string]Rule)}
	var errs []error
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + string(sd.FullName()) + "/" + string(md.Name())
			rule, err := ruleOf(md)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", full, err))
				continue
			}
			p.rules[full] = rule
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	return p, nil
}

func ruleOf(md protoreflect.MethodDescriptor) (Rule, error) {
	opts := md.Options()
	if opts == nil || !proto.HasExtension(opts, optionsv1.E_Access) {
		return Rule{}, errors.New("missing (hashinsight.options.v1.access) option")
	}
	a, ok := proto.GetExtension(opts, optionsv1.E_Access).(*optionsv1.Access)
	if !ok || a == nil {
		return Rule{}, errors.New("unreadable (hashinsight.options.v1.access) option")
	}
	r := Rule{Permission: a.GetPermission(), Public: a.GetPublic(), Callers: slices.Clone(a.GetCallers())}
	return r, r.validate()
}

func (r Rule) validate() error {
	if len(r.Callers) == 0 {
		return errors.New("access option lists no callers")
	}
	for _, c := range r.Callers {
		if err := mtls.ValidatePattern(c); err != nil {
			return fmt.Errorf("malformed caller pattern: %w", err)
		}
	}
	if !r.Public && r.Permission == "" {
		return errors.New("access option is neither public nor names a permission")
	}
	return nil
}

// Rule returns the rule of a full method name and whether there is one.
func (p *Policy) Rule(fullMethod string) (Rule, bool) {
	if p == nil {
		return Rule{}, false
	}
	r, ok := p.rules[fullMethod]
	return r, ok
}

// Methods returns the full method names the policy covers, sorted.
func (p *Policy) Methods() []string {
	if p == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(p.rules))
}

// Len is the number of methods the policy covers.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}
