package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// Source is where the admission server's certificate comes from.
type Source interface {
	// GetCertificate is the TLS server's certificate callback.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Leaf is the certificate served now, nil before one is loaded.
	Leaf() *x509.Certificate
	// Start runs the source until ctx ends (a manager Runnable).
	Start(ctx context.Context) error
}

// Metrics are the certificate gauges.
type Metrics struct {
	expiry *prometheus.GaugeVec
}

// NewMetrics registers lanyard_certificate_expiry_timestamp_seconds (or reuses it when a server is
// restarted within one process).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lanyard_certificate_expiry_timestamp_seconds",
		Help: "When the served certificate (kind=leaf) and the CA that signed it (kind=ca, when known) expire, as a Unix timestamp.",
	}, []string{"kind"})
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		g = are.ExistingCollector.(*prometheus.GaugeVec)
	}
	return &Metrics{expiry: g}
}

func (m *Metrics) observe(leaf, ca *x509.Certificate) {
	if m == nil {
		return
	}
	if leaf != nil {
		m.expiry.WithLabelValues("leaf").Set(float64(leaf.NotAfter.Unix()))
	}
	if ca != nil {
		m.expiry.WithLabelValues("ca").Set(float64(ca.NotAfter.Unix()))
	}
}

// Files serves tls.crt/tls.key from files, reloaded when they change (the files and cert-manager
// modes; cert-manager's Secret is mounted). An optional CA file (cert-manager's ca.crt) is read
// for the CA expiry metric.
type Files struct {
	watcher *certwatcher.CertWatcher
	caPath  string
	metrics *Metrics
	log     logr.Logger
}

// NewFiles loads the certificate at once: a missing or broken file is an error at start.
func NewFiles(certPath, keyPath, caPath string, metrics *Metrics, log logr.Logger) (*Files, error) {
	w, err := certwatcher.New(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	f := &Files{watcher: w, caPath: caPath, metrics: metrics, log: log}
	// Called with the watcher's lock held (and at once with the current certificate): it must not
	// call back into the watcher.
	w.RegisterCallback(func(c tls.Certificate) { f.observe(c.Leaf) })
	return f, nil
}

func (f *Files) observe(leaf *x509.Certificate) {
	var ca *x509.Certificate
	if f.caPath != "" {
		if data, err := os.ReadFile(f.caPath); err == nil {
			if cas, err := ParseCertificates(data); err == nil && leaf != nil {
				for _, c := range cas {
					if SignedBy(leaf, c) {
						ca = c
					}
				}
			}
		}
	}
	f.metrics.observe(leaf, ca)
	if leaf != nil {
		f.log.Info("serving certificate loaded", "fingerprint", Fingerprint(leaf), "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// GetCertificate implements Source.
func (f *Files) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.watcher.GetCertificate(hello)
}

// Leaf implements Source.
func (f *Files) Leaf() *x509.Certificate {
	c, err := f.watcher.GetCertificate(nil)
	if err != nil || c == nil {
		return nil
	}
	return c.Leaf
}

// Start implements Source.
func (f *Files) Start(ctx context.Context) error { return f.watcher.Start(ctx) }

// SecretSource serves the certificate of the self-signed mode's Secret, watched: every replica
// serves a new certificate as soon as the leader writes it.
type SecretSource struct {
	client          kubernetes.Interface
	namespace, name string
	metrics         *Metrics
	log             logr.Logger
	onChange        func()

	cert atomic.Pointer[tls.Certificate]
	ca   atomic.Pointer[x509.Certificate]
}

// NewSecretSource watches Secret namespace/name. onChange (optional) is called after every event.
func NewSecretSource(client kubernetes.Interface, namespace, name string, metrics *Metrics, log logr.Logger, onChange func()) *SecretSource {
	return &SecretSource{client: client, namespace: namespace, name: name, metrics: metrics, log: log, onChange: onChange}
}

// Start implements Source: one watch on the one Secret (RBAC may name just it).
func (s *SecretSource) Start(ctx context.Context) error {
	secrets := s.client.CoreV1().Secrets(s.namespace)
	byName := fields.OneTermEqualSelector(metav1.ObjectNameField, s.name).String()
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return secrets.Watch(ctx, o)
		},
	}
	inf := toolscache.NewSharedIndexInformer(toolscache.ToListWatcherWithWatchListSemantics(lw, s.client), &corev1.Secret{}, 0, toolscache.Indexers{})
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.load(obj) },
		UpdateFunc: func(_, obj any) { s.load(obj) },
		DeleteFunc: func(any) {
			s.log.Info("the certificate Secret was deleted: serving the last certificate until it is recreated", "secret", s.namespace+"/"+s.name)
			s.changed()
		},
	}); err != nil {
		return err
	}
	inf.Run(ctx.Done())
	return nil
}

func (s *SecretSource) changed() {
	if s.onChange != nil {
		s.onChange()
	}
}

func (s *SecretSource) load(obj any) {
	defer s.changed()
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	kp, err := ParseKeyPair(secret.Data[KeyServingCert], secret.Data[KeyServingKey])
	if err != nil {
		s.log.Info("the certificate Secret holds no usable serving certificate; serving the current one until the leader repairs it",
			"secret", s.namespace+"/"+s.name, "problem", err.Error())
		return
	}
	if cur := s.cert.Load(); cur != nil && cur.Leaf.Equal(kp.Cert) {
		return
	}
	cert := &tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
	s.cert.Store(cert)
	var signer *x509.Certificate
	if ca, err := ParseCertificates(secret.Data[KeyCABundle]); err == nil {
		for _, c := range ca {
			if SignedBy(kp.Cert, c) {
				signer = c
			}
		}
	}
	if signer != nil {
		s.ca.Store(signer)
	}
	s.metrics.observe(kp.Cert, signer)
	s.log.Info("serving a new certificate", "fingerprint", Fingerprint(kp.Cert),
		"expires", kp.Cert.NotAfter.UTC().Format(time.RFC3339), "ca", fingerprintOrNone(signer))
}

func fingerprintOrNone(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	return Fingerprint(c)
}

// GetCertificate implements Source.
func (s *SecretSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no serving certificate loaded yet from Secret %s/%s", s.namespace, s.name)
}

// Leaf implements Source.
func (s *SecretSource) Leaf() *x509.Certificate {
	if c := s.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}
