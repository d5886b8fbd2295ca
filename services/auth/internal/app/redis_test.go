package app_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/testkit/redistest"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// startRedis runs a throwaway redis-server until the test ends.
func startRedis(t *testing.T) string { return redistest.Start(t).Addr() }

// TestLoginThrottleInRedis: with REDIS_URL set the login throttle lives in Redis, so every
// replica counts together.
func TestLoginThrottleInRedis(t *testing.T) {
	addr := startRedis(t)
	m := startAuth(t, map[string]string{"REDIS_URL": "redis://" + addr + "/0"})
	m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	for range 5 {
		_, err := m.gw.Login(m.from("", "192.0.2.10"), &authv1.LoginRequest{Email: "owner@example.com", Password: "wrong password!"})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
	}
	_, err := m.gw.Login(m.from("", "192.0.2.10"), &authv1.LoginRequest{Email: "owner@example.com", Password: pw})
	wantCode(t, err, codes.ResourceExhausted, errcode.RateLimited)

	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	keys, err := rdb.Keys(t.Context(), "hashinsight:auth:login:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var account, ip bool
	for _, k := range keys {
		account = account || strings.HasPrefix(k, "hashinsight:auth:login:account:lock:")
		ip = ip || strings.HasPrefix(k, "hashinsight:auth:login:ip:fail:")
	}
	if !account || !ip {
		t.Errorf("redis keys %v: want an account lock and an IP counter", keys)
	}
}
