package access_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/emptypb"

	"github.com/hashinsight/platform/pkg/access"
	optionsv1 "github.com/hashinsight/platform/proto/hashinsight/options/v1"
)

type method struct {
	name   string
	access *optionsv1.Access // nil: no option
}

// registry builds a descriptor registry holding one service in package pkg.
func registry(t *testing.T, pkg, svc string, methods ...method) *protoregistry.Files {
	t.Helper()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String(strings.ReplaceAll(pkg, ".", "/") + "/test.proto"),
		Package:    proto.String(pkg),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto"},
	}
	sd := &descriptorpb.ServiceDescriptorProto{Name: proto.String(svc)}
	for _, m := range methods {
		md := &descriptorpb.MethodDescriptorProto{
			Name:       proto.String(m.name),
			InputType:  proto.String(".google.protobuf.Empty"),
			OutputType: proto.String(".google.protobuf.Empty"),
		}
		if m.access != nil {
			opts := &descriptorpb.MethodOptions{}
			proto.SetExtension(opts, optionsv1.E_Access, m.access)
			md.Options = opts
		}
		sd.Method = append(sd.Method, md)
	}
	fdp.Service = []*descriptorpb.ServiceDescriptorProto{sd}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	files := new(protoregistry.Files)
	if err := files.RegisterFile(fd); err != nil {
		t.Fatalf("RegisterFile: %v", err)
	}
	return files
}

func TestLoadFrom(t *testing.T) {
	files := registry(t, "hashinsight.test.v1", "TestService",
		method{"Get", &optionsv1.Access{Permission: "things:read", Callers: []string{"svc/gateway", "operator/*"}}},
		method{"Login", &optionsv1.Access{Public: true, Callers: []string{"svc/gateway"}}},
	)
	tests := []struct {
		name  string
		names []protoreflect.FullName
	}{
		{"all hashinsight services", nil},
		{"named service", []protoreflect.FullName{"hashinsight.test.v1.TestService"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := access.LoadFrom(files, tt.names...)
			if err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			if p.Len() != 2 {
				t.Fatalf("Len = %d, want 2 (%v)", p.Len(), p.Methods())
			}
			r, ok := p.Rule("/hashinsight.test.v1.TestService/Get")
			if !ok || r.Permission != "things:read" || r.Public || len(r.Callers) != 2 || r.Callers[1] != "operator/*" {
				t.Errorf("Get rule = %+v, %v", r, ok)
			}
			r, ok = p.Rule("/hashinsight.test.v1.TestService/Login")
			if !ok || !r.Public || r.Permission != "" {
				t.Errorf("Login rule = %+v, %v", r, ok)
			}
			if _, ok := p.Rule("/hashinsight.test.v1.TestService/Nope"); ok {
				t.Error("rule for unknown method")
			}
		})
	}
}

func TestLoadFromRejects(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		names   []protoreflect.FullName
		methods []method
		wantErr string
	}{
		{"missing option", "hashinsight.test.v1", nil,
			[]method{{"Get", &optionsv1.Access{Permission: "x:read", Callers: []string{"svc/gateway"}}}, {"Bare", nil}},
			"Bare: missing"},
		{"no callers", "hashinsight.test.v1", nil,
			[]method{{"Get", &optionsv1.Access{Permission: "x:read"}}}, "no callers"},
		{"no permission and not public", "hashinsight.test.v1", nil,
			[]method{{"Get", &optionsv1.Access{Callers: []string{"svc/gateway"}}}}, "neither public"},
		{"bad caller pattern", "hashinsight.test.v1", nil,
			[]method{{"Get", &optionsv1.Access{Permission: "x:read", Callers: []string{"gateway"}}}}, "malformed caller"},
		{"unknown caller kind", "hashinsight.test.v1", nil,
			[]method{{"Get", &optionsv1.Access{Permission: "x:read", Callers: []string{"robot/x"}}}}, "malformed caller"},
		{"unknown service", "hashinsight.test.v1", []protoreflect.FullName{"hashinsight.nope.v1.Nope"},
			[]method{{"Get", &optionsv1.Access{Permission: "x:read", Callers: []string{"svc/gateway"}}}}, "hashinsight.nope.v1.Nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := registry(t, tt.pkg, "TestService", tt.methods...)
			_, err := access.LoadFrom(files, tt.names...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadIgnoresOtherPackages(t *testing.T) {
	files := registry(t, "other.v1", "OtherService", method{"Bare", nil})
	p, err := access.LoadFrom(files)
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d", p.Len())
	}
}

func TestNewPolicy(t *testing.T) {
	callers := []string{"svc/gateway"}
	p := access.NewPolicy(map[string]access.Rule{"/a.B/C": {Permission: "x:read", Callers: callers}})
	callers[0] = "svc/evil"
	r, ok := p.Rule("/a.B/C")
	if !ok || r.Callers[0] != "svc/gateway" {
		t.Fatalf("rule = %+v %v (NewPolicy must copy callers)", r, ok)
	}
	var nilPolicy *access.Policy
	if _, ok := nilPolicy.Rule("/a.B/C"); ok || nilPolicy.Len() != 0 {
		t.Fatal("nil policy must deny")
	}
}
