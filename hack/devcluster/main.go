// Command devcluster runs a real kube-apiserver and etcd (the binaries hack/envtest-assets.sh
// builds) with lanyard's CRDs and webhook configurations installed, pointing the webhooks at
// https://127.0.0.1:9443, and writes what lanyard serve and curl need into one directory:
// kubeconfig, ca.crt (a CA generated for this run, also the webhook configurations' caBundle) and
// certs/tls.crt, certs/tls.key (a serving certificate for localhost, 127.0.0.1 and ::1 signed by
// that CA). It runs until interrupted. For trying lanyard on a laptop with nothing but Go.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lanyard-dev/lanyard/internal/manifest"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "lanyard-dev"), "directory for kubeconfig and certificates")
	port := flag.Int("webhook-port", 9443, "port lanyard serve listens on")
	root := flag.String("repo", ".", "repository root (for deploy/)")
	var apply stringList
	flag.Var(&apply, "apply", "create the objects of these files or directories once the API server is up (repeatable)")
	flag.Parse()
	if err := run(*dir, *root, *port, apply); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func run(dir, root string, port int, apply []string) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run via make dev-cluster (it builds the API server once)")
	}
	certs, err := newDevCertificates(time.Now())
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths:            []string{filepath.Join(root, "deploy", "base", "webhooks.yaml")},
			LocalServingHost: "127.0.0.1",
			LocalServingPort: port,
		},
	}
	if _, err := env.Start(); err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()

	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		return err
	}
	user, err := env.AddUser(envtest.User{Name: "dev", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	// The API server trusts lanyard through the dev-cluster CA, not envtest's own certificate.
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		return err
	}
	var mutating, validating []string
	for _, h := range env.WebhookInstallOptions.MutatingWebhooks {
		mutating = append(mutating, h.Name)
	}
	for _, h := range env.WebhookInstallOptions.ValidatingWebhooks {
		validating = append(validating, h.Name)
	}
	if err := useCABundle(context.Background(), c, mutating, validating, certs.CA); err != nil {
		return err
	}
	files := map[string][]byte{
		"kubeconfig":                      kubeconfig,
		"ca.crt":                          certs.CA,
		filepath.Join("certs", "tls.crt"): certs.Cert,
		filepath.Join("certs", "tls.key"): certs.Key,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("kube-apiserver %s is up; lanyard's CRDs and webhook configurations are installed.\n", env.Config.Host)
	fmt.Printf("  kubeconfig:  %s\n  serving certificate: %s (signed by the CA %s)\n",
		filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "certs"), filepath.Join(dir, "ca.crt"))
	if len(apply) > 0 {
		// IdentityAssociations pass lanyard's validating webhook: create them once lanyard serves.
		go func() {
			if err := applyPaths(env, apply, fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
				fmt.Fprintln(os.Stderr, "devcluster:", err)
			}
		}()
	}
	fmt.Println("Press Ctrl-C to stop.")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// applyPaths creates every object of the given manifests (already existing ones are left alone);
// IdentityAssociations wait until lanyard answers on webhookAddr.
func applyPaths(env *envtest.Environment, paths []string, webhookAddr string) error {
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		return err
	}
	docs, err := manifest.ReadPaths(paths, os.Stdin)
	if err != nil {
		return err
	}
	waited := false
	for _, d := range docs {
		if d.JSON == nil {
			continue
		}
		if d.Kind == "IdentityAssociation" && !waited {
			fmt.Printf("waiting for lanyard serve on %s to create the IdentityAssociations...\n", webhookAddr)
			for {
				if conn, err := net.DialTimeout("tcp", webhookAddr, time.Second); err == nil {
					_ = conn.Close()
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			waited = true
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(d.JSON); err != nil {
			return fmt.Errorf("%s: %w", d.Ref(), err)
		}
		if err := c.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: %w", d.Ref(), err)
		}
		fmt.Printf("created %s %s\n", obj.GetKind(), obj.GetName())
	}
	return nil
}
