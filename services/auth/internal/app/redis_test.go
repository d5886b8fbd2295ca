package app_test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// startRedis runs a throwaway redis-server on a free loopback port; it skips the test when the
// binary is missing.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not available: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, 10*time.Second, "redis-server to answer", func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte("PING\r\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(line, "+PONG")
	})
	return addr
}

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
