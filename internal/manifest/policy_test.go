package manifest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	iaS3 = `apiVersion: lanyard.dev/v1alpha1
kind: IdentityAssociation
metadata:
  name: s3
spec:
  namespace: payments
  serviceAccountName: api
  aws:
    roleARN: arn:aws:iam::111122223333:role/s3-reader
`
	raACR = `apiVersion: lanyard.dev/v1alpha1
kind: RegistryAttachment
metadata:
  name: acr
spec:
  registry: myacr.azurecr.io
  pull:
    imagePullSecret:
      name: acr-pull
`
	nsPayments = `apiVersion: v1
kind: Namespace
metadata:
  name: payments
  labels:
    lanyard.dev/inject: enabled
`
	deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers: [{name: web, image: nginx}]
`
)

func split(t *testing.T, source, input string) []*manifest.Document {
	t.Helper()
	docs, err := manifest.Split(source, []byte(input))
	require.NoError(t, err)
	return docs
}

func TestPolicyAdd(t *testing.T) {
	p := manifest.NewPolicy()
	docs := split(t, "policy.yaml", iaS3+"---\n"+raACR+"---\n"+nsPayments+"---\n# comment only\n---\n"+deployment+
		"---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\n  namespace: payments\n")
	require.NoError(t, p.Add(docs, "default"))

	ias := p.AllIdentityAssociations()
	require.Len(t, ias, 1)
	assert.Equal(t, "s3", ias[0].Name)
	assert.Equal(t, "arn:aws:iam::111122223333:role/s3-reader", ias[0].Spec.AWS.RoleARN)
	ras, err := p.RegistryAttachments(context.Background())
	require.NoError(t, err)
	require.Len(t, ras, 1)
	assert.Equal(t, "acr-pull", ras[0].Spec.Pull.ImagePullSecret.Name)
	assert.True(t, p.HasNamespace("payments"))
	assert.True(t, p.HasServiceAccount("payments", "api"))

	assert.Equal(t, docs[0], p.Origin["IdentityAssociation/s3"])
	assert.Equal(t, docs[1], p.Origin["RegistryAttachment/acr"])
	assert.Equal(t, docs[2], p.Origin["Namespace/payments"])
	assert.Equal(t, docs[5], p.Origin["ServiceAccount/payments/api"])
	assert.Len(t, p.Origin, 4, "the Deployment and the comment-only document are not policy")
}

func TestPolicyAddNamespaceGetsMetadataNameLabel(t *testing.T) {
	tests := map[string]struct {
		input      string
		wantLabels map[string]string
	}{
		"namespace with labels": {
			input:      nsPayments,
			wantLabels: map[string]string{"lanyard.dev/inject": "enabled", corev1.LabelMetadataName: "payments"},
		},
		"namespace without labels": {
			input:      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bare\n",
			wantLabels: map[string]string{corev1.LabelMetadataName: "bare"},
		},
		"a wrong metadata.name label is corrected": {
			input:      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: real\n  labels:\n    kubernetes.io/metadata.name: fake\n",
			wantLabels: map[string]string{corev1.LabelMetadataName: "real"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := manifest.NewPolicy()
			docs := split(t, "ns.yaml", tc.input)
			require.NoError(t, p.Add(docs, "default"))
			ns, err := p.Namespace(context.Background(), docs[0].Name)
			require.NoError(t, err)
			require.NotNil(t, ns)
			assert.Equal(t, tc.wantLabels, ns.Labels)
		})
	}
}

func TestPolicyAddServiceAccountNamespace(t *testing.T) {
	tests := map[string]struct {
		input         string
		wantNamespace string
	}{
		"without namespace gets the default": {
			input:         "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\n",
			wantNamespace: "team-default",
		},
		"with namespace keeps it": {
			input:         "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\n  namespace: payments\n",
			wantNamespace: "payments",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := manifest.NewPolicy()
			docs := split(t, "sa.yaml", tc.input)
			require.NoError(t, p.Add(docs, "team-default"))
			assert.True(t, p.HasServiceAccount(tc.wantNamespace, "api"))
			assert.Equal(t, docs[0], p.Origin["ServiceAccount/"+tc.wantNamespace+"/api"])
			sa, _, err := p.ServiceAccount(context.Background(), tc.wantNamespace, "api")
			require.NoError(t, err)
			require.NotNil(t, sa)
			assert.Equal(t, tc.wantNamespace, sa.Namespace)
		})
	}
}

func TestPolicyAddList(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: lanyard.dev/v1alpha1
  kind: IdentityAssociation
  metadata: {name: from-list}
  spec:
    namespace: payments
    serviceAccountName: worker
    gcp:
      workloadIdentityProvider: projects/123/locations/global/workloadIdentityPools/pool/providers/prov
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: ignored}
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: ServiceAccount
    metadata: {name: worker}
`
	p := manifest.NewPolicy()
	docs := split(t, "list.yaml", list)
	require.NoError(t, p.Add(docs, "payments"))
	ias := p.AllIdentityAssociations()
	require.Len(t, ias, 1)
	assert.Equal(t, "from-list", ias[0].Name)
	assert.Equal(t, docs[0], p.Origin["IdentityAssociation/from-list"])
	assert.True(t, p.HasServiceAccount("payments", "worker"), "a List nested in a List is walked")
}

