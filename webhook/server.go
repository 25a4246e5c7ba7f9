package webhook

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lanyard-dev/lanyard/certs"
	"github.com/lanyard-dev/lanyard/internal/leader"
	"github.com/lanyard-dev/lanyard/internal/status"
	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Certificate modes of lanyard serve.
const (
	CertModeFiles       = "files"        // tls.crt/tls.key in CertDir, reloaded on change
	CertModeCertManager = "cert-manager" // as files (cert-manager's Secret mounted); ready once cainjector set the caBundle
	CertModeSelfSigned  = "self-signed"  // lanyard's own CA and certificate in a Secret, caBundle kept by the leader
)

// CertConfig says where the serving certificate comes from.
type CertConfig struct {
	Mode     string
	CertDir  string
	CertName string
	KeyName  string
	// SecretName is the self-signed mode's Secret in Config.Namespace.
	SecretName string
	// BundleSelector finds lanyard's webhook configurations (self-signed: caBundle kept;
	// cert-manager: caBundle checked for readiness).
	BundleSelector labels.Selector
	// Policy of the self-signed authority (lifetimes, names of the serving certificate).
	Policy certs.Policy
}

// Config is everything lanyard serve needs.
type Config struct {
	// Server is the admission server's listener, TLS and limits; Run sets its certificate
	// source, connection hook and logger.
	Server ServerOptions
	Certs  CertConfig
	// MaxInflightReviews and MaxInflightBytes bound the reviews worked on at once (Limits).
	MaxInflightReviews int
	MaxInflightBytes   int64
	// MaxPatchBytes bounds the patch of one answer (PodMutator).
	MaxPatchBytes int

	MetricsBindAddress     string
	HealthProbeBindAddress string
	// PprofBindAddress serves net/http/pprof when set (off by default).
	PprofBindAddress string

	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string

	// Namespace is lanyard's own namespace, never mutated.
	Namespace       string
	Policy          policy.Options
	Mutate          mutate.Options
	MaxRequestBytes int64
	Live            cluster.Options
	// ShutdownDelay keeps serving after SIGTERM while readiness reports draining, so endpoints
	// drop this replica before its listener closes.
	ShutdownDelay time.Duration
	// StatusWrites paces the status reconciler's writes; zero values take status.DefaultPacer's.
	StatusWrites StatusWrites

	Log logr.Logger
}

// StatusWrites are the status writes per second while admissions are quiet (Idle) and while the
// webhook is busy admitting (Busy).
type StatusWrites struct{ Idle, Busy float64 }

// pacer is the status reconciler's Pacer, fed by the reviews metrics counts.
func (w StatusWrites) pacer(m *Metrics) *status.Pacer {
	p := status.DefaultPacer(m.Reviews)
	if w.Idle > 0 {
		p.Idle = w.Idle
	}
	if w.Busy > 0 {
		p.Busy = w.Busy
	}
	return p
}

