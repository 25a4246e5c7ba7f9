package cluster

import (
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// associationIndex maps a ServiceAccount (its namespace and name, as the associations' spec holds
// them: no key string is built) to the associations naming it exactly. It replaces
// the informer's own index, which keeps a string set per key (about 380 bytes an association
// against about 100 here). Slices are replaced, never modified in place, so a slice handed out
// stays valid while the index changes.
//
// Associations with a broad subject are kept apart, so that the exact lookup stays one map access,
// and indexed so that a pod's candidates are found without looking at every broad association:
// those with an exact namespace and a name glob by namespace (byNamespace); namespace globs by the
// literal text before their '*' (byPrefix: a namespace looks up each of its prefixes), or when
// that is empty by the text after it (bySuffix: each of its suffixes; "*" alone is byPrefix[""]);
// namespaceSelectors with matchLabels by one of their key=value pairs (byLabel: a namespace looks up
// each of its labels); other selectors in a list (selectorsRest). They are matched per pod only when
// no exact association names the ServiceAccount; patterns lists every namespace glob and selector.
type associationIndex struct {
	mu            sync.RWMutex
	byKey         map[accountKey][]*v1alpha1.IdentityAssociation
	byNamespace   map[string][]*v1alpha1.IdentityAssociation
	byPrefix      map[string][]*v1alpha1.IdentityAssociation
	bySuffix      map[string][]*v1alpha1.IdentityAssociation
	byLabel       map[labelPair][]*v1alpha1.IdentityAssociation
	selectorsRest []*v1alpha1.IdentityAssociation
	patterns      []*v1alpha1.IdentityAssociation
}

// labelPair is one key=value of a namespace or a selector's matchLabels.
type labelPair struct{ key, value string }

func newAssociationIndex() *associationIndex {
	return &associationIndex{byKey: map[accountKey][]*v1alpha1.IdentityAssociation{},
		byNamespace: map[string][]*v1alpha1.IdentityAssociation{}, byPrefix: map[string][]*v1alpha1.IdentityAssociation{},
		bySuffix: map[string][]*v1alpha1.IdentityAssociation{}, byLabel: map[labelPair][]*v1alpha1.IdentityAssociation{}}
}

// selectorPair is the matchLabels pair a selector is indexed by (the smallest key), or false.
func selectorPair(sel *metav1.LabelSelector) (labelPair, bool) {
	if len(sel.MatchLabels) == 0 {
		return labelPair{}, false
	}
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	k := slices.Min(keys)
	return labelPair{k, sel.MatchLabels[k]}, true
}

// globBucket is where a namespace glob is indexed: its prefix, else its suffix.
func (x *associationIndex) globBucket(pattern string) (map[string][]*v1alpha1.IdentityAssociation, string) {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	if prefix == "" && suffix != "" {
		return x.bySuffix, suffix
	}
	return x.byPrefix, prefix
}

// broad returns the associations with a broad subject that may match ServiceAccounts of namespace,
// whose labels are nsLabels (known false: not cached, then every selector is a candidate).
func (x *associationIndex) broad(namespace string, nsLabels map[string]string, known bool) []*v1alpha1.IdentityAssociation {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []*v1alpha1.IdentityAssociation
	out = append(out, x.byNamespace[namespace]...)
	if len(x.byPrefix) > 0 {
		for i := 0; i <= len(namespace); i++ {
			out = append(out, x.byPrefix[namespace[:i]]...)
		}
	}
	if len(x.bySuffix) > 0 {
		for i := 0; i < len(namespace); i++ {
			out = append(out, x.bySuffix[namespace[i:]]...)
		}
	}
	if !known {
		for _, ia := range x.patterns {
			if ia.Spec.NamespaceSelector != nil {
				out = append(out, ia)
			}
		}
		return out
	}
	out = append(out, x.selectorsRest...)
	if len(x.byLabel) > 0 {
		for k, v := range nsLabels {
			out = append(out, x.byLabel[labelPair{k, v}]...)
		}
		out = append(out, x.byLabel[labelPair{v1alpha1.NamespaceNameLabel, namespace}]...)
	}
	return out
}

// hasBroad reports whether any association has a broad subject: most clusters have none, and
// their pods need no namespace lookup for them.
func (x *associationIndex) hasBroad() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byNamespace) > 0 || len(x.patterns) > 0
}

