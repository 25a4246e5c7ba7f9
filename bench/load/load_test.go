package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
)

// TestReport measures an in-process floor and checks that the report carries the counts and
// that both of its forms are written. No timing is asserted.
func TestReport(t *testing.T) {
	url, stop, err := loadgen.ServeFloorHere("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("floor: %v", err)
		}
	})
	r, err := loadgen.NewReviews(loadgen.Typical, "bench", 7)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadgen.Measure(t.Context(), loadgen.Server{Name: "floor", URL: url}, r,
		loadgen.Config{Workers: 4, Requests: 200, Duration: time.Minute, Timeout: 10 * time.Second}, 0)
	if err != nil {
		t.Fatal(err)
	}
	target := &side{server: loadgen.Server{Name: "a", URL: url}, stats: &loadgen.Stats{}}
	floor := &side{server: loadgen.Server{Name: "b", URL: url}, stats: &loadgen.Stats{}}
	target.add(m)
	floor.add(m)
	target.clientTicks, floor.clientTicks = 1, 1
	sr := newShapeReport(loadgen.Typical, r.Size(), target, floor, 100)
	for _, r := range []serverReport{sr.Target, sr.Floor} {
		if r.Requests != 200 || r.OK != 200 || r.Patched != 200 || r.Errors != 0 ||
			r.HTTPErrors+r.TransportErrors+r.BadAnswers != r.Errors || r.PatchedShare == nil || *r.PatchedShare != 1 {
			t.Errorf("report %+v", r)
		}
		if r.CPUMicrosPerRequest != nil || r.RSSMiB != nil {
			t.Errorf("server figures without a process: %+v", r)
		}
	}
	if v := sr.Ratio["requestsPerSecond"]; v == nil || *v != 1 {
		t.Errorf("ratio of equal runs: %v", v)
	}
	rep := &report{Shapes: []shapeReport{sr}}
	var md, js bytes.Buffer
	rep.writeMarkdown(&md)
	if !strings.Contains(md.String(), "| reviews sent | 200 | 200 | |") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Shapes[0].Target.Patched != 200 {
		t.Errorf("JSON: %v\n%s", err, js.String())
	}
	if err := rep.smokeCheck(); err != nil {
		t.Error(err)
	}
}
