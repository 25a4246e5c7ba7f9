package budget

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestQuantileBetweenReadings(t *testing.T) {
	inf := math.Inf(1)
	before := buckets{0.0001: 50, 0.001: 90, 0.01: 100, inf: 100}
	tests := map[string]struct {
		after buckets
		q     float64
		want  time.Duration
	}{
		"all new observations in the first bucket": {buckets{0.0001: 150, 0.001: 190, 0.01: 200, inf: 200}, 0.99, 100 * time.Microsecond},
		"the tail in the third bucket":             {buckets{0.0001: 140, 0.001: 185, 0.01: 200, inf: 200}, 0.99, 10 * time.Millisecond},
		"the median in the second bucket":          {buckets{0.0001: 90, 0.001: 190, 0.01: 200, inf: 200}, 0.5, time.Millisecond},
		"nothing observed in between":              {before, 0.99, 0},
		"past the last finite bucket":              {buckets{0.0001: 50, 0.001: 90, 0.01: 100, inf: 200}, 0.99, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, quantileBetween(before, tc.after, tc.q))
		})
	}
}
