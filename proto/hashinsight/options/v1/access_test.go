package optionsv1_test

import (
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	optionsv1 "github.com/hashinsight/platform/proto/hashinsight/options/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
)

var (
	permissionRE = regexp.MustCompile(`^(self|[a-z][a-z_-]*:[a-z][a-z_-]*)$`)
	callerRE     = regexp.MustCompile(`^(svc|operator)/([a-z0-9][a-z0-9-]*|\*)$`)
)

// TestEveryMethodDeclaresAccess fails when any RPC of any HashInsight service
// lacks a usable access declaration: authorization is deny-by-default and
// driven by these descriptors, so a missing one would make the RPC unusable
// (or, worse, tempt someone to special-case it).
func TestEveryMethodDeclaresAccess(t *testing.T) {
	services := map[string]bool{}
	methods := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "hashinsight.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			services[string(sd.FullName())] = true
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				methods++
				checkMethod(t, md)
			}
		}
		return true
	})

	want := []string{
		"hashinsight.auth.v1.AuthService",
		"hashinsight.mining.v1.MiningService",
		"hashinsight.billing.v1.BillingService",
		"hashinsight.sla.v1.SLAService",
		"hashinsight.analytics.v1.AnalyticsService",
	}
	for _, s := range want {
		if !services[s] {
			t.Errorf("service %s not registered", s)
		}
	}
	if len(services) != len(want) {
		t.Errorf("got %d hashinsight services, want %d: %v", len(services), len(want), services)
	}
	if methods == 0 {
		t.Fatal("no methods found")
	}
}

func checkMethod(t *testing.T, md protoreflect.MethodDescriptor) {
	t.Helper()
	name := string(md.FullName())
	opts := md.Options()
	if opts == nil || !proto.HasExtension(opts, optionsv1.E_Access) {
		t.Errorf("%s: no (hashinsight.options.v1.access) option", name)
		return
	}
	access, ok := proto.GetExtension(opts, optionsv1.E_Access).(*optionsv1.Access)
	if !ok || access == nil {
		t.Errorf("%s: access option has unexpected type", name)
		return
	}
	switch {
	case access.GetPublic() && access.GetPermission() != "":
		t.Errorf("%s: public method must not declare a permission (got %q)", name, access.GetPermission())
	case !access.GetPublic() && access.GetPermission() == "":
		t.Errorf("%s: neither public nor a permission", name)
	case !access.GetPublic() && !permissionRE.MatchString(access.GetPermission()):
		t.Errorf("%s: malformed permission %q", name, access.GetPermission())
	}
	if len(access.GetCallers()) == 0 {
		t.Errorf("%s: no callers: nobody could call it", name)
	}
	for _, c := range access.GetCallers() {
		if !callerRE.MatchString(c) {
			t.Errorf("%s: malformed caller pattern %q", name, c)
		}
	}
}
