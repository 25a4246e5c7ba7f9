package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Config is one run's load.
type Config struct {
	Workers   int           // closed loop: concurrent clients, each sending its next request when answered
	Rate      float64       // open loop when > 0: requests per second
	Poisson   bool          // open loop: exponential gaps (else uniform)
	Inflight  int           // open loop: most requests outstanding (more wait, and their wait counts)
	Duration  time.Duration // how long to send
	Requests  int           // stop after this many requests (0: by Duration only)
	Timeout   time.Duration // per request, also sent as ?timeout= as the API server does
	ProcCheck func() error  // optional: called every second; an error stops the run (target gone)
}

// conns is how many connections the load keeps open at most.
func (c Config) conns() int {
	if c.Rate > 0 {
		return max(c.Inflight, 1)
	}
	return max(c.Workers, 1)
}

// Stats are one run's outcome. Every request is exactly one of OK, HTTPErrors, TransportErrors,
// BadAnswers; every OK answer exactly one of Patched, Allowed (no patch), Denied.
type Stats struct {
	Requests        int64
	OK              int64
	Patched         int64
	Allowed         int64
	Denied          int64
	HTTPErrors      int64
	TransportErrors int64
	BadAnswers      int64
	Elapsed         time.Duration
	Latencies       []time.Duration // one per request, errors included
	FirstError      string

	mu sync.Mutex
}

func (s *Stats) add(o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests++
	s.Latencies = append(s.Latencies, o.latency)
	switch o.kind {
	case outcomePatched:
		s.OK++
		s.Patched++
	case outcomeAllowed:
		s.OK++
		s.Allowed++
	case outcomeDenied:
		s.OK++
		s.Denied++
	case outcomeHTTPError:
		s.HTTPErrors++
	case outcomeTransportError:
		s.TransportErrors++
	case outcomeBadAnswer:
		s.BadAnswers++
	}
	if o.err != nil && s.FirstError == "" {
		s.FirstError = o.err.Error()
	}
}

// Merge adds o's counts and samples to s (rounds of the same server).
func (s *Stats) Merge(o *Stats) {
	s.Requests += o.Requests
	s.OK += o.OK
	s.Patched += o.Patched
	s.Allowed += o.Allowed
	s.Denied += o.Denied
	s.HTTPErrors += o.HTTPErrors
	s.TransportErrors += o.TransportErrors
	s.BadAnswers += o.BadAnswers
	s.Elapsed += o.Elapsed
	s.Latencies = append(s.Latencies, o.Latencies...)
	if s.FirstError == "" {
		s.FirstError = o.FirstError
	}
}

// Errors counts the requests that got no valid answer.
func (s *Stats) Errors() int64 { return s.HTTPErrors + s.TransportErrors + s.BadAnswers }

// AllPatched says whether every request was answered 200, allowed, with a patch.
func (s *Stats) AllPatched() bool { return s.Requests > 0 && s.Patched == s.Requests }

// PerSecond is the requests per second over the elapsed time (0 without requests).
func (s *Stats) PerSecond() float64 {
	if s.Requests == 0 || s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}

type outcomeKind int

const (
	outcomePatched outcomeKind = iota
	outcomeAllowed
	outcomeDenied
	outcomeHTTPError
	outcomeTransportError
	outcomeBadAnswer
)

type outcome struct {
	kind    outcomeKind
	latency time.Duration
	err     error
}

