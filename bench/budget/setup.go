package budget

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/certs"
)

// ServingCertificate writes tls.crt and tls.key for 127.0.0.1 into dir, signed by a CA made for
// the run (the load client does not verify it; lanyard serves it as it would its real one).
func ServingCertificate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := certs.NewCA(time.Now(), 48*time.Hour)
	if err != nil {
		return err
	}
	leaf, err := certs.IssueServing(ca, []string{"127.0.0.1"}, time.Now(), 24*time.Hour)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), leaf.KeyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.crt"), leaf.CertPEM, 0o600)
}

// AdminKubeconfig writes into dir a kubeconfig of a cluster-admin user of env's API server (what
// lanyard runs with in the benchmarks) and returns its path.
func AdminKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "lanyard", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, kubeconfig, 0o600)
}

// DeploymentEnv is the environment the shipped Deployment (deploy/base/deployment.yaml) gives the
// container named container, as NAME=value: literal values, and resource fields (GOMEMLIMIT from
// limits.memory) resolved against the container's own resources. Values from the pod (its
// namespace) are left out: the flags say them.
func DeploymentEnv(path, container string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != container {
			continue
		}
		var env []string
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env = append(env, e.Name+"="+e.Value)
			case e.ValueFrom.ResourceFieldRef != nil:
				ref := e.ValueFrom.ResourceFieldRef
				q, ok := resourceField(c, ref.Resource)
				if !ok {
					return nil, fmt.Errorf("%s: env %s refers to %s, which the container does not set", path, e.Name, ref.Resource)
				}
				divisor := int64(1)
				if !ref.Divisor.IsZero() {
					divisor = ref.Divisor.Value()
				}
				env = append(env, e.Name+"="+strconv.FormatInt(q.Value()/divisor, 10))
			}
		}
		return env, nil
	}
	return nil, fmt.Errorf("%s: no container %q", path, container)
}

// resourceField is a container's resource named as in a resourceFieldRef ("limits.memory").
func resourceField(c corev1.Container, field string) (resource.Quantity, bool) {
	list, name := c.Resources.Limits, field
	if rest, ok := strings.CutPrefix(field, "limits."); ok {
		name = rest
	} else if rest, ok := strings.CutPrefix(field, "requests."); ok {
		list, name = c.Resources.Requests, rest
	}
	q, ok := list[corev1.ResourceName(name)]
	return q, ok
}
