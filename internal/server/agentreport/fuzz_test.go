package agentreport

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairnbackup/cairn/internal/restapi"
)

// FuzzDecode: an agent report's body comes from any authenticated
// client. Decode and Check never panic; Decode refuses bodies over
// restapi.MaxAgentReport; a report both accept has its fields in range,
// and encodes to a body that decodes and checks to the same report.
func FuzzDecode(f *testing.F) {
	g := good()
	b, _ := json.Marshal(g)
	f.Add(b)
	ok := g
	ok.Result, ok.Error = restapi.AgentOK, ""
	b, _ = json.Marshal(ok)
	f.Add(b)
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"run_id":"ab"}{}`,
		`{"run_id":"ab","attempt":1,"start":"2026-05-01T03:59:00Z","end":"2026-05-01T04:00:00Z","result":"ok","unknown":1}`,
		`{"run_id":"AB","attempt":1,"start":"2026-05-01T03:59:00Z","end":"2026-05-01T04:00:00Z","result":"ok"}`,
		`{"run_id":"ab","attempt":-1,"start":"2026-05-01T03:59:00Z","end":"2026-05-01T04:00:00Z","result":"failed"}`,
		`{"run_id":"ab","attempt":1,"start":"2026-05-01T04:00:00Z","end":"2026-05-01T03:00:00Z","result":"failed"}`,
		`{"run_id":"ab","attempt":1e99,"bytes_added":-5,"duration_ms":9223372036854775808}`,
		`{"start":"not a time"}`,
		`{"run_id":"ab","error":"` + strings.Repeat("x", restapi.MaxAgentReport) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := Decode(bytes.NewReader(body))
		if len(body) > restapi.MaxAgentReport && err == nil {
			t.Fatalf("a %d-byte body was accepted", len(body))
		}
		if err != nil {
			return
		}
		if Check(rep, now) != nil {
			return
		}
		switch {
		case rep.Attempt < 1, rep.BytesAdded < 0, rep.DurationMS < 0, rep.End.Before(rep.Start),
			len(rep.Error) > restapi.MaxAgentReportError, rep.RunID == "" || len(rep.RunID) > 64:
			t.Fatalf("accepted out of range: %+v", rep)
		}
		enc, err := json.Marshal(rep)
		if err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		again, err := Decode(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-encoded report %s: %v", enc, err)
		}
		if err := Check(again, now); err != nil {
			t.Fatalf("re-encoded report %s fails its check: %v", enc, err)
		}
		if !again.Start.Equal(rep.Start) || !again.End.Equal(rep.End) || again.RunID != rep.RunID || again.Attempt != rep.Attempt ||
			again.Result != rep.Result || again.BytesAdded != rep.BytesAdded || again.DurationMS != rep.DurationMS || again.Error != rep.Error {
			t.Fatalf("report %+v became %+v", rep, again)
		}
	})
}
