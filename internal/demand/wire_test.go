package demand

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// TestRecordJSONIsTheControlPortContract: a gateway and a manager of
// different versions meet on the control port during a rolling upgrade, so
// the field names of a demand record are fixed.
func TestRecordJSONIsTheControlPortContract(t *testing.T) {
	key := platform.AgentKey{Namespace: "ns", Name: "echo"}
	d := wire.Demand{Held: 3, InFlight: 2, RejectedTotal: 1, RequestsTotal: 9, LastRequest: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"every count", RecordOf(key, d),
			`{"namespace":"ns","name":"echo","held":3,"inFlight":2,"rejectedTotal":1,"requestsTotal":9,"lastRequest":"2026-01-02T03:04:05Z"}`},
		{"no request yet", RecordOf(key, wire.Demand{}),
			`{"namespace":"ns","name":"echo","held":0,"inFlight":0,"rejectedTotal":0,"requestsTotal":0}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.name, got, tt.want)
		}
		var back Record
		if err := json.Unmarshal(got, &back); err != nil || back != tt.rec {
			t.Errorf("%s: decoded %+v (%v), want %+v", tt.name, back, err, tt.rec)
		}
	}
}
