package cpuprio

import (
	"fmt"
	"strings"
	"testing"
)

// statLine is a stat line of a thread named name, at nice and in class policy.
func statLine(name string, nice, policy string) string {
	f := make([]string, 50)
	for i := range f {
		f[i] = "0"
	}
	f[0], f[1], f[2] = "4242", "("+name+")", "S"
	f[18], f[40] = nice, policy // fields 19 and 41
	return strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Thread
		wantErr    string
	}{
		{"plain", statLine("worker", "19", "5"), Thread{Nice: 19, Policy: 5}, ""},
		{"negative nice", statLine("db", "-5", "0"), Thread{Nice: -5, Policy: 0}, ""},
		{"name with spaces and parentheses", statLine("a) b (c", "7", "3"), Thread{Nice: 7, Policy: 3}, ""},
		{"no name", strings.ReplaceAll(statLine("x", "1", "1"), ")", ""), Thread{}, "parenthesised name"},
		{"short", "4242 (x) S 1 2 3\n", Thread{}, "fields after the name"},
		{"nice not a number", statLine("x", "high", "5"), Thread{}, "nice"},
		{"policy not a number", statLine("x", "19", "idle"), Thread{}, "policy"},
		{"empty", "", Thread{}, "parenthesised name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseStat = %+v, %v; want an error about %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseStat = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add(statLine("worker", "19", "5"))
	f.Add(statLine("a) b (c", "7", "3"))
	f.Add("1 (x) S")
	f.Fuzz(func(t *testing.T, line string) {
		th, err := parseStat([]byte(line))
		if err == nil && fmt.Sprint(th) == "" {
			t.Fatal("unreachable")
		}
	})
}

func TestLowerToIdleRefusesRaising(t *testing.T) {
	for _, nice := range []int{-1, -20, 20, 40} {
		if err := LowerToIdle(nice); err == nil || !strings.Contains(err.Error(), "nice") {
			t.Errorf("LowerToIdle(%d) = %v, want an error naming nice", nice, err)
		}
	}
}
