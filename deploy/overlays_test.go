// Package deploy_test renders the kustomize overlays in memory (no cluster, no network) and checks
// that the objects they produce agree with each other as they will be applied.
package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const certManagerOverlay = "overlays/cert-manager"

// object is one rendered resource: its identity and its JSON.
type object struct {
	group, kind, name, namespace string
	clusterScoped                bool
	json                         []byte
}

func (o object) String() string {
	return fmt.Sprintf("%s.%s %s/%s", o.kind, o.group, o.namespace, o.name)
}

// renderOverlay runs kustomize on dir as `kubectl apply -k` would.
func renderOverlay(dir string) ([]object, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var objs []object
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		gvk := r.GetGvk()
		objs = append(objs, object{
			group: gvk.Group, kind: gvk.Kind, name: r.GetName(), namespace: r.GetNamespace(),
			clusterScoped: gvk.IsClusterScoped(), json: data,
		})
	}
	return objs, nil
}

var renderCertManager = sync.OnceValues(func() ([]object, error) { return renderOverlay(certManagerOverlay) })

// decodeStrict decodes o into a T, failing on unknown fields, duplicate fields and fields whose
// case differs from the API's (sigs.k8s.io/json is case-sensitive, encoding/json is not), so a
// misspelt field fails instead of being dropped silently.
func decodeStrict[T any](t *testing.T, o object) T {
	t.Helper()
	var out T
	strictErrs, err := sigsjson.UnmarshalStrict(o.json, &out,
		sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	require.NoError(t, err, "%s", o)
	require.Empty(t, strictErrs, "%s does not match %T", o, out)
	return out
}

// certManagerInstall is the rendered cert-manager overlay, decoded and sorted by role.
type certManagerInstall struct {
	objects []object
	// namespace is the one Namespace object rendered: lanyard's install namespace.
	namespace string

	selfSignedIssuer, caIssuer certmanagerv1.Issuer
	caCert, servingCert        certmanagerv1.Certificate

	deployment appsv1.Deployment
	services   []corev1.Service
	mutating   admissionregistrationv1.MutatingWebhookConfiguration
	validating admissionregistrationv1.ValidatingWebhookConfiguration
}

// loadCertManagerInstall renders the overlay and decodes the objects the tests reason about,
// each strictly into its typed API. Roles are told apart by structure (selfSigned or ca issuer,
// isCA or not), never by name, so a renamed object is still checked.
func loadCertManagerInstall(t *testing.T) certManagerInstall {
	t.Helper()
	objs, err := renderCertManager()
	require.NoError(t, err, "kustomize build %s", certManagerOverlay)

	in := certManagerInstall{objects: objs}
	var (
		namespaces, deployments, mutating, validating []object
		selfSigned, ca                                []certmanagerv1.Issuer
		caCerts, servingCerts                         []certmanagerv1.Certificate
	)
	for _, o := range objs {
		switch {
		case o.group == certmanagerv1.SchemeGroupVersion.Group && o.kind == certmanagerv1.IssuerKind:
			iss := decodeStrict[certmanagerv1.Issuer](t, o)
			switch {
			case iss.Spec.SelfSigned != nil:
				selfSigned = append(selfSigned, iss)
			case iss.Spec.CA != nil:
				ca = append(ca, iss)
			default:
				t.Fatalf("%s: neither a selfSigned nor a ca issuer", o)
			}
		case o.group == certmanagerv1.SchemeGroupVersion.Group && o.kind == certmanagerv1.CertificateKind:
			cert := decodeStrict[certmanagerv1.Certificate](t, o)
			if cert.Spec.IsCA {
				caCerts = append(caCerts, cert)
			} else {
				servingCerts = append(servingCerts, cert)
			}
		case o.group == certmanagerv1.SchemeGroupVersion.Group:
			t.Fatalf("%s: a cert-manager kind this test cannot decode strictly; extend it", o)
		case o.group == "" && o.kind == "Namespace":
			namespaces = append(namespaces, o)
		case o.group == "" && o.kind == "Service":
			in.services = append(in.services, decodeStrict[corev1.Service](t, o))
		case o.group == "apps" && o.kind == "Deployment":
			deployments = append(deployments, o)
		case o.group == "admissionregistration.k8s.io" && o.kind == "MutatingWebhookConfiguration":
			mutating = append(mutating, o)
		case o.group == "admissionregistration.k8s.io" && o.kind == "ValidatingWebhookConfiguration":
			validating = append(validating, o)
		}
	}
	require.Len(t, namespaces, 1, "Namespace objects")
	require.Len(t, deployments, 1, "Deployments")
	require.Len(t, mutating, 1, "MutatingWebhookConfigurations")
	require.Len(t, validating, 1, "ValidatingWebhookConfigurations")
	require.Len(t, selfSigned, 1, "self-signed Issuers")
	require.Len(t, ca, 1, "CA Issuers")
	require.Len(t, caCerts, 1, "CA Certificates (isCA: true)")
	require.Len(t, servingCerts, 1, "serving Certificates (isCA: false)")

	in.namespace = namespaces[0].name
	in.deployment = decodeStrict[appsv1.Deployment](t, deployments[0])
	in.mutating = decodeStrict[admissionregistrationv1.MutatingWebhookConfiguration](t, mutating[0])
	in.validating = decodeStrict[admissionregistrationv1.ValidatingWebhookConfiguration](t, validating[0])
	in.selfSignedIssuer, in.caIssuer = selfSigned[0], ca[0]
	in.caCert, in.servingCert = caCerts[0], servingCerts[0]
	return in
}

// lanyardContainer is the Deployment's lanyard container.
func (in certManagerInstall) lanyardContainer(t *testing.T) corev1.Container {
	t.Helper()
	for _, c := range in.deployment.Spec.Template.Spec.Containers {
		if c.Name == "lanyard" {
			return c
		}
	}
	require.FailNow(t, "the Deployment has no lanyard container")
	return corev1.Container{}
}

// flagValues returns the values given to --name in args (--name=value form).
func flagValues(args []string, name string) []string {
	var vals []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// assertIssuerRef checks that ref names the namespaced Issuer want.
func assertIssuerRef(t *testing.T, want certmanagerv1.Issuer, ref cmmeta.IssuerReference, what string) {
	t.Helper()
	assert.Equal(t, want.Name, ref.Name, "%s: issuerRef.name", what)
	assert.Equal(t, certmanagerv1.IssuerKind, ref.Kind, "%s: issuerRef.kind", what)
	assert.Contains(t, []string{"", certmanagerv1.SchemeGroupVersion.Group}, ref.Group, "%s: issuerRef.group", what)
}

func TestCertManagerOverlay_EveryCertManagerObjectDecodesStrictly(t *testing.T) {
	// loadCertManagerInstall decodes every cert-manager.io object strictly and fails on any kind
	// it cannot; this pins that the overlay ships exactly the four objects of the CA chain.
	in := loadCertManagerInstall(t)
	var got []string
	for _, o := range in.objects {
		if o.group == certmanagerv1.SchemeGroupVersion.Group {
			got = append(got, o.kind)
		}
	}
	slices.Sort(got)
	assert.Equal(t, []string{"Certificate", "Certificate", "Issuer", "Issuer"}, got)
}

func TestCertManagerOverlay_CAIsBootstrappedBySelfSignedIssuer(t *testing.T) {
	in := loadCertManagerInstall(t)
	assertIssuerRef(t, in.selfSignedIssuer, in.caCert.Spec.IssuerRef, "CA Certificate "+in.caCert.Name)
}

func TestCertManagerOverlay_CAIssuerSignsWithTheCACertificatesSecret(t *testing.T) {
	in := loadCertManagerInstall(t)
	assert.Equal(t, in.caCert.Spec.SecretName, in.caIssuer.Spec.CA.SecretName,
		"CA Issuer %s must sign with the Secret written by CA Certificate %s", in.caIssuer.Name, in.caCert.Name)
}

func TestCertManagerOverlay_ServingCertificateIsSignedByCAIssuer(t *testing.T) {
	in := loadCertManagerInstall(t)
	assertIssuerRef(t, in.caIssuer, in.servingCert.Spec.IssuerRef, "serving Certificate "+in.servingCert.Name)
}

func TestCertManagerOverlay_DeploymentMountsServingCertificateSecretAtCertDir(t *testing.T) {
	in := loadCertManagerInstall(t)
	c := in.lanyardContainer(t)
	certDirs := flagValues(c.Args, "cert-dir")
	require.Len(t, certDirs, 1, "--cert-dir in %q", c.Args)

	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == certDirs[0] {
			volume = m.Name
		}
	}
	require.NotEmpty(t, volume, "no volume mounted at --cert-dir %s", certDirs[0])
	var secretName string
	for _, v := range in.deployment.Spec.Template.Spec.Volumes {
		if v.Name == volume {
			require.NotNil(t, v.Secret, "volume %s at --cert-dir is not a Secret volume", volume)
			secretName = v.Secret.SecretName
		}
	}
	assert.Equal(t, in.servingCert.Spec.SecretName, secretName,
		"the serving Certificate must write the Secret mounted at --cert-dir")
}

func TestCertManagerOverlay_ServingCertificateCoversTheWebhookServiceDNSNames(t *testing.T) {
	in := loadCertManagerInstall(t)
	refs := map[admissionregistrationv1.ServiceReference]bool{}
	for _, w := range in.mutating.Webhooks {
		require.NotNil(t, w.ClientConfig.Service, "mutating webhook %s calls no Service", w.Name)
		refs[*w.ClientConfig.Service] = true
	}
	for _, w := range in.validating.Webhooks {
		require.NotNil(t, w.ClientConfig.Service, "validating webhook %s calls no Service", w.Name)
		refs[*w.ClientConfig.Service] = true
	}
	require.NotEmpty(t, refs, "no webhooks rendered")

	for ref := range refs {
		assert.True(t, slices.ContainsFunc(in.services, func(s corev1.Service) bool {
			return s.Name == ref.Name && s.Namespace == ref.Namespace
		}), "webhooks call Service %s/%s, which is not rendered", ref.Namespace, ref.Name)
		svc, ns := ref.Name, ref.Namespace
		assert.ElementsMatch(t,
			[]string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"},
			in.servingCert.Spec.DNSNames, "dnsNames of serving Certificate %s", in.servingCert.Name)
	}
}

func TestCertManagerOverlay_WebhookConfigurationsInjectTheServingCertificatesCA(t *testing.T) {
	in := loadCertManagerInstall(t)
	const key = "cert-manager.io/inject-ca-from"
	want := in.servingCert.Namespace + "/" + in.servingCert.Name
	assert.Equal(t, want, in.mutating.Annotations[key], "MutatingWebhookConfiguration %s", in.mutating.Name)
	assert.Equal(t, want, in.validating.Annotations[key], "ValidatingWebhookConfiguration %s", in.validating.Name)
}

func TestCertManagerOverlay_NamespacedObjectsAreInTheInstallNamespace(t *testing.T) {
	in := loadCertManagerInstall(t)
	for _, o := range in.objects {
		if o.clusterScoped {
			assert.Empty(t, o.namespace, "cluster-scoped %s", o)
		} else {
			assert.Equal(t, in.namespace, o.namespace, "namespaced %s", o)
		}
	}
}

func TestCertManagerOverlay_DeploymentRunsInCertManagerMode(t *testing.T) {
	in := loadCertManagerInstall(t)
	c := in.lanyardContainer(t)
	assert.Contains(t, c.Args, "--cert-mode=cert-manager")
	assert.Equal(t, []string{"cert-manager"}, flagValues(c.Args, "cert-mode"), "no other --cert-mode in %q", c.Args)
}

func TestCertManagerOverlay_CertificatesUseP256KeysRenewAtAThirdOfLifetimeAndTheCAKeepsItsKey(t *testing.T) {
	in := loadCertManagerInstall(t)
	for _, tc := range []struct {
		cert                  certmanagerv1.Certificate
		duration, renewBefore string
		rotation              certmanagerv1.PrivateKeyRotationPolicy
	}{
		// The CA keeps its key across renewals, so that certificates it signed before still verify
		// against the renewed CA that cainjector puts alone into caBundle.
		{in.caCert, "8760h0m0s", "2920h0m0s", certmanagerv1.RotationPolicyNever},      // 365 days, a third
		{in.servingCert, "2160h0m0s", "720h0m0s", certmanagerv1.RotationPolicyAlways}, // 90 days, 30 days
	} {
		spec := tc.cert.Spec
		require.NotNil(t, spec.PrivateKey, "Certificate %s: privateKey", tc.cert.Name)
		assert.Equal(t, certmanagerv1.ECDSAKeyAlgorithm, spec.PrivateKey.Algorithm, "Certificate %s", tc.cert.Name)
		assert.Equal(t, 256, spec.PrivateKey.Size, "Certificate %s", tc.cert.Name)
		assert.Equal(t, tc.rotation, spec.PrivateKey.RotationPolicy, "Certificate %s", tc.cert.Name)
		require.NotNil(t, spec.Duration, "Certificate %s: duration", tc.cert.Name)
		require.NotNil(t, spec.RenewBefore, "Certificate %s: renewBefore", tc.cert.Name)
		assert.Equal(t, tc.duration, spec.Duration.Duration.String(), "Certificate %s: duration", tc.cert.Name)
		assert.Equal(t, tc.renewBefore, spec.RenewBefore.Duration.String(), "Certificate %s: renewBefore", tc.cert.Name)
	}
	assert.ElementsMatch(t,
		[]certmanagerv1.KeyUsage{certmanagerv1.UsageServerAuth, certmanagerv1.UsageDigitalSignature},
		in.servingCert.Spec.Usages, "serving Certificate %s: usages", in.servingCert.Name)
}
