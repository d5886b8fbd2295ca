package platform

import "testing"

func TestEfficiency(t *testing.T) {
	tests := []struct {
		name                 string
		hashrate, power, eff float64
		want                 float64
		wantErr              bool
	}{
		{name: "derived", hashrate: 110, power: 3250, want: 29.55},
		{name: "given and consistent", hashrate: 110, power: 3250, eff: 29.5, want: 29.5},
		{name: "given within 5%", hashrate: 100, power: 3000, eff: 31.4, want: 31.4},
		{name: "given beyond 5%", hashrate: 100, power: 3000, eff: 32, wantErr: true},
		{name: "given far too low", hashrate: 100, power: 3000, eff: 3, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Efficiency(tc.hashrate, tc.power, tc.eff)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
