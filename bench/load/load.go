package main

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

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// shape is a pod shape: containers, env vars per container, volumes (each mounted in every
// container).
type shape struct {
	Name       string `json:"name"`
	Containers int    `json:"containers"`
	Env        int    `json:"envPerContainer"`
	Volumes    int    `json:"volumes"`
}

// shapes are SPEC §9's pods: typical (1 container, 10 env) and large (20 containers × 200 env).
var shapes = map[string]shape{
	"typical": {Name: "typical", Containers: 1, Env: 10, Volumes: 1},
	"large":   {Name: "large", Containers: 20, Env: 200, Volumes: 1},
}

// Placeholders in the review template, replaced per request. Both have the length of their
// replacement's longest form or are free-length: the body is assembled from the pieces around them.
const (
	uidPlaceholder = "00000000-0000-0000-0000-00000000feed"
	saPlaceholder  = "lanyard-bench-serviceaccount-placeholder"
)

// bodies makes AdmissionReview bodies for pod CREATE requests of one shape, as the API server
// sends them: a unique request UID each, the pod's ServiceAccount cycling over sa-0 … sa-(n-1).
type bodies struct {
	pieces [3][]byte // before the UID, between UID and ServiceAccount name, after the name
	names  [][]byte  // sa-0 … sa-(n-1)
	run    uint32    // distinguishes the UIDs of one process's runs
	size   int       // largest body
	pool   sync.Pool // *[]byte
}

func newBodies(s shape, namespace string, serviceAccounts int) (*bodies, error) {
	if serviceAccounts < 1 {
		return nil, errors.New("need at least one ServiceAccount")
	}
	tmpl, err := reviewTemplate(s, namespace)
	if err != nil {
		return nil, err
	}
	u := bytes.Index(tmpl, []byte(uidPlaceholder))
	n := bytes.Index(tmpl, []byte(`"serviceAccountName":"`+saPlaceholder+`"`))
	if u < 0 || n < 0 || u > n || bytes.Count(tmpl, []byte(saPlaceholder)) != 1 {
		return nil, errors.New("review template: placeholders not found once each, UID first")
	}
	n += len(`"serviceAccountName":"`)
	b := &bodies{run: rand.Uint32()}
	b.pieces[0] = tmpl[:u]
	b.pieces[1] = tmpl[u+len(uidPlaceholder) : n]
	b.pieces[2] = tmpl[n+len(saPlaceholder):]
	longest := 0
	for i := range serviceAccounts {
		name := []byte(fmt.Sprintf("sa-%d", i))
		b.names = append(b.names, name)
		longest = max(longest, len(name))
	}
	b.size = len(b.pieces[0]) + len(uidPlaceholder) + len(b.pieces[1]) + longest + len(b.pieces[2])
	b.pool.New = func() any { buf := make([]byte, 0, b.size); return &buf }
	return b, nil
}

// uid is request seq's UID: unique within the process and run.
func (b *bodies) uid(seq uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", b.run, seq&(1<<48-1))
}

// body is request seq's review, in a pooled buffer returned when the transport closes it.
func (b *bodies) body(seq uint64) (*pooledBody, string) {
	bufp := b.pool.Get().(*[]byte)
	uid := b.uid(seq)
	buf := append((*bufp)[:0], b.pieces[0]...)
	buf = append(buf, uid...)
	buf = append(buf, b.pieces[1]...)
	buf = append(buf, b.names[seq%uint64(len(b.names))]...)
	buf = append(buf, b.pieces[2]...)
	*bufp = buf
	pb := &pooledBody{buf: bufp, pool: &b.pool}
	pb.r.Reset(buf)
	return pb, uid
}

// pooledBody is a request body whose buffer goes back to its pool once the transport is done
// with it (it calls Close, possibly after RoundTrip returned).
type pooledBody struct {
	r    bytes.Reader
	buf  *[]byte
	pool *sync.Pool
	once sync.Once
}

func (p *pooledBody) Read(q []byte) (int, error) { return p.r.Read(q) }

func (p *pooledBody) Close() error {
	p.once.Do(func() { p.pool.Put(p.buf) })
	return nil
}

