package optionsv1_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	billingv1 "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	slav1 "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
)

const testUUID = "0b8f7e3c-4d8e-4c1a-9f3e-2a6b5c7d8e9f"

// TestRulesCompile builds the protovalidate rules of every HashInsight
// message, so a CEL expression that does not compile fails here rather than
// as a runtime error in a service.
func TestRulesCompile(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatalf("protovalidate.New: %v", err)
	}
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		name := string(mt.Descriptor().FullName())
		if !strings.HasPrefix(name, "hashinsight.") {
			return true
		}
		n++
		err := v.Validate(mt.New().Interface())
		var verr *protovalidate.ValidationError
		if err != nil && !errors.As(err, &verr) {
			t.Errorf("%s: rules do not compile or evaluate: %v", name, err)
		}
		return true
	})
	if n == 0 {
		t.Fatal("no hashinsight messages registered")
	}
}

func TestRules(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatalf("protovalidate.New: %v", err)
	}
	from := timestamppb.New(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	to := timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	ptr := func(s string) *string { return &s }

	tests := []struct {
		name  string
		msg   proto.Message
		valid bool
	}{
		{"login ok", &authv1.LoginRequest{Email: "a@example.com", Password: "x"}, true},
		{"login bad email", &authv1.LoginRequest{Email: "nope", Password: "x"}, false},
		{"create client user with customer", &authv1.CreateUserRequest{Email: "c@example.com", Password: "longenough", Role: authv1.Role_ROLE_CLIENT, CustomerId: testUUID}, true},
		{"create client user without customer", &authv1.CreateUserRequest{Email: "c@example.com", Password: "longenough", Role: authv1.Role_ROLE_CLIENT}, false},
		{"create admin with customer", &authv1.CreateUserRequest{Email: "c@example.com", Password: "longenough", Role: authv1.Role_ROLE_ADMIN, CustomerId: testUUID}, false},
		{"create user unspecified role", &authv1.CreateUserRequest{Email: "c@example.com", Password: "longenough"}, false},
		{"api key bad permission", &authv1.CreateApiKeyRequest{Name: "k", Permissions: []string{"miners read"}}, false},
		{"api key ok", &authv1.CreateApiKeyRequest{Name: "k", Permissions: []string{"miners:read"}}, true},
		{"list users page size 1000", &authv1.ListUsersRequest{PageSize: 1000}, true},
		{"list users page size 1001", &authv1.ListUsersRequest{PageSize: 1001}, false},
		{"get miner bad id", &miningv1.GetMinerRequest{Id: "42"}, false},
		{"create miner ok", &miningv1.CreateMinerRequest{Name: "m1", Model: "Antminer S19", HashrateTh: 95, PowerW: 3250}, true},
		{"create miner negative power", &miningv1.CreateMinerRequest{Name: "m1", Model: "Antminer S19", HashrateTh: 95, PowerW: -1}, false},
		{"create miner absurd hashrate", &miningv1.CreateMinerRequest{Name: "m1", Model: "Antminer S19", HashrateTh: 1e6, PowerW: 3250}, false},
		{"update miner clear customer", &miningv1.UpdateMinerRequest{Id: testUUID, CustomerId: ptr("")}, true},
		{"update miner bad customer", &miningv1.UpdateMinerRequest{Id: testUUID, CustomerId: ptr("x")}, false},
		{"uptime ok", &miningv1.GetUptimeRequest{From: from, To: to}, true},
		{"uptime reversed", &miningv1.GetUptimeRequest{From: to, To: from}, false},
		{"uptime missing range", &miningv1.GetUptimeRequest{}, false},
		{"profitability needs subject", &miningv1.CalculateProfitabilityRequest{}, false},
		{"profitability pool fee 2.5", &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "Antminer S19"},
			Params:  &miningv1.ProfitabilityParams{PoolFeePercent: "2.5", ElectricityUsdPerKwh: "0.065"},
		}, true},
		{"profitability pool fee 101", &miningv1.CalculateProfitabilityRequest{
			Subject: &miningv1.CalculateProfitabilityRequest_Model{Model: "Antminer S19"},
			Params:  &miningv1.ProfitabilityParams{PoolFeePercent: "101"},
		}, false},
		{"upload missing site", &miningv1.UploadCollectorBatchRequest{Body: []byte("[]")}, false},
		{"upload bad encoding", &miningv1.UploadCollectorBatchRequest{SiteId: "s1", ContentEncoding: "br"}, false},
		{"upload ok", &miningv1.UploadCollectorBatchRequest{SiteId: "s1", ContentEncoding: "gzip", Body: []byte{0x1f, 0x8b}}, true},
		{"generate invoices ok", &billingv1.GenerateInvoicesRequest{Period: "2026-10"}, true},
		{"generate invoices month 13", &billingv1.GenerateInvoicesRequest{Period: "2026-13"}, false},
		{"payment ok", &billingv1.RecordPaymentRequest{InvoiceId: testUUID, AmountCents: 100, Method: billingv1.PaymentMethod_PAYMENT_METHOD_CARD, IdempotencyKey: "key-0001"}, true},
		{"payment zero", &billingv1.RecordPaymentRequest{InvoiceId: testUUID, Method: billingv1.PaymentMethod_PAYMENT_METHOD_CARD, IdempotencyKey: "key-0001"}, false},
		{"erase unconfirmed", &billingv1.EraseCustomerRequest{Id: testUUID}, false},
		{"broker list without filter", &billingv1.ListBrokerAssignmentsRequest{}, false},
		{"certificate token id", &slav1.GetCertificateRequest{TokenId: "12345"}, true},
		{"certificate token id hex", &slav1.GetCertificateRequest{TokenId: "0x12"}, false},
		{"mint bad address", &slav1.MintCertificateRequest{Id: testUUID, RecipientAddress: "0x123"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.msg)
			var verr *protovalidate.ValidationError
			switch {
			case err != nil && !errors.As(err, &verr):
				t.Fatalf("not a validation error: %v", err)
			case tc.valid && err != nil:
				t.Fatalf("want valid, got %v", err)
			case !tc.valid && err == nil:
				t.Fatal("want a validation error, got none")
			}
		})
	}
}
