package inventory

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// Miner is one miner of the fleet as the inventory stores it.
type Miner struct {
	ID   string
	Name string
	// Model is the catalogue model's name (its canonical spelling); ModelID its id.
	Model   string
	ModelID string
	// Serial is "" when the miner has none (NULL in the table).
	Serial string
	Site   string
	Zone   string
	// CustomerID is "" when the miner is unassigned (NULL in the table).
	CustomerID string
	// Status is one of the Status* values.
	Status     string
	HashrateTH float64
	PowerW     float64
	Efficiency float64
	Notes      string
	LastSeenAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Miner statuses as the table stores them.
const (
	StatusActive      = "active"
	StatusOffline     = "offline"
	StatusMaintenance = "maintenance"
	StatusRetired     = "retired"
)

// statusFromProto returns the stored status of s ("" for UNSPECIFIED).
func statusFromProto(s miningv1.MinerStatus) string {
	switch s {
	case miningv1.MinerStatus_MINER_STATUS_ACTIVE:
		return StatusActive
	case miningv1.MinerStatus_MINER_STATUS_OFFLINE:
		return StatusOffline
	case miningv1.MinerStatus_MINER_STATUS_MAINTENANCE:
		return StatusMaintenance
	case miningv1.MinerStatus_MINER_STATUS_RETIRED:
		return StatusRetired
	}
	return ""
}

func statusToProto(s string) miningv1.MinerStatus {
	switch s {
	case StatusActive:
		return miningv1.MinerStatus_MINER_STATUS_ACTIVE
	case StatusOffline:
		return miningv1.MinerStatus_MINER_STATUS_OFFLINE
	case StatusMaintenance:
		return miningv1.MinerStatus_MINER_STATUS_MAINTENANCE
	case StatusRetired:
		return miningv1.MinerStatus_MINER_STATUS_RETIRED
	}
	return miningv1.MinerStatus_MINER_STATUS_UNSPECIFIED
}

// toProto converts m to its API form.
func (m *Miner) toProto() *miningv1.Miner {
	pb := &miningv1.Miner{
		Id:               m.ID,
		Name:             m.Name,
		Model:            m.Model,
		Serial:           m.Serial,
		Site:             m.Site,
		Zone:             m.Zone,
		CustomerId:       m.CustomerID,
		Status:           statusToProto(m.Status),
		HashrateTh:       m.HashrateTH,
		PowerW:           m.PowerW,
		EfficiencyJPerTh: m.Efficiency,
		Notes:            m.Notes,
		CreateTime:       timestamppb.New(m.CreatedAt),
		UpdateTime:       timestamppb.New(m.UpdatedAt),
	}
	if m.LastSeenAt != nil {
		pb.LastSeenTime = timestamppb.New(*m.LastSeenAt)
	}
	return pb
}

// minerFromCreate builds the miner a CreateMinerRequest describes (model unresolved) and checks
// what the proto rules cannot: text hygiene and the efficiency rule.
func minerFromCreate(req *miningv1.CreateMinerRequest) (*Miner, error) {
	m := &Miner{
		Name:       req.GetName(),
		Model:      req.GetModel(),
		Serial:     req.GetSerial(),
		Site:       req.GetSite(),
		Zone:       req.GetZone(),
		CustomerID: strings.ToLower(req.GetCustomerId()),
		Status:     statusFromProto(req.GetStatus()),
		HashrateTH: req.GetHashrateTh(),
		PowerW:     req.GetPowerW(),
		Efficiency: req.GetEfficiencyJPerTh(),
		Notes:      req.GetNotes(),
	}
	if m.Status == "" {
		m.Status = StatusActive
	}
	if err := m.checkTexts(); err != nil {
		return nil, err
	}
	eff, err := platform.Efficiency(m.HashrateTH, m.PowerW, m.Efficiency)
	if err != nil {
		return nil, platform.InvalidField("efficiency_j_per_th", err.Error())
	}
	m.Efficiency = eff
	return m, nil
}

// applyUpdate changes m by the fields present in req and re-checks the result. It reports
// whether the model changed (to be resolved by name) and leaves customer checks to the caller.
func (m *Miner) applyUpdate(req *miningv1.UpdateMinerRequest) (modelChanged bool, err error) {
	if req.Name != nil {
		m.Name = *req.Name
	}
	if req.Model != nil && !strings.EqualFold(*req.Model, m.Model) {
		m.Model, m.ModelID, modelChanged = *req.Model, "", true
	}
	if req.Serial != nil {
		m.Serial = *req.Serial
	}
	if req.Site != nil {
		m.Site = *req.Site
	}
	if req.Zone != nil {
		m.Zone = *req.Zone
	}
	if req.CustomerId != nil {
		m.CustomerID = strings.ToLower(*req.CustomerId)
	}
	if req.Status != nil {
		m.Status = statusFromProto(*req.Status)
	}
	if req.Notes != nil {
		m.Notes = *req.Notes
	}
	figures := req.HashrateTh != nil || req.PowerW != nil
	if req.HashrateTh != nil {
		m.HashrateTH = *req.HashrateTh
	}
	if req.PowerW != nil {
		m.PowerW = *req.PowerW
	}
	// Only the texts being changed are checked: a stored value (an import's, say) does not block
	// an unrelated edit.
	for _, f := range []struct {
		field string
		value *string
	}{{"name", req.Name}, {"model", req.Model}, {"serial", req.Serial}, {"site", req.Site}, {"zone", req.Zone}} {
		if f.value == nil {
			continue
		}
		if err := checkIdentifier(f.field, *f.value); err != nil {
			return false, err
		}
	}
	if req.Notes != nil {
		if err := checkNoControl("notes", *req.Notes, true); err != nil {
			return false, err
		}
	}
	switch {
	case req.EfficiencyJPerTh != nil:
		// Given: it must agree with the (possibly new) hashrate and power.
		if m.Efficiency, err = platform.Efficiency(m.HashrateTH, m.PowerW, *req.EfficiencyJPerTh); err != nil {
			return false, platform.InvalidField("efficiency_j_per_th", err.Error())
		}
	case figures:
		m.Efficiency, _ = platform.Efficiency(m.HashrateTH, m.PowerW, 0) // derivation cannot fail
	}
	return modelChanged, nil
}

// checkTexts refuses identifiers that the proto's length rules let through but that would make
// miners hard to tell apart: leading or trailing white space and control characters.
func (m *Miner) checkTexts() error {
	for _, f := range []struct{ field, value string }{
		{"name", m.Name}, {"model", m.Model}, {"serial", m.Serial}, {"site", m.Site}, {"zone", m.Zone},
	} {
		if err := checkIdentifier(f.field, f.value); err != nil {
			return err
		}
	}
	return checkNoControl("notes", m.Notes, true)
}

// checkIdentifier refuses leading or trailing white space and control characters in value.
func checkIdentifier(field, value string) error {
	if strings.TrimSpace(value) != value {
		return platform.InvalidField(field, "must not start or end with white space")
	}
	return checkNoControl(field, value, false)
}

// checkNoControl refuses control characters (other than new lines and tabs when multiline).
func checkNoControl(field, value string, multiline bool) error {
	for _, r := range value {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return platform.InvalidField(field, fmt.Sprintf("must not contain control characters (U+%04X)", r))
		}
	}
	return nil
}