// namespacePatterns returns the associations whose namespace is a glob or a selector.
func (x *associationIndex) namespacePatterns() []*v1alpha1.IdentityAssociation {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.patterns
}

func associationKey(ia *v1alpha1.IdentityAssociation) accountKey {
	return accountKey{ia.Spec.Namespace, ia.Spec.ServiceAccountName}
}

func (x *associationIndex) get(namespace, serviceAccount string) []*v1alpha1.IdentityAssociation {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byKey[accountKey{namespace, serviceAccount}]
}

// upsert records ia, first removing the version old (nil on add) from wherever it was.
func (x *associationIndex) upsert(old, ia *v1alpha1.IdentityAssociation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil {
		x.removeAnyLocked(old)
	}
	x.removeAnyLocked(ia)
	switch {
	case ia.Spec.NamespacePattern():
		x.patterns = appendCopy(x.patterns, ia)
		if sel := ia.Spec.NamespaceSelector; sel == nil {
			bucket, k := x.globBucket(ia.Spec.Namespace)
			bucket[k] = appendCopy(bucket[k], ia)
		} else if pair, ok := selectorPair(sel); ok {
			x.byLabel[pair] = appendCopy(x.byLabel[pair], ia)
		} else {
			x.selectorsRest = appendCopy(x.selectorsRest, ia)
		}
	case v1alpha1.IsGlob(ia.Spec.ServiceAccountName):
		x.byNamespace[ia.Spec.Namespace] = appendCopy(x.byNamespace[ia.Spec.Namespace], ia)
	default:
		key := associationKey(ia)
		x.byKey[key] = appendCopy(x.byKey[key], ia)
	}
}

func appendCopy(cur []*v1alpha1.IdentityAssociation, ia *v1alpha1.IdentityAssociation) []*v1alpha1.IdentityAssociation {
	next := make([]*v1alpha1.IdentityAssociation, len(cur), len(cur)+1)
	copy(next, cur)
	return append(next, ia)
}

func (x *associationIndex) remove(ia *v1alpha1.IdentityAssociation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeAnyLocked(ia)
}

// removeAnyLocked removes the association named like ia from where ia's subject puts it.
func (x *associationIndex) removeAnyLocked(ia *v1alpha1.IdentityAssociation) {
	switch {
	case ia.Spec.NamespacePattern():
		x.patterns = withoutName(x.patterns, ia.Name)
		if sel := ia.Spec.NamespaceSelector; sel == nil {
			bucket, k := x.globBucket(ia.Spec.Namespace)
			removeFrom(bucket, k, ia.Name)
		} else if pair, ok := selectorPair(sel); ok {
			removeFrom(x.byLabel, pair, ia.Name)
		} else {
			x.selectorsRest = withoutName(x.selectorsRest, ia.Name)
		}
	case v1alpha1.IsGlob(ia.Spec.ServiceAccountName):
		removeFrom(x.byNamespace, ia.Spec.Namespace, ia.Name)
	default:
		removeFrom(x.byKey, associationKey(ia), ia.Name)
	}
}

// removeFrom removes the association called name from m[key], deleting an emptied key.
func removeFrom[K comparable](m map[K][]*v1alpha1.IdentityAssociation, key K, name string) {
	if next := withoutName(m[key], name); len(next) > 0 {
		m[key] = next
	} else {
		delete(m, key)
	}
}

// withoutName returns cur without the association called name (cur itself when absent).
func withoutName(cur []*v1alpha1.IdentityAssociation, name string) []*v1alpha1.IdentityAssociation {
	for i, existing := range cur {
		if existing.Name == name {
			next := make([]*v1alpha1.IdentityAssociation, 0, len(cur)-1)
			return append(append(next, cur[:i]...), cur[i+1:]...)
		}
	}
	return cur
}

// handler keeps the index in step with an informer.
func (x *associationIndex) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if ia, ok := obj.(*v1alpha1.IdentityAssociation); ok {
				x.upsert(nil, ia)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, _ := oldObj.(*v1alpha1.IdentityAssociation)
			if ia, ok := newObj.(*v1alpha1.IdentityAssociation); ok {
				x.upsert(old, ia)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if ia, ok := obj.(*v1alpha1.IdentityAssociation); ok {
				x.remove(ia)
			}
		},
	}
}