// reviewTemplate is the AdmissionReview of a pod CREATE in namespace with the placeholders for
// the request UID and the ServiceAccount name, built from the Kubernetes API types.
func reviewTemplate(s shape, namespace string) ([]byte, error) {
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	pod.GenerateName = "app-6b7f9d8c5d-"
	pod.Namespace = namespace
	pod.Labels = map[string]string{"app": "app", "pod-template-hash": "6b7f9d8c5d"}
	pod.Spec.ServiceAccountName = saPlaceholder
	pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	pod.Spec.SchedulerName = corev1.DefaultSchedulerName
	for v := range s.Volumes {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: fmt.Sprintf("config-%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("app-config-%d", v)}}},
		})
	}
	for c := range s.Containers {
		ctr := corev1.Container{Name: fmt.Sprintf("app-%d", c), Image: "registry.example.com/team/app:1.4.2",
			TerminationMessagePath: corev1.TerminationMessagePathDefault, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: int32(8080 + c), Protocol: corev1.ProtocolTCP}}}
		for e := range s.Env {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%d", e), Value: fmt.Sprintf("value-%d", e)})
		}
		for v := range s.Volumes {
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("config-%d", v), MountPath: fmt.Sprintf("/etc/app/config-%d", v), ReadOnly: true})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, ctr)
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	dryRun := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uidPlaceholder), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Namespace: namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}, DryRun: &dryRun,
			UserInfo: authenticationUser(),
			Options:  runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	})
}

// authenticationUser is who creates pods in a cluster most of the time: the ReplicaSet controller.
func authenticationUser() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
		UID: "5b2a6f0e-8c1d-4f3e-9a7b-2d4c6e8f0a1b", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}}
}

// loadConfig is one run's load.
type loadConfig struct {
	URL       string        // admission URL
	Workers   int           // closed loop: concurrent clients, each sending its next request when answered
	Rate      float64       // open loop when > 0: requests per second
	Poisson   bool          // open loop: exponential gaps (else uniform)
	Inflight  int           // open loop: most requests outstanding (more wait, and their wait counts)
	Duration  time.Duration // how long to send
	Requests  int           // stop after this many requests (0: by Duration only)
	Timeout   time.Duration // per request, also sent as ?timeout= as the API server does
	ProcCheck func() error  // optional: called every second; an error stops the run (target gone)
}

// stats are one run's outcome. Every request is exactly one of OK, HTTPErrors, TransportErrors,
// BadAnswers; every OK answer exactly one of Patched, Allowed (no patch), Denied.
type stats struct {
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

func (s *stats) add(o outcome) {
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

// merge adds o's counts and samples to s (rounds of the same server).
func (s *stats) merge(o *stats) {
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
func (s *stats) Errors() int64 { return s.HTTPErrors + s.TransportErrors + s.BadAnswers }

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

// newTransport is a client like the API server's to a webhook: HTTPS, HTTP/1.1, keep-alive.
func newTransport(conns int) *http.Transport {
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

// loadClient sends reviews to one server.
type loadClient struct {
	hc     *http.Client
	url    string
	bodies *bodies
	seq    atomic.Uint64
	bufs   sync.Pool // *bytes.Buffer for answers
}

func newClient(rt http.RoundTripper, target string, timeout time.Duration, b *bodies) (*loadClient, error) {
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
	c := &loadClient{hc: &http.Client{Transport: rt, Timeout: timeout}, url: u.String(), bodies: b}
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
func (c *loadClient) send(ctx context.Context, start time.Time) outcome {
	body, uid := c.bodies.body(c.seq.Add(1))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		_ = body.Close()
		return outcome{kind: outcomeTransportError, latency: time.Since(start), err: err}
	}
	req.ContentLength = int64(body.r.Len())
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

// runLoad sends cfg's load through c and returns what came back.
func runLoad(ctx context.Context, c *loadClient, cfg loadConfig) (*stats, error) {
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
	s := &stats{}
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
func closedLoop(ctx context.Context, c *loadClient, cfg loadConfig, s *stats, start time.Time) {
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
func openLoop(ctx context.Context, c *loadClient, cfg loadConfig, s *stats, start time.Time) {
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

// latencySummary is the distribution of one run's latencies.
type latencySummary struct {
	P50, P90, P99, Max time.Duration
}

func summarize(lat []time.Duration) latencySummary {
	if len(lat) == 0 {
		return latencySummary{}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	at := func(q float64) time.Duration {
		// Nearest rank: the smallest sample at or above the q quantile.
		i := int(float64(len(sorted))*q+0.999999) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	return latencySummary{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: sorted[len(sorted)-1]}
}
