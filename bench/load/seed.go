package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// seed makes namespace opted in (lanyard.dev/inject=enabled) with ServiceAccounts sa-0 …
// sa-(n-1) and one IdentityAssociation each (AWS IRSA, role arn:aws:iam::111122223333:role/sa-i),
// so that lanyard injects every review the load sends. Objects that exist are left as they are.
// IdentityAssociations go through lanyard's validating webhook: lanyard must be serving.
func seed(ctx context.Context, kubeconfig, namespace string, n int) error {
	if kubeconfig == "" {
		return errors.New("-seed needs -kubeconfig")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	scheme, err := cluster.Scheme()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := optIn(ctx, c, namespace); err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		failed  error
		created [2]int
	)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				sa, ia, err := seedOne(ctx, c, namespace, i)
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
				}
				if sa {
					created[0]++
				}
				if ia {
					created[1]++
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		mu.Lock()
		stop := failed != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if failed != nil {
		return failed
	}
	fmt.Fprintf(os.Stderr, "seeded namespace %s (lanyard.dev/inject=enabled): %d ServiceAccounts and %d IdentityAssociations created (of %d; the rest existed) in %s\n",
		namespace, created[0], created[1], n, time.Since(start).Round(100*time.Millisecond))
	return ctx.Err()
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

// seedOne creates ServiceAccount sa-i and its IdentityAssociation; it says which it created.
func seedOne(ctx context.Context, c client.Client, namespace string, i int) (bool, bool, error) {
	name := fmt.Sprintf("sa-%d", i)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	saErr := c.Create(ctx, sa)
	if saErr != nil && !apierrors.IsAlreadyExists(saErr) {
		return false, false, fmt.Errorf("ServiceAccount %s/%s: %w", namespace, name, saErr)
	}
	ia := &v1alpha1.IdentityAssociation{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + "-" + name},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: namespace, ServiceAccountName: name,
			AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/" + name, Mode: v1alpha1.AWSModeIRSA, Region: "us-west-2"}},
	}
	iaErr := c.Create(ctx, ia)
	if iaErr != nil && !apierrors.IsAlreadyExists(iaErr) {
		return saErr == nil, false, fmt.Errorf("IdentityAssociation %s: %w", ia.Name, iaErr)
	}
	return saErr == nil, iaErr == nil, nil
}
