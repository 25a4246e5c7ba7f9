package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/bench/floor"
)

// startTestFloor serves the floor in this process on a random port.
func startTestFloor(t *testing.T) string {
	t.Helper()
	srv, ln, url, err := newFloorServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("floor: %v", err)
		}
	})
	return url
}

// TestFloorUnderLoad drives 200 reviews through the load client to an in-process floor, closed and
// open loop, and checks every answer and that the counts add up. No timing is asserted.
func TestFloorUnderLoad(t *testing.T) {
	url := startTestFloor(t)
	for _, tc := range []struct {
		name string
		cfg  loadConfig
	}{
		{"closed loop", loadConfig{Workers: 4}},
		{"open loop", loadConfig{Rate: 2000, Poisson: true, Inflight: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := newBodies(shapes["typical"], "bench", 7)
			if err != nil {
				t.Fatal(err)
			}
			tr := newTransport(16)
			defer tr.CloseIdleConnections()
			c, err := newClient(tr, url, 10*time.Second, b)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.URL, cfg.Requests, cfg.Duration, cfg.Timeout = url, 200, time.Minute, 10*time.Second
			st, err := runLoad(t.Context(), c, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if st.Requests != 200 || st.OK != 200 || st.Patched != 200 || st.Errors() != 0 {
				t.Fatalf("requests %d, ok %d, patched %d, errors %d (first: %s); want 200 answers, all with a patch",
					st.Requests, st.OK, st.Patched, st.Errors(), st.FirstError)
			}
			if got := int64(len(st.Latencies)); got != st.Requests {
				t.Errorf("%d latencies for %d requests", got, st.Requests)
			}
			if st.Patched+st.Allowed+st.Denied != st.OK || st.OK+st.Errors() != st.Requests {
				t.Errorf("counts do not add up: %+v", st)
			}

			// The report carries the same counts, and both of its forms are written.
			target := &side{server: server{Name: "a", URL: url}, stats: st, clientTicks: 1}
			floor := &side{server: server{Name: "b", URL: url}, stats: st, clientTicks: 1}
			sr := newShapeReport(shapes["typical"], b.size, target, floor, 100)
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
		})
	}
}

// TestBodies checks the reviews: valid pod CREATEs of the shape, unique UIDs, ServiceAccounts
// cycling.
func TestBodies(t *testing.T) {
	for _, s := range []shape{shapes["typical"], shapes["large"]} {
		b, err := newBodies(s, "ns1", 3)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for seq := range uint64(7) {
			body, uid := b.body(seq)
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(body).Decode(&review); err != nil {
				t.Fatal(err)
			}
			_ = body.Close()
			var pod corev1.Pod
			if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
				t.Fatal(err)
			}
			if string(review.Request.UID) != uid || seen[uid] {
				t.Errorf("UID %q (from body %q) repeated or wrong", uid, review.Request.UID)
			}
			seen[uid] = true
			if want := []string{"sa-0", "sa-1", "sa-2"}[seq%3]; pod.Spec.ServiceAccountName != want {
				t.Errorf("request %d: ServiceAccount %q, want %q", seq, pod.Spec.ServiceAccountName, want)
			}
			if review.Request.Operation != admissionv1.Create || review.Request.Namespace != "ns1" || pod.Namespace != "ns1" {
				t.Errorf("request %d: %s in %q", seq, review.Request.Operation, review.Request.Namespace)
			}
			if len(pod.Spec.Containers) != s.Containers || len(pod.Spec.Containers[0].Env) != s.Env || len(pod.Spec.Volumes) != s.Volumes {
				t.Errorf("%s: %d containers, %d env, %d volumes", s.Name, len(pod.Spec.Containers), len(pod.Spec.Containers[0].Env), len(pod.Spec.Volumes))
			}
			if out, err := floor.Answer(mustReadAll(t, b, seq)); err != nil || !bytes.Contains(out, []byte(uid)) {
				t.Errorf("floor answer %s, %v", out, err)
			}
		}
	}
}

func mustReadAll(t *testing.T, b *bodies, seq uint64) []byte {
	t.Helper()
	body, _ := b.body(seq)
	defer func() { _ = body.Close() }()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestProc(t *testing.T) {
	ticks, err := cpuTicks("4242 (a (b) c) S 1 1 1 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 8 0 12345 1000000 500")
	if err != nil || ticks != 22 {
		t.Errorf("cpuTicks = %d, %v; want 22", ticks, err)
	}
	p, err := readProc("self")
	if err != nil {
		t.Fatal(err)
	}
	if p.RSSKiB <= 0 || p.HWMKiB < p.RSSKiB {
		t.Errorf("self: %+v", p)
	}
	if hz, _ := clockTicks(); hz <= 0 {
		t.Errorf("clock ticks %d", hz)
	}
}

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := summarize(lat)
	if want := (latencySummary{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}); got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
}
