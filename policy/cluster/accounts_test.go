package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/policy"
)

func accountMeta(namespace, name string, created time.Time, annotations map[string]string) *metav1.PartialObjectMetadata {
	m := serviceAccountMeta()
	m.Namespace, m.Name, m.UID, m.ResourceVersion = namespace, name, types.UID("uid-"+name), "17"
	m.CreationTimestamp = metav1.NewTime(created)
	m.Annotations = annotations
	m.Labels = map[string]string{"app": name}
	return m
}

// changeLog records what an accountStore listener heard.
type changeLog struct {
	mu   sync.Mutex
	keys []string
}

func (c *changeLog) record(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, namespace+"/"+name)
}

func (c *changeLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.keys
	c.keys = nil
	return out
}

func TestAccountStoreKeepsWhatResolutionReads(t *testing.T) {
	s := newAccountStore("")
	createdAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	require.NoError(t, s.Add(accountMeta("team-a", "web", createdAt, map[string]string{
		policy.EKSRoleARN: roleARN, lastApplied: `{"big":"object"}`, "team": "payments",
	})))
	require.NoError(t, s.Add(accountMeta("team-a", "plain", createdAt, nil)))

	m, ok := s.lookup("team-a", "web")
	require.True(t, ok)
	assert.Equal(t, "web", m.Name)
	assert.Equal(t, "team-a", m.Namespace)
	assert.Equal(t, map[string]string{policy.EKSRoleARN: roleARN}, m.Annotations, "only compat annotations are kept")
	assert.True(t, m.CreationTimestamp.Equal(&metav1.Time{Time: createdAt}), "creation time kept: %v", m.CreationTimestamp)
	assert.Empty(t, m.Labels)
	assert.Empty(t, m.UID)

	m, ok = s.lookup("team-a", "plain")
	require.True(t, ok)
	assert.Nil(t, m.Annotations, "a ServiceAccount without compat annotations holds no map")

	_, ok = s.lookup("team-b", "web")
	assert.False(t, ok, "another namespace's ServiceAccount of the same name is not this one")
}

func TestAccountStoreUnknownCreationTimeStaysZero(t *testing.T) {
	s := newAccountStore("")
	require.NoError(t, s.Add(accountMeta("team-a", "web", time.Time{}, nil)))
	m, ok := s.lookup("team-a", "web")
	require.True(t, ok)
	assert.True(t, m.CreationTimestamp.IsZero())
}

func TestAccountStoreKeepsEKSAnnotationsUnderTheConfiguredPrefix(t *testing.T) {
	s := newAccountStore("eks.example.com")
	require.NoError(t, s.Add(accountMeta("team-a", "web", time.Now(), map[string]string{
		"eks.example.com/role-arn": roleARN, policy.EKSRoleARN: "arn:aws:iam::111122223333:role/other",
	})))
	m, ok := s.lookup("team-a", "web")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"eks.example.com/role-arn": roleARN}, m.Annotations)
}

func TestAccountStoreTellsListenersWhatAppearedAndWent(t *testing.T) {
	s := newAccountStore("")
	var heard changeLog
	stop := s.onChange(heard.record)
	now := time.Now()

	// The first list: the status reconciler reconciles every association on start anyway.
	require.NoError(t, s.Replace([]any{accountMeta("a", "one", now, nil), accountMeta("a", "two", now, nil)}, "10"))
	assert.True(t, s.synced.Load())
	assert.Empty(t, heard.take())

	require.NoError(t, s.Add(accountMeta("a", "three", now, nil)))
	assert.Equal(t, []string{"a/three"}, heard.take())
	require.NoError(t, s.Update(accountMeta("a", "three", now, map[string]string{policy.EKSRoleARN: roleARN})))
	assert.Empty(t, heard.take(), "an update of a known ServiceAccount changes no condition")
	m, _ := s.lookup("a", "three")
	assert.Equal(t, roleARN, m.Annotations[policy.EKSRoleARN], "updates are kept")

	require.NoError(t, s.Delete(toolscache.DeletedFinalStateUnknown{Key: "a/one", Obj: accountMeta("a", "one", now, nil)}))
	assert.Equal(t, []string{"a/one"}, heard.take())
	require.NoError(t, s.Delete(accountMeta("a", "gone-already", now, nil)))
	assert.Empty(t, heard.take())

	// A relist after a broken watch: "two" went, "four" came, "three" stayed.
	require.NoError(t, s.Replace([]any{accountMeta("a", "three", now, nil), accountMeta("a", "four", now, nil)}, "20"))
	assert.ElementsMatch(t, []string{"a/two", "a/four"}, heard.take())
	_, ok := s.lookup("a", "two")
	assert.False(t, ok)
	assert.Equal(t, 2, s.len())

	stop()
	require.NoError(t, s.Add(accountMeta("a", "five", now, nil)))
	assert.Empty(t, heard.take(), "a stopped listener hears nothing")
}

func TestAccountStoreRefusesOtherObjects(t *testing.T) {
	s := newAccountStore("")
	err := s.Add("not an object")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "string")
}

func TestAccountStoreLookupAllocatesOnlyTheAnswer(t *testing.T) {
	s := newAccountStore("")
	for i := range 100 {
		require.NoError(t, s.Add(accountMeta("team-a", fmt.Sprintf("sa-%d", i), time.Now(), nil)))
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := s.lookup("team-a", "sa-42"); !ok {
			t.Fatal("missing")
		}
	})
	assert.LessOrEqual(t, allocs, 1.0, "no key string is built per lookup")
}
