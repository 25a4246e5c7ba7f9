package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/bench/loadgen"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

// seed is -seed: loadgen.Seed on the cluster of kubeconfig (the dev cluster). Its associations go
// through lanyard's validating webhook there: lanyard must be serving.
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
	created, err := loadgen.Seed(ctx, c, namespace, 0, n, 16)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seeded namespace %s (lanyard.dev/inject=enabled): %d ServiceAccounts and %d IdentityAssociations created (of %d; the rest existed) in %s\n",
		namespace, created.ServiceAccounts, created.Associations, n, time.Since(start).Round(100*time.Millisecond))
	return nil
}
