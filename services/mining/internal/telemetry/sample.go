package telemetry

import (
	"math"
	"strings"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/telemetry/collectorwire"
)

// fromSample converts a RecordTelemetry sample to a record, with the checks the collector
// decoder applies to an upload. Errors are *collectorwire.Error naming the sample's field.
func fromSample(s *miningv1.TelemetrySample) (collectorwire.Record, error) {
	bad := func(field, reason string) error { return &collectorwire.Error{Field: field, Reason: reason} }
	id := strings.TrimSpace(s.GetMinerId())
	switch {
	case id == "":
		return collectorwire.Record{}, bad("miner_id", "is required")
	case len(id) > collectorwire.MaxMinerIDLen:
		return collectorwire.Record{}, bad("miner_id", "too long")
	case s.GetObserveTime() == nil:
		return collectorwire.Record{}, bad("observe_time", "is required")
	case !s.GetObserveTime().IsValid():
		return collectorwire.Record{}, bad("observe_time", "is not a valid timestamp")
	}
	t := s.GetObserveTime().AsTime().UTC()
	if _, err := collectorwire.ParseTimestamp(t.Format("2006-01-02T15:04:05.999999999Z07:00")); err != nil {
		return collectorwire.Record{}, bad("observe_time", "must be within the years 2000-2099")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"hashrate_ghs", s.GetHashrateGhs()}, {"hashrate_5s_ghs", s.GetHashrate_5SGhs()},
		{"power_w", s.GetPowerW()}, {"efficiency_j_per_th", s.GetEfficiencyJPerTh()},
		{"temperature_avg_c", s.GetTemperatureAvgC()}, {"temperature_max_c", s.GetTemperatureMaxC()},
		{"frequency_avg_mhz", s.GetFrequencyAvgMhz()},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return collectorwire.Record{}, bad(f.name, "must be finite")
		}
	}
	if s.GetHashrateGhs() < 0 || s.GetHashrate_5SGhs() < 0 {
		return collectorwire.Record{}, bad("hashrate_ghs", "must not be negative")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"accepted_shares", s.GetAcceptedShares()}, {"rejected_shares", s.GetRejectedShares()},
		{"hardware_errors", s.GetHardwareErrors()}, {"uptime_seconds", s.GetUptimeSeconds()},
	} {
		if f.v < 0 {
			return collectorwire.Record{}, bad(f.name, "must not be negative")
		}
	}
	for _, arr := range [][]float64{s.GetTemperatureChipsC(), s.GetFanSpeedsRpm()} {
		for _, v := range arr {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return collectorwire.Record{}, bad("temperature_chips_c", "must be finite")
			}
		}
	}
	return collectorwire.Record{
		MinerID: id, MinerKey: s.GetMinerKey(), ObservedAt: t, Online: s.GetOnline(),
		HashrateGHs: s.GetHashrateGhs(), Hashrate5sGHs: s.GetHashrate_5SGhs(),
		TempAvgC: s.GetTemperatureAvgC(), TempMaxC: s.GetTemperatureMaxC(),
		TempChipsC: s.GetTemperatureChipsC(), FanSpeedsRPM: s.GetFanSpeedsRpm(),
		FrequencyAvgMHz: s.GetFrequencyAvgMhz(), AcceptedShares: s.GetAcceptedShares(),
		RejectedShares: s.GetRejectedShares(), HardwareErrors: s.GetHardwareErrors(),
		UptimeSeconds: s.GetUptimeSeconds(), PowerW: s.GetPowerW(), EfficiencyJTH: s.GetEfficiencyJPerTh(),
		PoolURL: s.GetPoolUrl(), WorkerName: s.GetWorkerName(), FirmwareVersion: s.GetFirmwareVersion(),
		ErrorType: s.GetErrorType(), ErrorMessage: s.GetErrorMessage(),
	}, nil
}
