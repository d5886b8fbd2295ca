package ident

import "testing"

func TestIsUUID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"0F8FAD5B-D9CB-469F-A165-70867728950E", true},
		{"", false},
		{"0f8fad5bd9cb469fa16570867728950e", false},
		{"{0f8fad5b-d9cb-469f-a165-70867728950e}", false},
		{"0f8fad5b-d9cb-469f-a165-70867728950g", false},
		{"0f8fad5b+d9cb-469f-a165-70867728950e", false},
		{"0f8fad5b-d9cb-469f-a165-70867728950", false},
	}
	for _, tc := range tests {
		if got := IsUUID(tc.in); got != tc.want {
			t.Errorf("IsUUID(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
