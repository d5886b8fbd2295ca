package lru

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string, int](2)
	c.Add("a", 1, now.Add(time.Second), now)
	c.Add("b", 2, now.Add(time.Minute), now)
	if v, ok := c.Get("a", now); !ok || v != 1 {
		t.Fatalf("a = %v %v", v, ok)
	}
	c.Add("c", 3, now.Add(time.Minute), now) // evicts b, the least recently used
	if _, ok := c.Get("b", now); ok {
		t.Error("b survived eviction")
	}
	if _, ok := c.Get("a", now.Add(time.Second)); ok {
		t.Error("a served at its expiry")
	}
	if c.Len() != 1 {
		t.Errorf("len %d, want 1", c.Len())
	}
	c.Add("d", 4, now, now) // already expired: not stored
	if _, ok := c.Get("d", now.Add(-time.Hour)); ok {
		t.Error("expired entry stored")
	}
	c.Add("c", 5, now, now) // replacing with an expired value removes it
	if _, ok := c.Get("c", now); ok {
		t.Error("c not removed")
	}
	c.Add("e", 6, now.Add(time.Minute), now)
	c.Remove("e")
	c.Add("f", 7, now.Add(time.Minute), now)
	c.Purge()
	if c.Len() != 0 {
		t.Errorf("len after purge %d", c.Len())
	}
}
