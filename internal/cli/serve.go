package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lanyard-dev/lanyard/certs"
	statusrec "github.com/lanyard-dev/lanyard/internal/status"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/webhook"
)

type serveFlags struct {
	kubeconfig        string
	host              string
	port              int
	certMode          string
	certDir           string
	certName, keyName string
	certSecretName    string
	serviceName       string
	certExtraNames    []string
	bundleSelector    string
	caLifetime        time.Duration
	certLifetime      time.Duration
	caPropagation     time.Duration
	tlsMinVersion     string
	enableHTTP2       bool
	clientCAFile      string
	clientNames       []string
	requestTimeout    time.Duration
	idleTimeout       time.Duration
	maxConnections    int
	maxInflight       int
	maxInflightBytes  int64
	maxPatchBytes     int
	metricsAddr       string
	healthAddr        string
	pprofAddr         string
	leaderElect       bool
	leaderElectionNS  string
	namespace         string
	identity          identityFlags
	maxRequestBytes   int64
	shutdownDelay     time.Duration
	liveQPS           float64
	liveBurst         int
	liveTimeout       time.Duration
	recentWindow      time.Duration
	statusWrites      float64
	statusWritesBusy  float64
	logLevel          string
	logFormat         string
}

func newServeCommand() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook",
		Long: `serve runs lanyard's admission webhook: POST /mutate-v1-pod gives pods their identity and
registry access, POST /validate-lanyard-dev-v1alpha1-identityassociation keeps one association per
ServiceAccount. Health on --health-probe-bind-address (/healthz, /readyz: ready once the caches are
synced and the certificate is served), Prometheus metrics on --metrics-bind-address (/metrics).
The serving certificate comes from --cert-mode: self-signed (the default: lanyard's own CA in a
Secret, the caBundle of its webhook configurations kept by the elected leader, renewed at two
thirds of its lifetime), cert-manager or files (tls.crt, tls.key in --cert-dir, reloaded when the
files change). See docs/certificates.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, restConfig, err := f.config()
			if err != nil {
				return usageError(err)
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer cancel()
			if err := webhook.Run(ctx, restConfig, cfg); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, then $KUBECONFIG / ~/.kube/config")
	fs.StringVar(&f.host, "host", "", "address to serve admission on (default all)")
	fs.IntVar(&f.port, "port", 9443, "port to serve admission on")
	fs.StringVar(&f.certMode, "cert-mode", webhook.CertModeSelfSigned, "where the serving certificate comes from: self-signed (lanyard's own CA, kept in --cert-secret-name; needs nothing else), cert-manager (files in --cert-dir from cert-manager's Secret), files (files in --cert-dir, someone else sets caBundle)")
	fs.StringVar(&f.certDir, "cert-dir", "/etc/lanyard/certs", "directory of the serving certificate (files and cert-manager modes)")
	fs.StringVar(&f.certSecretName, "cert-secret-name", "lanyard-webhook-tls", "self-signed mode: the Secret in --namespace holding the CA and the serving certificate")
	fs.StringVar(&f.serviceName, "service-name", "lanyard-webhook", "self-signed mode: the webhook Service, whose DNS names the serving certificate carries")
	fs.StringSliceVar(&f.certExtraNames, "cert-extra-names", nil, "self-signed mode: more DNS names or IP addresses for the serving certificate")
	fs.StringVar(&f.bundleSelector, "ca-bundle-selector", certs.DefaultBundleSelector, "label selector of lanyard's webhook configurations, whose caBundle lanyard keeps (self-signed) or checks (cert-manager)")
	fs.DurationVar(&f.caLifetime, "self-signed-ca-lifetime", 365*24*time.Hour, "self-signed mode: lifetime of the CA (renewed at two thirds)")
	fs.DurationVar(&f.certLifetime, "self-signed-cert-lifetime", 90*24*time.Hour, "self-signed mode: lifetime of the serving certificate (renewed at two thirds)")
	fs.DurationVar(&f.caPropagation, "ca-propagation-delay", time.Minute, "self-signed mode: how long a new CA is trusted by every webhook configuration before certificates it signed are served")
	fs.StringVar(&f.certName, "cert-name", "tls.crt", "certificate file name in --cert-dir")
	fs.StringVar(&f.keyName, "key-name", "tls.key", "private key file name in --cert-dir")
	fs.StringVar(&f.tlsMinVersion, "tls-min-version", "1.2", "minimum TLS version: 1.2 or 1.3")
	fs.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve HTTP/2 (off: HTTP/2 stream attacks)")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "require clients (the API server) to present a certificate signed by a CA in this PEM file; see docs/security.md")
	fs.StringSliceVar(&f.clientNames, "client-names", nil, "with --client-ca-file: accept only client certificates with one of these common or DNS names")
	fs.DurationVar(&f.requestTimeout, "request-timeout", webhook.DefaultRequestTimeout, "read deadline of a request and, separately, deadline of its answer; keep below the webhook's timeoutSeconds")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", webhook.DefaultIdleTimeout, "close keep-alive connections idle this long")
	fs.IntVar(&f.maxConnections, "max-connections", webhook.DefaultMaxConnections, "most open admission connections; further clients wait")
	fs.IntVar(&f.maxInflight, "max-inflight-reviews", webhook.DefaultMaxInflightReviews, "most admission reviews worked on at once")
	fs.Int64Var(&f.maxInflightBytes, "max-inflight-review-bytes", webhook.DefaultMaxInflightBytes, "most request body bytes held by the reviews worked on at once")
	fs.IntVar(&f.maxPatchBytes, "max-patch-bytes", webhook.DefaultMaxPatchBytes, "largest patch of one answer; a pod needing more could not be stored and is denied with the reason")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of /metrics; 0 disables")
	fs.StringVar(&f.healthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "address of /debug/pprof (off when empty)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader for the status reconciler (the webhook runs on every replica)")
	fs.StringVar(&f.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election lease (default: --namespace)")
	fs.StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "lanyard-system"), "lanyard's own namespace, never mutated")
	f.identity.register(fs)
	fs.Int64Var(&f.maxRequestBytes, "max-request-bytes", webhook.DefaultMaxRequestBytes, "largest AdmissionReview accepted")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 5*time.Second, "keep serving this long after SIGTERM while readiness fails")
	fs.Float64Var(&f.liveQPS, "live-lookup-qps", 20, "rate of live API reads on cache misses")
	fs.IntVar(&f.liveBurst, "live-lookup-burst", 50, "burst of live API reads on cache misses")
	fs.DurationVar(&f.liveTimeout, "live-lookup-timeout", 2*time.Second, "longest wait for the live reads of one review (cache misses, new ServiceAccounts) together")
	fs.DurationVar(&f.recentWindow, "recent-serviceaccount-window", time.Minute, "ServiceAccounts younger than this with no cached association are checked live")
	pacer := statusrec.DefaultPacer(nil)
	fs.Float64Var(&f.statusWrites, "status-writes-per-second", pacer.Idle, "IdentityAssociation status writes per second while admissions are quiet")
	fs.Float64Var(&f.statusWritesBusy, "status-writes-per-second-busy", pacer.Busy, fmt.Sprintf(
		"status writes per second while the webhook admits %g or more pods a second: a catch-up of thousands of statuses must not slow admissions", pacer.BusyAt))
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "json or console")
	return cmd
}

func (f *serveFlags) certConfig() (webhook.CertConfig, error) {
	c := webhook.CertConfig{Mode: f.certMode, CertDir: f.certDir, CertName: f.certName, KeyName: f.keyName, SecretName: f.certSecretName}
	switch f.certMode {
	case webhook.CertModeFiles, webhook.CertModeCertManager, webhook.CertModeSelfSigned:
	default:
		return c, fmt.Errorf("--cert-mode %q: must be self-signed, cert-manager or files", f.certMode)
	}
	sel, err := labels.Parse(f.bundleSelector)
	if err != nil || sel.Empty() {
		return c, fmt.Errorf("--ca-bundle-selector %q: must be a non-empty label selector", f.bundleSelector)
	}
	c.BundleSelector = sel
	if f.certMode != webhook.CertModeSelfSigned {
		return c, nil
	}
	if msgs := validation.IsDNS1123Subdomain(f.certSecretName); len(msgs) > 0 {
		return c, fmt.Errorf("--cert-secret-name %q: %s", f.certSecretName, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1035Label(f.serviceName); len(msgs) > 0 {
		return c, fmt.Errorf("--service-name %q: %s", f.serviceName, strings.Join(msgs, "; "))
	}
	names := certs.ServiceNames(f.serviceName, f.namespace)
	for _, n := range f.certExtraNames {
		if net.ParseIP(n) == nil && len(validation.IsDNS1123Subdomain(n)) > 0 {
			return c, fmt.Errorf("--cert-extra-names %q: must be a DNS name or an IP address", n)
		}
		names = append(names, n)
	}
	c.Policy = certs.Policy{CALifetime: f.caLifetime, LeafLifetime: f.certLifetime, PropagationDelay: f.caPropagation, Names: names}
	if err := c.Policy.Validate(); err != nil {
		return c, fmt.Errorf("--self-signed-ca-lifetime, --self-signed-cert-lifetime, --ca-propagation-delay: %w", err)
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (f *serveFlags) config() (webhook.Config, *rest.Config, error) {
	var cfg webhook.Config
	var tlsMin uint16
	switch f.tlsMinVersion {
	case "1.2":
		tlsMin = tls.VersionTLS12
	case "1.3":
		tlsMin = tls.VersionTLS13
	default:
		return cfg, nil, fmt.Errorf("--tls-min-version %q: must be 1.2 or 1.3", f.tlsMinVersion)
	}
	if f.port <= 0 || f.port > 65535 {
		return cfg, nil, fmt.Errorf("--port %d: must be 1-65535", f.port)
	}
	policyOptions, mutateOptions, err := f.identity.options()
	if err != nil {
		return cfg, nil, err
	}
	if f.maxRequestBytes < 64<<10 {
		return cfg, nil, fmt.Errorf("--max-request-bytes %d: must be at least 65536", f.maxRequestBytes)
	}
	if f.requestTimeout < 100*time.Millisecond || f.requestTimeout > 30*time.Second {
		return cfg, nil, fmt.Errorf("--request-timeout %s: must be between 100ms and 30s (the longest webhook timeoutSeconds)", f.requestTimeout)
	}
	if f.idleTimeout <= 0 {
		return cfg, nil, fmt.Errorf("--idle-timeout %s: must be positive", f.idleTimeout)
	}
	if f.maxConnections < 1 || f.maxInflight < 1 {
		return cfg, nil, fmt.Errorf("--max-connections %d and --max-inflight-reviews %d: must be at least 1", f.maxConnections, f.maxInflight)
	}
	if f.maxInflightBytes < f.maxRequestBytes {
		return cfg, nil, fmt.Errorf("--max-inflight-review-bytes %d: must be at least --max-request-bytes (%d), or the largest review could never be taken", f.maxInflightBytes, f.maxRequestBytes)
	}
	if f.maxPatchBytes < 64<<10 || int64(f.maxPatchBytes) > f.maxInflightBytes/2 {
		return cfg, nil, fmt.Errorf("--max-patch-bytes %d: must be at least 65536 and at most half of --max-inflight-review-bytes", f.maxPatchBytes)
	}
	if len(f.clientNames) > 0 && f.clientCAFile == "" {
		return cfg, nil, errors.New("--client-names needs --client-ca-file")
	}
	if f.clientCAFile != "" {
		if _, err := os.Stat(f.clientCAFile); err != nil {
			return cfg, nil, fmt.Errorf("--client-ca-file: %w", err)
		}
	}
	if f.liveTimeout >= f.requestTimeout {
		return cfg, nil, fmt.Errorf("--live-lookup-timeout %s: must be below --request-timeout (%s), so a review can still answer after its lookups time out", f.liveTimeout, f.requestTimeout)
	}
	if f.liveQPS <= 0 || f.liveBurst <= 0 || f.liveTimeout <= 0 {
		return cfg, nil, errors.New("--live-lookup-qps, --live-lookup-burst and --live-lookup-timeout must be positive")
	}
	if f.statusWrites <= 0 || f.statusWritesBusy <= 0 {
		return cfg, nil, errors.New("--status-writes-per-second and --status-writes-per-second-busy must be positive")
	}
	certCfg, err := f.certConfig()
	if err != nil {
		return cfg, nil, err
	}
	var level zapcore.Level
	switch f.logLevel {
	case "debug":
		level = zapcore.DebugLevel
	case "info":
		level = zapcore.InfoLevel
	case "error":
		level = zapcore.ErrorLevel
	default:
		return cfg, nil, fmt.Errorf("--log-level %q: must be debug, info or error", f.logLevel)
	}
	if f.logFormat != "json" && f.logFormat != "console" {
		return cfg, nil, fmt.Errorf("--log-format %q: must be json or console", f.logFormat)
	}
	log := zap.New(zap.Level(level), zap.UseDevMode(f.logFormat == "console"))
	ctrl.SetLogger(log)

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return cfg, nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	restConfig.QPS, restConfig.Burst = 50, 100
	restConfig.UserAgent = "lanyard/" + version()

	leNS := f.leaderElectionNS
	if leNS == "" {
		leNS = f.namespace
	}
	cfg = webhook.Config{
		Server: webhook.ServerOptions{Host: f.host, Port: f.port, TLSMinVersion: tlsMin, EnableHTTP2: f.enableHTTP2,
			ClientCAFile: f.clientCAFile, ClientNames: f.clientNames,
			RequestTimeout: f.requestTimeout, IdleTimeout: f.idleTimeout, MaxConnections: f.maxConnections},
		Certs:              certCfg,
		MaxInflightReviews: f.maxInflight, MaxInflightBytes: f.maxInflightBytes, MaxPatchBytes: f.maxPatchBytes,
		MetricsBindAddress: f.metricsAddr, HealthProbeBindAddress: f.healthAddr, PprofBindAddress: f.pprofAddr,
		LeaderElection: f.leaderElect, LeaderElectionNamespace: leNS, LeaderElectionID: "lanyard-status.lanyard.dev",
		Namespace:       f.namespace,
		Policy:          policyOptions,
		Mutate:          mutateOptions,
		MaxRequestBytes: f.maxRequestBytes,
		Live: cluster.Options{LiveQPS: f.liveQPS, LiveBurst: f.liveBurst, LiveTimeout: f.liveTimeout, RecentWindow: f.recentWindow,
			EKSAnnotationPrefix: policyOptions.EKSAnnotationPrefix},
		ShutdownDelay: f.shutdownDelay,
		StatusWrites:  webhook.StatusWrites{Idle: f.statusWrites, Busy: f.statusWritesBusy},
		Log:           log,
	}
	return cfg, restConfig, nil
}
