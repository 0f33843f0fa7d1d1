// Package bootstrap creates the shared secrets of a Flint installation
// when they are missing: the control token (manager ↔ gateways), the MCP
// session keys (shared by every gateway) and the gateway token (gateways ↔
// sidecars). The manager does it at start-up rather than the Helm chart
// rendering them, because a render cannot keep a random value: `helm
// template`, Argo CD and Flux render without access to the cluster, so
// every render would make new secrets and pods would disagree. Created
// once, a Secret is never changed by Flint again; operators rotate it.
package bootstrap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the data in each Secret; the chart mounts them as files.
const (
	TokenKey       = "token" // control and gateway tokens: one secret
	SessionKeysKey = "keys"  // session keys: one per line, the first seals
	APIKeysKey     = "keys"  // API keys: one per line
)

// Secret is one Secret to make sure of.
type Secret struct {
	Name string
	Key  string
	// Generate makes the initial value.
	Generate func() []byte
}

// Token is a random secret of 52 base32 characters (260 bits), for the
// control and gateway tokens.
func Token() []byte { return []byte(rand.Text() + rand.Text()) }

// APIKey is an initial API key file for the gateways: one random key.
func APIKey() []byte { return append(Token(), '\n') }

// SessionKeys is an initial session key file: one random secret with a
// comment on how to rotate it.
func SessionKeys() []byte {
	return []byte("# MCP session keys: the first line seals, every line opens. To rotate, add a new\n" +
		"# first line, and drop the old one once its sessions are over (docs/operations.md).\n" +
		rand.Text() + rand.Text() + "\n")
}

// Ensure returns the value of s in namespace, creating the Secret with a
// generated value when it does not exist. An existing Secret is never
// changed: when it lacks s.Key, the error says what to fix. Several
// manager replicas starting at once are fine: the losers of the create
// read the winner's value.
func Ensure(ctx context.Context, c client.Client, namespace string, s Secret, labels map[string]string) ([]byte, error) {
	key := client.ObjectKey{Namespace: namespace, Name: s.Name}
	for range 2 {
		var existing corev1.Secret
		err := c.Get(ctx, key, &existing)
		if err == nil {
			v := existing.Data[s.Key]
			if len(strings.TrimSpace(string(v))) == 0 {
				return nil, fmt.Errorf("secret %s has no %q value: add it, or delete the Secret so the manager creates one", key, s.Key)
			}
			return v, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read secret %s: %w", key, err)
		}
		value := s.Generate()
		created := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: s.Name, Labels: labels},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{s.Key: value},
			// Immutable would block rotation; the manager just never writes it.
		}
		err = c.Create(ctx, created)
		if err == nil {
			return value, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create secret %s: %w", key, err)
		}
		// Another manager replica created it first: read theirs.
	}
	return nil, errors.New("secret " + key.String() + " was created and deleted while reading it; restart to retry")
}
