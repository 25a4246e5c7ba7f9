package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/status"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// FixtureLabel marks the IdentityAssociations Seed creates (they are cluster-scoped: deleting
// the namespace leaves them), with the value FixtureLabelValue.
const (
	FixtureLabel      = "app.kubernetes.io/managed-by"
	FixtureLabelValue = "lanyard-bench"
)

// Seeded counts what Seed created; objects that existed are left as they are.
type Seeded struct {
	ServiceAccounts, Associations int
}

// Seed makes namespace opted in (lanyard.dev/inject=enabled) with ServiceAccounts sa-from …
// sa-(to-1) and one IdentityAssociation each (AWS IRSA, role arn:aws:iam::111122223333:role/sa-i,
// named <namespace>-sa-i), so that lanyard injects every review the load sends, creating with
// workers requests at once (the client's own rate limit applies too). New associations have no
// status: a lanyard started next writes them (WriteStatuses writes them without lanyard).
// Associations go through lanyard's validating webhook if the cluster has it configured: then
// lanyard must be serving.
func Seed(ctx context.Context, c client.Client, namespace string, from, to, workers int) (Seeded, error) {
	if err := optIn(ctx, c, namespace); err != nil {
		return Seeded{}, err
	}
	var sas, ias atomic.Int64
	err := parallel(ctx, from, to, workers, func(i int) error {
		sa, ia, err := seedOne(ctx, c, namespace, i)
		if sa {
			sas.Add(1)
		}
		if ia {
			ias.Add(1)
		}
		return err
	})
	return Seeded{ServiceAccounts: int(sas.Load()), Associations: int(ias.Load())}, err
}

// parallel calls do(i) for i in [from, to) on workers goroutines, stopping at the first error.
func parallel(ctx context.Context, from, to, workers int, do func(int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := do(i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// optIn creates namespace with the injection label, or adds the label.
func optIn(ctx context.Context, c client.Client, namespace string) error {
	ns := &corev1.Namespace{}
	err := c.Get(ctx, client.ObjectKey{Name: namespace}, ns)
	if apierrors.IsNotFound(err) {
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{policy.InjectLabel: policy.InjectEnabled}}}
		return c.Create(ctx, ns)
	}
	if err != nil {
		return err
	}
	if ns.Labels[policy.InjectLabel] == policy.InjectEnabled {
		return nil
	}
	base := ns.DeepCopy()
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[policy.InjectLabel] = policy.InjectEnabled
	return c.Patch(ctx, ns, client.MergeFrom(base))
}

// AssociationName is the name of the association Seed creates for ServiceAccount sa-i.
func AssociationName(namespace string, i int) string {
	return namespace + "-" + ServiceAccountName(i)
}

// seedOne creates ServiceAccount sa-i and its IdentityAssociation; it says which it created.
func seedOne(ctx context.Context, c client.Client, namespace string, i int) (bool, bool, error) {
	name := ServiceAccountName(i)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	saErr := c.Create(ctx, sa)
	if saErr != nil && !apierrors.IsAlreadyExists(saErr) {
		return false, false, fmt.Errorf("ServiceAccount %s/%s: %w", namespace, name, saErr)
	}
	ia := &v1alpha1.IdentityAssociation{
		ObjectMeta: metav1.ObjectMeta{Name: AssociationName(namespace, i), Labels: map[string]string{FixtureLabel: FixtureLabelValue}},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: namespace, ServiceAccountName: name,
			AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/" + name, Mode: v1alpha1.AWSModeIRSA, Region: "us-west-2"}},
	}
	iaErr := c.Create(ctx, ia)
	if iaErr != nil && !apierrors.IsAlreadyExists(iaErr) {
		return saErr == nil, false, fmt.Errorf("IdentityAssociation %s: %w", ia.Name, iaErr)
	}
	return saErr == nil, iaErr == nil, nil
}

// WriteStatuses gives every association Seed made in namespace the status lanyard's status
// reconciler would write (status.Compute: its own code), so that a lanyard started next has
// nothing to catch up. It returns how many it wrote; associations whose status is already that
// are left alone.
func WriteStatuses(ctx context.Context, c client.Client, namespace string, workers int) (int, error) {
	var list v1alpha1.IdentityAssociationList
	if err := c.List(ctx, &list, client.MatchingLabels{FixtureLabel: FixtureLabelValue}); err != nil {
		return 0, err
	}
	claimants := map[string][]*v1alpha1.IdentityAssociation{}
	var mine []*v1alpha1.IdentityAssociation
	for i := range list.Items {
		ia := &list.Items[i]
		if ia.Spec.Namespace != namespace {
			continue
		}
		key := ia.Spec.ServiceAccountName
		claimants[key] = append(claimants[key], ia)
		mine = append(mine, ia)
	}
	var written atomic.Int64
	err := parallel(ctx, 0, len(mine), workers, func(i int) error {
		ia := mine[i]
		desired := status.Compute(ia, claimants[ia.Spec.ServiceAccountName], true)
		if equality.Semantic.DeepEqual(ia.Status, desired) {
			return nil
		}
		patch := client.MergeFrom(ia.DeepCopy())
		ia.Status = desired
		// An update costs the API server a fifth less than a patch; one that conflicts (a lanyard
		// wrote the status since the list) is sent again as a patch.
		err := c.Status().Update(ctx, ia)
		if apierrors.IsConflict(err) {
			err = c.Status().Patch(ctx, ia, patch)
		}
		if err != nil {
			return fmt.Errorf("status of IdentityAssociation %s: %w", ia.Name, err)
		}
		written.Add(1)
		return nil
	})
	return int(written.Load()), err
}
