package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lanyard-dev/lanyard/internal/status"
	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

// Config is everything lanyard serve needs.
type Config struct {
	Host     string
	Port     int
	CertDir  string
	CertName string
	KeyName  string
	// TLSMinVersion is tls.VersionTLS12 or tls.VersionTLS13.
	TLSMinVersion uint16
	// EnableHTTP2 is off by default (HTTP/2 rapid reset and stream multiplexing attacks).
	EnableHTTP2 bool

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

	Log logr.Logger
}

// Run serves admission until ctx ends, then drains: readiness fails, in-flight and newly arriving
// requests are still answered for ShutdownDelay, then the servers shut down gracefully.
func Run(ctx context.Context, restConfig *rest.Config, cfg Config) error {
	if cfg.TLSMinVersion != tls.VersionTLS12 && cfg.TLSMinVersion != tls.VersionTLS13 {
		return errors.New("TLS minimum version must be 1.2 or 1.3")
	}
	scheme, err := cluster.Scheme()
	if err != nil {
		return err
	}
	log := cfg.Log
	tlsOpts := []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = cfg.TLSMinVersion
		if !cfg.EnableHTTP2 {
			c.NextProtos = []string{"http/1.1"}
		}
	}}
	server := crwebhook.NewServer(crwebhook.Options{
		Host: cfg.Host, Port: cfg.Port, CertDir: cfg.CertDir, CertName: cfg.CertName, KeyName: cfg.KeyName, TLSOpts: tlsOpts,
	})
	shutdownTimeout := 30 * time.Second
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Cache:                   cluster.CacheOptions(),
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

	mgrCtx, stop := context.WithCancel(context.Background())
	defer stop()

	metrics := NewMetrics(crmetrics.Registry)
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
	reader, err := cluster.NewReader(mgrCtx, mgr.GetCache(), liveClient, live)
	if err != nil {
		return err
	}
	resolver := policy.NewResolver(reader, cfg.Policy)
	mgr.GetWebhookServer().Register(MutatePodPath, &PodMutator{
		Resolver: resolver, Mutate: cfg.Mutate, LanyardNamespace: cfg.Namespace,
		MaxRequestBytes: cfg.MaxRequestBytes, Log: log.WithName("pods"), Metrics: metrics,
	})
	mgr.GetWebhookServer().Register(ValidateAssociationPath, &admission.Webhook{
		Handler: &AssociationValidator{Live: liveClient, Reader: reader, DefaultAzureTenantID: cfg.Policy.DefaultAzureTenantID},
	})
	if err := mgr.Add(&status.Runner{
		Reconciler: &status.Reconciler{Client: mgr.GetClient(), Reader: reader}, Cache: mgr.GetCache(), Config: restConfig,
		LeaderElection: cfg.LeaderElection, Namespace: cfg.LeaderElectionNamespace, ID: cfg.LeaderElectionID,
		Log: log.WithName("status"),
	}); err != nil {
		return fmt.Errorf("setting up the status reconciler: %w", err)
	}

	var draining atomic.Bool
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error {
		if !reader.Synced() {
			return errors.New("informer caches not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("draining", func(*http.Request) error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	}); err != nil {
		return err
	}

	go func() {
		if reader.WaitForSync(mgrCtx) {
			log.Info("caches synced; ready to admit")
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-mgrCtx.Done():
			return
		}
		draining.Store(true)
		log.Info("shutdown requested: draining", "delay", cfg.ShutdownDelay)
		time.Sleep(cfg.ShutdownDelay)
		stop()
	}()
	log.Info("starting lanyard", "port", cfg.Port, "namespace", cfg.Namespace)
	return mgr.Start(mgrCtx)
}

// RBAC of lanyard serve, generated into deploy/base/rbac by controller-gen. Nothing on Secrets:
// list on Secrets would expose their data, and lanyard never needs them.
//
// +kubebuilder:rbac:groups=lanyard.dev,resources=identityassociations;registryattachments,verbs=get;list;watch
// +kubebuilder:rbac:groups=lanyard.dev,resources=identityassociations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=lanyard-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=lanyard-system
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch,namespace=lanyard-system