// Run serves admission until ctx ends, then drains: readiness fails, in-flight and newly arriving
// requests are still answered for ShutdownDelay, then the servers shut down gracefully.
//
// Health, metrics and the admission listener start at once. Until the API server has been
// reached and the policy caches have synced, /readyz fails and admission answers 503; an API
// server that is unreachable at start is retried with backoff, never a crash loop.
func Run(ctx context.Context, restConfig *rest.Config, cfg Config) error {
	scheme, err := cluster.Scheme()
	if err != nil {
		return err
	}
	log := cfg.Log
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	source, checker, authority, err := certificateSource(cfg, restConfig, clientset)
	if err != nil {
		return err
	}
	metrics := NewMetrics(crmetrics.Registry)
	serverOpts := cfg.Server
	serverOpts.GetCertificate, serverOpts.OnConnections, serverOpts.Log = source.GetCertificate, metrics.OpenConnections, log.WithName("server")
	server, err := NewServer(serverOpts)
	if err != nil {
		return err
	}
	shutdownTimeout := 30 * time.Second
	var discovery meta.RESTMapper // the API server's own answer, asked before informers start
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		MapperProvider: func(c *rest.Config, httpClient *http.Client) (meta.RESTMapper, error) {
			dynamic, err := apiutil.NewDynamicRESTMapper(c, httpClient)
			if err != nil {
				return nil, err
			}
			discovery = dynamic
			return cluster.KnownRESTMapper(dynamic), nil
		},
		Logger:                  log,
		Cache:                   cluster.CacheOptions(cfg.Live),
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsBindAddress},
		HealthProbeBindAddress:  cfg.HealthProbeBindAddress,
		PprofBindAddress:        cfg.PprofBindAddress,
		WebhookServer:           server,
		GracefulShutdownTimeout: &shutdownTimeout,
		// One manager per process in production; tests restart the server in-process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	runnables := []manager.Runnable{source}
	if checker != nil {
		runnables = append(runnables, checker)
	}
	if authority != nil {
		runnables = append(runnables, authority)
	}
	for _, r := range runnables {
		if err := mgr.Add(everyReplica{r}); err != nil {
			return err
		}
	}

	mgrCtx, stop := context.WithCancel(context.Background())
	defer stop()

	live := cfg.Live
	live.OnMiss = metrics.LookupMiss
	// Live lookups get a client of their own (own connection pool and rate limiter), so that the
	// status reconciler's traffic can never make an admission wait.
	liveConfig := rest.CopyConfig(restConfig)
	liveConfig.QPS, liveConfig.Burst = float32(max(live.LiveQPS, 1)*2), max(live.LiveBurst, 1)*2
	liveClient, err := client.New(liveConfig, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("creating the live lookup client: %w", err)
	}

	limits := NewLimits(cfg.MaxInflightReviews, cfg.MaxInflightBytes, metrics)
	timeout := cfg.Server.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	maxBody := cfg.MaxRequestBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxRequestBytes
	}
	var podHandler, validateHandler lateHandler
	mgr.GetWebhookServer().Register(MutatePodPath, &podHandler) // GetWebhookServer adds the server to the manager
	server.Register(ValidateAssociationPath, &validateHandler)

	var reader atomic.Pointer[cluster.Reader]
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error {
		r := reader.Load()
		if r == nil {
			return errors.New("waiting for the API server")
		}
		if !r.Synced() {
			return errors.New("informer caches not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", server.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("certificate", func(*http.Request) error {
		leaf := source.Leaf()
		if leaf == nil {
			return errors.New("no serving certificate yet")
		}
		if checker != nil {
			return checker.Trusts(leaf) // the API server must accept what this replica serves
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("draining", func(*http.Request) error {
		if server.Draining() {
			return errors.New("shutting down")
		}
		return nil
	}); err != nil {
		return err
	}

	// connect creates the informers (so the first admission finds them started and synced),
	// then opens admission. It needs the API server's discovery and is retried until it answers.
	connect := func() error {
		if _, err := discovery.RESTMapping(cluster.PolicyAPIGroupKind, v1alpha1.GroupVersion.Version); err != nil {
			return fmt.Errorf("discovering %s: %w", cluster.PolicyAPIGroupKind, err)
		}
		r, err := cluster.NewReader(mgrCtx, mgr.GetCache(), mgr.GetConfig(), mgr.GetHTTPClient(), liveClient, live)
		if err != nil {
			return err
		}
		podHandler.set(&PodMutator{
			Resolver: policy.NewResolver(r, cfg.Policy), Mutate: cfg.Mutate, LanyardNamespace: cfg.Namespace,
			MaxRequestBytes: maxBody, Timeout: timeout, LookupTimeout: live.LiveTimeout, Limits: limits, MaxPatchBytes: cfg.MaxPatchBytes,
			Log: log.WithName("pods"), Metrics: metrics,
		})
		validateHandler.set(limits.Handler(&admission.Webhook{
			Handler: &AssociationValidator{Live: liveClient, Reader: r, DefaultAzureTenantID: cfg.Policy.DefaultAzureTenantID},
		}, maxBody, timeout))
		if err := mgr.Add(&status.Runner{
			Reconciler: &status.Reconciler{Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Reader: r, Pacer: cfg.StatusWrites.pacer(metrics)}, Cache: mgr.GetCache(), Config: restConfig,
			LeaderElection: cfg.LeaderElection, Namespace: cfg.LeaderElectionNamespace, ID: cfg.LeaderElectionID,
			Log: log.WithName("status"),
		}); err != nil {
			return fmt.Errorf("setting up the status reconciler: %w", err)
		}
		reader.Store(r)
		if r.WaitForSync(mgrCtx) {
			log.Info("caches synced; ready to admit")
		}
		return nil
	}
	go func() {
		backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: math.MaxInt32, Cap: 5 * time.Second}
		for {
			err := connect()
			if err == nil || mgrCtx.Err() != nil {
				return
			}
			delay := backoff.Step()
			log.Info("cannot reach the API server yet; retrying", "error", err.Error(), "in", delay.Round(time.Millisecond).String())
			select {
			case <-mgrCtx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-mgrCtx.Done():
			return
		}
		server.Drain()
		log.Info("shutdown requested: draining", "delay", cfg.ShutdownDelay)
		time.Sleep(cfg.ShutdownDelay)
		stop()
	}()
	log.Info("starting lanyard", "port", cfg.Server.Port, "namespace", cfg.Namespace)
	return mgr.Start(mgrCtx)
}

// certificateSource builds the serving certificate's source for the mode, the caBundle checker
// (nil in files mode, where the caBundle is someone else's business) and the self-signed
// authority (nil unless self-signed), which runs on the elected leader only.
func certificateSource(cfg Config, restConfig *rest.Config, clientset kubernetes.Interface) (certs.Source, *certs.BundleChecker, manager.Runnable, error) {
	c := cfg.Certs
	log := cfg.Log.WithName("certs")
	certMetrics := certs.NewMetrics(crmetrics.Registry)
	selector := c.BundleSelector
	if selector == nil {
		selector = labels.SelectorFromSet(labels.Set{"lanyard.dev/ca-bundle": "true"})
	}
	switch c.Mode {
	case CertModeFiles, CertModeCertManager, "":
		files, err := certs.NewFiles(filepath.Join(c.CertDir, c.CertName), filepath.Join(c.CertDir, c.KeyName),
			filepath.Join(c.CertDir, certs.KeyCACert), certMetrics, log)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("loading the serving certificate: %w", err)
		}
		if c.Mode != CertModeCertManager {
			return files, nil, nil, nil
		}
		return files, certs.NewBundleChecker(clientset, selector, nil), nil, nil
	case CertModeSelfSigned:
		if err := c.Policy.Validate(); err != nil {
			return nil, nil, nil, err
		}
		trigger := make(chan struct{}, 1)
		notify := func() {
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
		source := certs.NewSecretSource(clientset, cfg.Namespace, c.SecretName, certMetrics, log, notify)
		checker := certs.NewBundleChecker(clientset, selector, notify)
		rotator := &certs.Rotator{Client: clientset, Namespace: cfg.Namespace, SecretName: c.SecretName,
			Selector: selector, Policy: c.Policy, Log: log.WithName("authority")}
		election := leader.Election{Config: restConfig, Namespace: cfg.LeaderElectionNamespace, ID: "lanyard-certs.lanyard.dev",
			Disabled: !cfg.LeaderElection, Log: log}
		authority := manager.RunnableFunc(func(ctx context.Context) error {
			return election.Run(ctx, "certificate authority", func(ctx context.Context) error { return rotator.Run(ctx, trigger) })
		})
		return source, checker, authority, nil
	}
	return nil, nil, nil, fmt.Errorf("certificate mode %q: must be files, self-signed or cert-manager", c.Mode)
}

// everyReplica runs a runnable on every replica, whatever the manager's leader election says
// (the authority elects its own leader).
type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }

// lateHandler answers 503 until the handler it stands for exists (the API server has not been
// reached yet); readiness fails meanwhile, so only direct callers ever see it.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	_ = writeStatus(w, &httpError{http.StatusServiceUnavailable, reasonInternal, "not ready: lanyard has not reached the API server yet"})
}

// RBAC of lanyard serve, generated into deploy/base/rbac by controller-gen. Nothing on Secrets:
// list on Secrets would expose their data, and lanyard never needs them.
//
// +kubebuilder:rbac:groups=lanyard.dev,resources=identityassociations;registryattachments,verbs=get;list;watch
// +kubebuilder:rbac:groups=lanyard.dev,resources=identityassociations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=lanyard-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=lanyard-system
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=lanyard-system