func TestPolicyAddSameNameAssociationReplaces(t *testing.T) {
	second := strings.Replace(iaS3, "serviceAccountName: api", "serviceAccountName: other", 1)
	p := manifest.NewPolicy()
	docs := split(t, "ia.yaml", iaS3+"---\n"+second)
	require.NoError(t, p.Add(docs, "default"))
	ias := p.AllIdentityAssociations()
	require.Len(t, ias, 1)
	assert.Equal(t, "other", ias[0].Spec.ServiceAccountName)
	assert.Equal(t, docs[1], p.Origin["IdentityAssociation/s3"])
	assert.Empty(t, p.Conflicts())
}

func TestPolicyAddIgnoresNonPolicyKinds(t *testing.T) {
	tests := map[string]string{
		"deployment":                   deployment,
		"config map":                   cm("x"),
		"pod":                          "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
		"association of another group": "apiVersion: example.com/v1\nkind: IdentityAssociation\nmetadata: {name: x}\nspec: {bogus: true}\n",
		"namespace of another version": "apiVersion: v2\nkind: Namespace\nmetadata: {name: x}\nbogus: true\n",
		"object without kind":          "foo: bar\n",
	}
	for name, input := range tests {
		t.Run(name, func(t *testing.T) {
			p := manifest.NewPolicy()
			require.NoError(t, p.Add(split(t, "x.yaml", input), "default"))
			assert.Empty(t, p.Origin)
			assert.Empty(t, p.AllIdentityAssociations())
		})
	}
}

func TestPolicyAddErrors(t *testing.T) {
	tests := map[string]struct {
		input   string
		wantErr []string
	}{
		"unknown field names its path": {
			input:   strings.Replace(iaS3, "roleARN:", "rolearn:", 1),
			wantErr: []string{"policy.yaml document 1 (IdentityAssociation s3), line 1", `unknown field "spec.aws.rolearn"`},
		},
		"unknown field of a RegistryAttachment": {
			input:   raACR + "  extra: 1\n",
			wantErr: []string{"document 1 (RegistryAttachment acr)", `unknown field "spec.extra"`},
		},
		"unknown field of a Namespace": {
			input:   nsPayments + "spec:\n  finalizerz: []\n",
			wantErr: []string{"document 1 (Namespace payments)", `unknown field "spec.finalizerz"`},
		},
		"unknown field of a ServiceAccount": {
			input:   "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\nsecret: []\n",
			wantErr: []string{"document 1 (ServiceAccount api)", `unknown field "secret"`},
		},
		"invalid association names the field": {
			input:   strings.Replace(iaS3, "role/s3-reader", "user/s3-reader", 1),
			wantErr: []string{"document 1 (IdentityAssociation s3)", "spec.aws.roleARN", "roleARN must be an IAM role ARN"},
		},
		"invalid attachment names the field": {
			input:   strings.Replace(raACR, "myacr.azurecr.io", "https://myacr.azurecr.io", 1),
			wantErr: []string{"document 1 (RegistryAttachment acr)", "spec.registry"},
		},
		"association without a name": {
			input:   strings.Replace(iaS3, "  name: s3\n", "  labels: {a: b}\n", 1),
			wantErr: []string{"document 1 (IdentityAssociation)", "metadata.name: Required value"},
		},
		"attachment without a name": {
			input:   strings.Replace(raACR, "  name: acr\n", "  labels: {a: b}\n", 1),
			wantErr: []string{"metadata.name: Required value"},
		},
		"namespace without a name": {
			input:   "apiVersion: v1\nkind: Namespace\nmetadata: {}\n",
			wantErr: []string{"metadata.name: Required value"},
		},
		"service account without a name": {
			input:   "apiVersion: v1\nkind: ServiceAccount\nmetadata: {namespace: x}\n",
			wantErr: []string{"metadata.name: Required value"},
		},
		"unsupported lanyard.dev kind": {
			input:   "apiVersion: lanyard.dev/v1alpha1\nkind: IdentityBinding\nmetadata: {name: x}\n",
			wantErr: []string{"unsupported kind IdentityBinding in lanyard.dev/v1alpha1", "lanyard knows IdentityAssociation and RegistryAttachment of lanyard.dev/v1alpha1"},
		},
		"unsupported lanyard.dev version": {
			input:   strings.Replace(iaS3, "lanyard.dev/v1alpha1", "lanyard.dev/v1", 1),
			wantErr: []string{"unsupported kind IdentityAssociation in lanyard.dev/v1"},
		},
		"error inside a List names the item": {
			input:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: ok}\n- apiVersion: lanyard.dev/v1alpha1\n  kind: Bogus\n  metadata: {name: b}\n",
			wantErr: []string{"document 1 (List)", "items[1]: unsupported kind Bogus"},
		},
		"invalid object inside a List names the item and field": {
			input:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: ok}\n- " + strings.ReplaceAll(strings.TrimSuffix(strings.Replace(iaS3, "role/", "user/", 1), "\n"), "\n", "\n  ") + "\n",
			wantErr: []string{"document 1 (List)", "items[1]: spec.aws.roleARN"},
		},
		"a List whose items are not objects": {
			input:   "apiVersion: v1\nkind: List\nitems: [1]\n",
			wantErr: []string{"document 1 (List)", "items[0]"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := manifest.NewPolicy()
			err := p.Add(split(t, "policy.yaml", tc.input), "default")
			require.Error(t, err)
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}
			var merr *manifest.Error
			assert.ErrorAs(t, err, &merr)
			assert.Empty(t, p.AllIdentityAssociations(), "nothing invalid is added")
		})
	}
}

