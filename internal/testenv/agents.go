package testenv

import (
	"context"
	"testing"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// UpdateAgent changes agent ns/name the way a user would: read, mutate,
// write, and again from a fresh read when the manager wrote to it in
// between (its status writes, lastInvocationAt under load, change the
// resource version a plain Get-then-Update holds).
func UpdateAgent(t testing.TB, c client.Client, ns, name string, mutate func(*v1alpha1.Agent)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var a v1alpha1.Agent
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &a); err != nil {
			return err
		}
		mutate(&a)
		return c.Update(context.Background(), &a)
	})
	if err != nil {
		t.Fatalf("update agent %s/%s: %v", ns, name, err)
	}
}
