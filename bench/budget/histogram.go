package budget

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// handlingHistogram is lanyard_admission_duration_seconds: the time lanyard's handler spends on
// a review, from its own clock — what the review costs lanyard, without the network, the TLS
// record layer or the time a busy machine leaves a ready process waiting for a CPU.
const handlingHistogram = "lanyard_admission_duration_seconds"

// buckets are a histogram's cumulative counts by upper bound, summed over its label sets.
type buckets map[float64]float64

// Histogram reads the buckets of a histogram from lanyard's metrics.
func (p *Process) Histogram(name string) (buckets, error) {
	resp, err := http.Get(p.metricsURL)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := buckets{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), name+"_bucket{")
		if !ok {
			continue
		}
		_, afterLE, ok := strings.Cut(rest, `le="`)
		if !ok {
			continue
		}
		le, tail, ok := strings.Cut(afterLE, `"`)
		if !ok {
			continue
		}
		bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		if err != nil {
			return nil, fmt.Errorf("%s bucket le=%q: %w", name, le, err)
		}
		fields := strings.Fields(tail[strings.IndexByte(tail, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s bucket le=%q: %w", name, le, err)
		}
		out[bound] += v
	}
	return out, s.Err()
}

// addBetween adds to b the observations made between two readings of a histogram.
func (b buckets) addBetween(before, after buckets) {
	for bound, v := range after {
		b[bound] += v - before[bound]
	}
}

// quantileBetween is the upper bound of the bucket holding quantile q of the observations made
// between two readings of a histogram (0 when there were none, or the quantile is past the last
// finite bucket).
func quantileBetween(before, after buckets, q float64) time.Duration {
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if total <= 0 {
		return 0
	}
	bounds := make([]float64, 0, len(after))
	for b := range after {
		if !math.IsInf(b, 1) {
			bounds = append(bounds, b)
		}
	}
	slices.Sort(bounds)
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return time.Duration(b * float64(time.Second))
		}
	}
	return 0
}
