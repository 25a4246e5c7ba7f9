package certs

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	day      = 24 * time.Hour
	caLife   = 360 * day
	leafLife = 90 * day
)

var testNames = ServiceNames("lanyard-webhook", "lanyard-system")

func testPolicy() Policy {
	return Policy{CALifetime: caLife, LeafLifetime: leafLife, PropagationDelay: time.Minute, Names: testNames}
}

// material issues a CA at caAt and a leaf signed by it at leafAt.
func material(t *testing.T, caAt, leafAt time.Time) *Material {
	t.Helper()
	ca, err := NewCA(caAt, caLife)
	require.NoError(t, err)
	leaf, err := IssueServing(ca, testNames, leafAt, leafLife)
	require.NoError(t, err)
	return &Material{CA: ca, Leaf: leaf, Bundle: []*x509.Certificate{ca.Cert}}
}

func TestDecide(t *testing.T) {
	p := testPolicy()
	// backdated by a minute: two thirds of (90 d + 1 min) after t0 - 1 min.
	leafRenew := t0.Add(-time.Minute).Add((leafLife + time.Minute) * 2 / 3)
	caRenew := t0.Add(-time.Minute).Add((caLife + time.Minute) * 2 / 3)
	tests := map[string]struct {
		now            time.Time
		material       func(t *testing.T) *Material
		published      time.Duration // since CA publication, when set
		wantCA         bool
		wantLeaf       bool
		wantNextBefore time.Time
	}{
		"nothing yet: a CA and a leaf": {
			now: t0, material: func(*testing.T) *Material { return &Material{} }, wantCA: true, wantLeaf: true,
		},
		"just before two thirds of the leaf's life: nothing, look again at two thirds": {
			now: leafRenew.Add(-time.Second), material: func(t *testing.T) *Material { return material(t, t0, t0) },
			wantNextBefore: leafRenew.Add(time.Nanosecond),
		},
		"at two thirds of the leaf's life: a new leaf": {
			now: leafRenew, material: func(t *testing.T) *Material { return material(t, t0, t0) }, wantLeaf: true,
		},
		"after the leaf expired: a new leaf": {
			now: t0.Add(leafLife + time.Hour), material: func(t *testing.T) *Material { return material(t, t0, t0) }, wantLeaf: true,
		},
		"just before two thirds of the CA's life: nothing": {
			now: caRenew.Add(-time.Second), material: func(t *testing.T) *Material { return material(t, t0, caRenew.Add(-day)) },
		},
		"at two thirds of the CA's life: a new CA, the served leaf stays until the CA is trusted": {
			now: caRenew, material: func(t *testing.T) *Material { return material(t, t0, caRenew.Add(-day)) }, wantCA: true,
		},
		"a CA that would expire before a new leaf: a new CA": {
			now: t0.Add(caLife - leafLife + time.Hour), material: func(t *testing.T) *Material {
				m := material(t, t0, t0.Add(caLife-leafLife))
				return m
			}, wantCA: true,
		},
		"the served leaf's names differ: a new leaf": {
			now: t0.Add(day), material: func(t *testing.T) *Material {
				m := material(t, t0, t0)
				var err error
				m.Leaf, err = IssueServing(m.CA, []string{"other"}, t0, leafLife)
				require.NoError(t, err)
				return m
			}, wantLeaf: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := tc.material(t)
			var since time.Time
			if tc.published != 0 {
				since = tc.now.Add(-tc.published)
			}
			plan := p.Decide(m, tc.now, since)
			assert.Equal(t, tc.wantCA, plan.NewCA, "new CA: %v", plan.Reasons)
			assert.Equal(t, tc.wantLeaf, plan.NewLeaf, "new leaf: %v", plan.Reasons)
			assert.True(t, plan.Next.After(tc.now), "next %s after now", plan.Next)
			if !tc.wantNextBefore.IsZero() {
				assert.True(t, plan.Next.Before(tc.wantNextBefore), "next %s before %s", plan.Next, tc.wantNextBefore)
			}
		})
	}
}

// A CA rotation: the new CA joins the bundle beside the old; the served leaf (signed by the old)
// is replaced only once every configuration has trusted the new CA for the propagation delay; the
// old CA leaves the bundle only after it expired, when every leaf it signed has expired too.
func TestCARotationOverlap(t *testing.T) {
	p := testPolicy()
	old := material(t, t0, t0.Add(200*day)) // a leaf still valid when the CA is replaced
	next, err := NewCA(t0.Add(240*day), caLife)
	require.NoError(t, err)
	m := &Material{CA: next, Leaf: old.Leaf, Bundle: []*x509.Certificate{old.CA.Cert, next.Cert}}
	now := t0.Add(240 * day)

	plan := p.Decide(m, now, time.Time{})
	assert.False(t, plan.NewLeaf, "not before the new CA is published")
	assert.Len(t, plan.Bundle, 2)

	plan = p.Decide(m, now, now.Add(-30*time.Second))
	assert.False(t, plan.NewLeaf, "not within the propagation delay")
	assert.True(t, plan.Next.Before(now.Add(31*time.Second)), "look again when the delay is over")

	plan = p.Decide(m, now, now.Add(-time.Minute))
	assert.True(t, plan.NewLeaf, "once the new CA has been trusted long enough")
	assert.Len(t, plan.Bundle, 2, "the old CA stays while a leaf it signed may be valid")

	leaf, err := IssueServing(next, testNames, now, leafLife)
	require.NoError(t, err)
	m.Leaf = leaf
	beforeExpiry := old.CA.Cert.NotAfter.Add(-time.Second)
	plan = p.Decide(m, beforeExpiry, now)
	assert.Len(t, plan.Bundle, 2, "the old CA stays until it expires")
	plan = p.Decide(m, old.CA.Cert.NotAfter, now)
	require.Len(t, plan.Bundle, 1, "pruned once expired")
	assert.True(t, plan.Bundle[0].Equal(next.Cert))
}