func TestPolicyAddReportsEveryDocument(t *testing.T) {
	bad1 := strings.Replace(iaS3, "roleARN:", "rolearn:", 1)
	bad2 := strings.Replace(raACR, "registry:", "registri:", 1)
	p := manifest.NewPolicy()
	err := p.Add(split(t, "p.yaml", bad1+"---\n"+nsPayments+"---\n"+bad2), "default")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p.yaml document 1 (IdentityAssociation s3), line 1")
	assert.Contains(t, err.Error(), "p.yaml document 3 (RegistryAttachment acr), line 18")
	assert.True(t, p.HasNamespace("payments"), "valid documents are still loaded")
}

func TestPolicyAddDuplicateFields(t *testing.T) {
	t.Run("duplicate field in the decoded JSON", func(t *testing.T) {
		doc := &manifest.Document{
			Source: "dup.json", Index: 1, Line: 1,
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "IdentityAssociation", Name: "dup",
			JSON: []byte(`{"apiVersion":"lanyard.dev/v1alpha1","kind":"IdentityAssociation","metadata":{"name":"dup"},` +
				`"spec":{"namespace":"a","namespace":"b","serviceAccountName":"api","aws":{"roleARN":"arn:aws:iam::111122223333:role/x"}}}`),
		}
		p := manifest.NewPolicy()
		err := p.Add([]*manifest.Document{doc}, "default")
		require.Error(t, err)
		assert.Contains(t, err.Error(), `duplicate field "spec.namespace"`)
		assert.Contains(t, err.Error(), "dup.json document 1 (IdentityAssociation dup)")
	})

	for name, input := range map[string]string{
		"duplicate key in YAML": strings.Replace(iaS3, "  aws:\n", "  namespace: other\n  aws:\n", 1),
		"duplicate key in a JSON document": `{"apiVersion":"lanyard.dev/v1alpha1","kind":"IdentityAssociation","metadata":{"name":"dup"},` +
			`"spec":{"namespace":"a","namespace":"b","serviceAccountName":"api","aws":{"roleARN":"arn:aws:iam::111122223333:role/x"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			docs, err := manifest.Split("dup.yaml", []byte(input))
			if err == nil {
				err = manifest.NewPolicy().Add(docs, "default")
			}
			require.Error(t, err, "a key written twice must be an error")
			assert.Contains(t, err.Error(), "namespace")
			assert.Contains(t, err.Error(), "dup.yaml document 1")
		})
	}
}
