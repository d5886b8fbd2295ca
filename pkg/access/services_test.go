package access_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/access"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	billingv1 "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	slav1 "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
)

// TestEveryServiceMethodDeclaresAccess loads the real service descriptors:
// every RPC of every HashInsight service must carry a valid declaration.
func TestEveryServiceMethodDeclaresAccess(t *testing.T) {
	services := []protoreflect.FullName{
		protoreflect.FullName(authv1.AuthService_ServiceDesc.ServiceName),
		protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName),
		protoreflect.FullName(billingv1.BillingService_ServiceDesc.ServiceName),
		protoreflect.FullName(slav1.SLAService_ServiceDesc.ServiceName),
		protoreflect.FullName(analyticsv1.AnalyticsService_ServiceDesc.ServiceName),
	}
	all, err := access.Load()
	if err != nil {
		t.Fatalf("Load(): %v", err)
	}
	var total int
	for _, svc := range services {
		p, err := access.Load(svc)
		if err != nil {
			t.Fatalf("Load(%s): %v", svc, err)
		}
		if p.Len() == 0 {
			t.Fatalf("%s has no methods", svc)
		}
		total += p.Len()
		for _, m := range p.Methods() {
			if !strings.HasPrefix(m, "/"+string(svc)+"/") {
				t.Errorf("%s: foreign method %s", svc, m)
			}
			r, _ := p.Rule(m)
			if r2, ok := all.Rule(m); !ok || r2.Permission != r.Permission {
				t.Errorf("%s missing from Load()", m)
			}
		}
	}
	if all.Len() != total {
		t.Errorf("Load() covers %d methods, the services %d", all.Len(), total)
	}
	r, ok := all.Rule("/" + miningv1.MiningService_ServiceDesc.ServiceName + "/" + miningv1.MiningService_ServiceDesc.Methods[0].MethodName)
	if !ok || len(r.Callers) == 0 {
		t.Errorf("first mining method rule = %+v, %v", r, ok)
	}
}
