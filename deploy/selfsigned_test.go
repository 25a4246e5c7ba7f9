package deploy_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lanyard-dev/lanyard/certs"
)

const selfSignedOverlay = "overlays/self-signed"

type selfSignedInstall struct {
	deployment   appsv1.Deployment
	roles        []rbacv1.Role
	clusterRoles []rbacv1.ClusterRole
	roleBindings []rbacv1.RoleBinding
	crBindings   []rbacv1.ClusterRoleBinding
	mutating     []admissionregistrationv1.MutatingWebhookConfiguration
	validating   []admissionregistrationv1.ValidatingWebhookConfiguration
}

func loadSelfSignedInstall(t *testing.T) selfSignedInstall {
	t.Helper()
	objs, err := renderOverlay(selfSignedOverlay)
	require.NoError(t, err, "kustomize build %s", selfSignedOverlay)
	var in selfSignedInstall
	deployments := 0
	for _, o := range objs {
		switch o.kind {
		case "Deployment":
			in.deployment = decodeStrict[appsv1.Deployment](t, o)
			deployments++
		case "Role":
			in.roles = append(in.roles, decodeStrict[rbacv1.Role](t, o))
		case "ClusterRole":
			in.clusterRoles = append(in.clusterRoles, decodeStrict[rbacv1.ClusterRole](t, o))
		case "RoleBinding":
			in.roleBindings = append(in.roleBindings, decodeStrict[rbacv1.RoleBinding](t, o))
		case "ClusterRoleBinding":
			in.crBindings = append(in.crBindings, decodeStrict[rbacv1.ClusterRoleBinding](t, o))
		case "MutatingWebhookConfiguration":
			in.mutating = append(in.mutating, decodeStrict[admissionregistrationv1.MutatingWebhookConfiguration](t, o))
		case "ValidatingWebhookConfiguration":
			in.validating = append(in.validating, decodeStrict[admissionregistrationv1.ValidatingWebhookConfiguration](t, o))
		}
	}
	require.Equal(t, 1, deployments)
	return in
}

func TestSelfSignedOverlay_RunsInSelfSignedModeWithoutACertificateVolume(t *testing.T) {
	in := loadSelfSignedInstall(t)
	c := in.deployment.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"self-signed"}, flagValues(c.Args, "cert-mode"))
	assert.Empty(t, c.VolumeMounts, "the certificate comes from the API, not a mounted Secret")
	for _, v := range in.deployment.Spec.Template.Spec.Volumes {
		assert.Nil(t, v.Secret, "volume %s", v.Name)
	}
}

// Secrets: only the one the authority keeps, by name, plus create (which cannot name an object
// that does not exist yet). Webhook configurations: updates only of those lanyard keeps the
// caBundle of, by name.
func TestSelfSignedOverlay_RBACIsLimitedToTheSecretAndLanyardsWebhookConfigurations(t *testing.T) {
	in := loadSelfSignedInstall(t)
	sa := in.deployment.Spec.Template.Spec.ServiceAccountName
	ns := in.deployment.Namespace
	secretRules := 0
	for _, r := range in.roles {
		for _, rule := range r.Rules {
			if !slices.Contains(rule.Resources, "secrets") {
				continue
			}
			secretRules++
			require.Equal(t, ns, r.Namespace)
			if slices.Equal(rule.Verbs, []string{"create"}) {
				assert.Empty(t, rule.ResourceNames)
				continue
			}
			assert.Equal(t, []string{"lanyard-webhook-tls"}, rule.ResourceNames, "Role %s: every other Secret verb names the Secret", r.Name)
		}
	}
	assert.Equal(t, 2, secretRules, "exactly the named rule and the create rule")
	for _, r := range in.clusterRoles {
		for _, rule := range r.Rules {
			assert.NotContains(t, rule.Resources, "secrets", "ClusterRole %s grants no cluster-wide Secret access", r.Name)
		}
	}

	selector, err := labels.Parse(certs.DefaultBundleSelector)
	require.NoError(t, err)
	var kept []string
	for _, m := range in.mutating {
		if selector.Matches(labels.Set(m.Labels)) {
			kept = append(kept, m.Name)
		}
	}
	for _, v := range in.validating {
		if selector.Matches(labels.Set(v.Labels)) {
			kept = append(kept, v.Name)
		}
	}
	require.NotEmpty(t, kept, "the webhook configurations carry %s", certs.DefaultBundleSelector)
	updates := false
	for _, r := range in.clusterRoles {
		for _, rule := range r.Rules {
			if slices.Contains(rule.Verbs, "update") && slices.Contains(rule.Resources, "mutatingwebhookconfigurations") {
				updates = true
				assert.ElementsMatch(t, slices.Compact(slices.Sorted(slices.Values(kept))), rule.ResourceNames,
					"ClusterRole %s may update exactly the labelled configurations", r.Name)
			}
		}
	}
	assert.True(t, updates, "a rule lets lanyard update its webhook configurations")

	bound := map[string]bool{}
	for _, b := range in.roleBindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
				bound["Role/"+b.RoleRef.Name] = true
			}
		}
	}
	for _, b := range in.crBindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns {
				bound["ClusterRole/"+b.RoleRef.Name] = true
			}
		}
	}
	assert.True(t, bound["Role/lanyard-self-signed"], "the Deployment's ServiceAccount is bound to the Secret Role")
	assert.True(t, bound["ClusterRole/lanyard-self-signed"], "the Deployment's ServiceAccount is bound to the webhook configuration ClusterRole")
}
