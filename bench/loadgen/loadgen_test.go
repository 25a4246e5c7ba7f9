package loadgen

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/bench/floor"
)

// startTestFloor serves the floor in this process on a random port.
func startTestFloor(t *testing.T) string {
	t.Helper()
	url, stop, err := ServeFloorHere("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
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
		cfg  Config
	}{
		{"closed loop", Config{Workers: 4}},
		{"open loop", Config{Rate: 2000, Poisson: true, Inflight: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReviews(Typical, "bench", 7)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Requests, cfg.Duration, cfg.Timeout = 200, time.Minute, 10*time.Second
			m, err := Measure(t.Context(), Server{Name: "floor", URL: url}, r, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			st := m.Stats
			if st.Requests != 200 || st.OK != 200 || st.Patched != 200 || st.Errors() != 0 || !st.AllPatched() {
				t.Fatalf("requests %d, ok %d, patched %d, errors %d (first: %s); want 200 answers, all with a patch",
					st.Requests, st.OK, st.Patched, st.Errors(), st.FirstError)
			}
			if got := int64(len(st.Latencies)); got != st.Requests {
				t.Errorf("%d latencies for %d requests", got, st.Requests)
			}
			if st.Patched+st.Allowed+st.Denied != st.OK || st.OK+st.Errors() != st.Requests {
				t.Errorf("counts do not add up: %+v", st)
			}
			if m.ServerAfter != nil || m.ServerTicks != 0 {
				t.Errorf("server figures without a process: %+v", m)
			}
		})
	}
}

// TestReviews checks the reviews: valid pod CREATEs of the shape, unique UIDs, ServiceAccounts
// cycling.
func TestReviews(t *testing.T) {
	for _, s := range []Shape{Typical, Large} {
		r, err := NewReviews(s, "ns1", 3)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for seq := range uint64(7) {
			body, uid := r.Body(seq)
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
			if out, err := floor.Answer(mustReadAll(t, r, seq)); err != nil || !bytes.Contains(out, []byte(uid)) {
				t.Errorf("floor answer %s, %v", out, err)
			}
		}
		if got, ok := ShapeNamed(s.Name); !ok || got != s {
			t.Errorf("ShapeNamed(%q) = %v, %v", s.Name, got, ok)
		}
	}
}

func mustReadAll(t *testing.T, r *Reviews, seq uint64) []byte {
	t.Helper()
	body, _ := r.Body(seq)
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
	p, err := ReadProc("self")
	if err != nil {
		t.Fatal(err)
	}
	if p.RSSKiB <= 0 || p.HWMKiB < p.RSSKiB || p.AnonKiB <= 0 || p.AnonKiB > p.RSSKiB {
		t.Errorf("self: %+v", p)
	}
	if hz, _ := ClockTicks(); hz <= 0 {
		t.Errorf("clock ticks %d", hz)
	}
}

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(lat)
	if want := (Latencies{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}); got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}