func TestSecretRoundTrip(t *testing.T) {
	m := material(t, t0, t0)
	back := FromSecretData(m.SecretData())
	assert.Empty(t, back.Problems)
	assert.True(t, back.CA.Cert.Equal(m.CA.Cert))
	assert.True(t, back.Leaf.Cert.Equal(m.Leaf.Cert))
	require.Len(t, back.Bundle, 1)
	assert.True(t, back.Bundle[0].Equal(m.CA.Cert))
}

// Whatever a damaged or foreign Secret holds, parsing names the problem and never fails; the plan
// then repairs what is unusable.
func TestDamagedSecretIsRepaired(t *testing.T) {
	good := material(t, t0, t0)
	other := material(t, t0, t0)
	data := func(edit func(map[string][]byte)) map[string][]byte {
		d := good.SecretData()
		edit(d)
		return d
	}
	tests := map[string]struct {
		data                   map[string][]byte
		wantProblem            string
		wantNewCA, wantNewLeaf bool
	}{
		"empty": {data: map[string][]byte{}, wantProblem: "empty", wantNewCA: true, wantNewLeaf: true},
		"foreign keys only": {data: map[string][]byte{"password": []byte("x")}, wantProblem: "ca.crt/ca.key",
			wantNewCA: true, wantNewLeaf: true},
		"bad PEM in the leaf": {data: data(func(d map[string][]byte) { d[KeyServingCert] = []byte("not pem") }),
			wantProblem: "tls.crt/tls.key", wantNewLeaf: true},
		"a leaf key that is not the leaf's": {data: data(func(d map[string][]byte) { d[KeyServingKey] = other.Leaf.KeyPEM }),
			wantProblem: "does not belong", wantNewLeaf: true},
		"a CA key that is not the CA's": {data: data(func(d map[string][]byte) { d[KeyCAKey] = other.CA.KeyPEM }),
			wantProblem: "does not belong", wantNewCA: true},
		"a leaf where the CA should be": {data: data(func(d map[string][]byte) {
			d[KeyCACert], d[KeyCAKey] = good.Leaf.CertPEM, good.Leaf.KeyPEM
		}), wantProblem: "not a CA", wantNewCA: true},
		"no bundle": {data: data(func(d map[string][]byte) { delete(d, KeyCABundle) }), wantProblem: "ca-bundle.crt is missing"},
		"a leaf signed by a CA that is not trusted": {data: data(func(d map[string][]byte) {
			d[KeyServingCert], d[KeyServingKey] = other.Leaf.CertPEM, other.Leaf.KeyPEM
		}), wantNewLeaf: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := FromSecretData(tc.data)
			if tc.wantProblem != "" {
				assert.Contains(t, joinProblems(m), tc.wantProblem)
			}
			plan := testPolicy().Decide(m, t0.Add(day), time.Time{})
			assert.Equal(t, tc.wantNewCA, plan.NewCA, "%v", plan.Reasons)
			assert.Equal(t, tc.wantNewLeaf, plan.NewLeaf, "%v", plan.Reasons)
		})
	}
}

func joinProblems(m *Material) string {
	out := ""
	for _, p := range m.Problems {
		out += p + "\n"
	}
	return out
}

func TestPolicyValidate(t *testing.T) {
	tests := map[string]struct {
		p       Policy
		wantErr string
	}{
		"defaults are valid":               {p: testPolicy()},
		"a leaf shorter than 10s":          {p: Policy{CALifetime: time.Hour, LeafLifetime: time.Second, Names: testNames}, wantErr: "at least 10s"},
		"a CA shorter than two leaves":     {p: Policy{CALifetime: day, LeafLifetime: day, Names: testNames}, wantErr: "twice"},
		"a delay beyond a third of a leaf": {p: Policy{CALifetime: 4 * day, LeafLifetime: day, PropagationDelay: 9 * time.Hour, Names: testNames}, wantErr: "propagation delay"},
		"no names":                         {p: Policy{CALifetime: 4 * day, LeafLifetime: day}, wantErr: "at least one name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
