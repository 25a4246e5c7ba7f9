package cluster

import (
	"sync"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// associationIndex maps a ServiceAccount (its namespace and name, as the associations' spec holds
// them: no key string is built) to the associations naming it. It replaces
// the informer's own index, which keeps a string set per key (about 380 bytes an association
// against about 100 here). Slices are replaced, never modified in place, so a slice handed out
// stays valid while the index changes.
type associationIndex struct {
	mu    sync.RWMutex
	byKey map[accountKey][]*v1alpha1.IdentityAssociation
}

func newAssociationIndex() *associationIndex {
	return &associationIndex{byKey: map[accountKey][]*v1alpha1.IdentityAssociation{}}
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
		x.removeLocked(associationKey(old), old.Name)
	}
	key := associationKey(ia)
	x.removeLocked(key, ia.Name)
	cur := x.byKey[key]
	next := make([]*v1alpha1.IdentityAssociation, len(cur), len(cur)+1)
	copy(next, cur)
	x.byKey[key] = append(next, ia)
}

func (x *associationIndex) remove(ia *v1alpha1.IdentityAssociation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(associationKey(ia), ia.Name)
}

func (x *associationIndex) removeLocked(key accountKey, name string) {
	cur := x.byKey[key]
	for i, existing := range cur {
		if existing.Name != name {
			continue
		}
		if len(cur) == 1 {
			delete(x.byKey, key)
			return
		}
		next := make([]*v1alpha1.IdentityAssociation, 0, len(cur)-1)
		next = append(append(next, cur[:i]...), cur[i+1:]...)
		x.byKey[key] = next
		return
	}
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