// NewTransport is a client like the API server's to a webhook: HTTPS, HTTP/1.1, keep-alive, at
// most conns idle connections kept.
func NewTransport(conns int) *http.Transport {
	return &http.Transport{
		// The load client measures, it does not authenticate: it talks to servers with self-signed
		// certificates made for the run (the floor's) or for a dev cluster, on 127.0.0.1. Verifying
		// them would change nothing in what is measured (the handshake costs the server the same).
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		// HTTP/1.1: lanyard serves it unless --enable-http2, so it is what the API server speaks.
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// Client sends reviews to one server.
type Client struct {
	hc      *http.Client
	url     string
	reviews *Reviews
	seq     atomic.Uint64
	bufs    sync.Pool // *bytes.Buffer for answers
}

// NewClient sends reviews to the admission URL target (https) through rt.
func NewClient(rt http.RoundTripper, target string, timeout time.Duration, r *Reviews) (*Client, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("target %s: want an https:// URL", target)
	}
	if u.RawQuery == "" && timeout > 0 {
		// The API server tells the webhook its deadline; lanyard bounds its work by it.
		u.RawQuery = "timeout=" + strconv.Itoa(int(timeout.Seconds())) + "s"
	}
	c := &Client{hc: &http.Client{Transport: rt, Timeout: timeout}, url: u.String(), reviews: r}
	c.bufs.New = func() any { return new(bytes.Buffer) }
	return c, nil
}

// answer is what the client reads of an AdmissionReview response.
type answer struct {
	Response *struct {
		UID     types.UID       `json:"uid"`
		Allowed bool            `json:"allowed"`
		Patch   json.RawMessage `json:"patch"`
	} `json:"response"`
}

// send sends one review; latency counts from start (the intended send time in an open loop).
func (c *Client) send(ctx context.Context, start time.Time) outcome {
	body, uid := c.reviews.Body(c.seq.Add(1))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		_ = body.Close()
		return outcome{kind: outcomeTransportError, latency: time.Since(start), err: err}
	}
	req.ContentLength = int64(body.Len())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := c.hc.Do(req)
	if err != nil {
		return outcome{kind: outcomeTransportError, latency: time.Since(start), err: err}
	}
	buf := c.bufs.Get().(*bytes.Buffer)
	defer c.bufs.Put(buf)
	buf.Reset()
	_, err = io.Copy(buf, resp.Body)
	_ = resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return outcome{kind: outcomeTransportError, latency: latency, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return outcome{kind: outcomeHTTPError, latency: latency, err: fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, buf.Bytes())}
	}
	var a answer
	if err := json.Unmarshal(buf.Bytes(), &a); err != nil {
		return outcome{kind: outcomeBadAnswer, latency: latency, err: fmt.Errorf("answer: %w", err)}
	}
	switch {
	case a.Response == nil:
		return outcome{kind: outcomeBadAnswer, latency: latency, err: errors.New("answer without response")}
	case string(a.Response.UID) != uid:
		return outcome{kind: outcomeBadAnswer, latency: latency, err: fmt.Errorf("answer for UID %q, sent %q", a.Response.UID, uid)}
	case !a.Response.Allowed:
		return outcome{kind: outcomeDenied, latency: latency, err: fmt.Errorf("denied: %.200s", buf.Bytes())}
	case len(a.Response.Patch) > 2 && string(a.Response.Patch) != "null":
		return outcome{kind: outcomePatched, latency: latency}
	default:
		return outcome{kind: outcomeAllowed, latency: latency}
	}
}

// Run sends cfg's load through c and returns what came back.
func Run(ctx context.Context, c *Client, cfg Config) (*Stats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.ProcCheck != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := cfg.ProcCheck(); err != nil {
						cancel(err)
						return
					}
				}
			}
		}()
	}
	s := &Stats{}
	start := time.Now()
	if cfg.Rate > 0 {
		openLoop(ctx, c, cfg, s, start)
	} else {
		closedLoop(ctx, c, cfg, s, start)
	}
	s.Elapsed = time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// closedLoop: cfg.Workers clients, each sending its next review as soon as the last is answered.
func closedLoop(ctx context.Context, c *Client, cfg Config, s *Stats, start time.Time) {
	deadline := start.Add(cfg.Duration)
	var started atomic.Int64
	var wg sync.WaitGroup
	for range max(cfg.Workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if cfg.Requests > 0 && started.Add(1) > int64(cfg.Requests) {
					return
				}
				s.add(c.send(ctx, time.Now()))
			}
		})
	}
	wg.Wait()
}

// openLoop: reviews at cfg.Rate per second whatever the answers' pace. Each request's latency
// counts from the moment it was due, so a server that falls behind is charged for the queue it
// causes (no coordinated omission).
func openLoop(ctx context.Context, c *Client, cfg Config, s *Stats, start time.Time) {
	gap := float64(time.Second) / cfg.Rate
	slots := make(chan struct{}, max(cfg.Inflight, 1))
	var wg sync.WaitGroup
	due := start
	for n := 0; cfg.Requests == 0 || n < cfg.Requests; n++ {
		if n > 0 {
			if cfg.Poisson {
				due = due.Add(time.Duration(rand.ExpFloat64() * gap))
			} else {
				due = due.Add(time.Duration(gap))
			}
		}
		if due.Sub(start) >= cfg.Duration {
			break
		}
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		select {
		case <-ctx.Done():
		case slots <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		sendAt := due
		wg.Go(func() {
			defer func() { <-slots }()
			s.add(c.send(ctx, sendAt))
		})
	}
	wg.Wait()
}

// Latencies is the distribution of one run's latencies.
type Latencies struct {
	P50, P90, P99, Max time.Duration
}

// Summarize is lat's distribution (nearest rank).
func Summarize(lat []time.Duration) Latencies {
	if len(lat) == 0 {
		return Latencies{}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	at := func(q float64) time.Duration {
		// Nearest rank: the smallest sample at or above the q quantile.
		i := int(float64(len(sorted))*q+0.999999) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	return Latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: sorted[len(sorted)-1]}
}
