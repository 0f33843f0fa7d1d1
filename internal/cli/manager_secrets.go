package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/internal/bootstrap"
	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/secret"
)

// managerSecrets names the shared Secrets the manager creates at start-up
// when they are missing (package bootstrap says why the manager and not
// the chart). Gateways mount them; the manager reads them from the API,
// since a pod cannot mount a Secret that its own start creates.
type managerSecrets struct {
	Namespace    string
	ControlToken string
	SessionKeys  string
	GatewayToken string
	APIKeys      string
	APIKeysKey   string

	// The tokens, read or created at start-up, then followed through the
	// API (the manager does not mount them): a rotation written to the
	// Secret reaches the manager within reload.Interval.
	controlToken, gatewayToken *reload.Value[secret.Tokens]
}

func (s *managerSecrets) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Namespace, "secret-namespace", os.Getenv("POD_NAMESPACE"), "`namespace` of the Secrets below (default: $POD_NAMESPACE)")
	fs.StringVar(&s.ControlToken, "control-token-secret", "", "`name` of a Secret (key "+bootstrap.TokenKey+") with the control token, created with a random token when missing; used when -control-token-file is empty")
	fs.StringVar(&s.SessionKeys, "session-key-secret", "", "`name` of a Secret (key "+bootstrap.SessionKeysKey+") with the gateways' MCP session keys, created with a random key when missing")
	fs.StringVar(&s.APIKeys, "api-keys-secret", "", "`name` of a Secret with the gateways' API keys (one per line, key -api-keys-secret-key), created with one random key when missing")
	fs.StringVar(&s.APIKeysKey, "api-keys-secret-key", bootstrap.APIKeysKey, "`key` of the API keys in -api-keys-secret")
	fs.StringVar(&s.GatewayToken, "gateway-token-secret", "", "`name` of a Secret (key "+bootstrap.TokenKey+") with the token gateways present to sidecars, created with a random token when missing")
}

func (s *managerSecrets) any() bool {
	return s.ControlToken != "" || s.SessionKeys != "" || s.GatewayToken != "" || s.APIKeys != ""
}

// ensure creates the missing Secrets and keeps the values the manager uses.
func (s *managerSecrets) ensure(ctx context.Context, restCfg *rest.Config, log *slog.Logger) error {
	if !s.any() {
		return nil
	}
	if s.Namespace == "" {
		return fmt.Errorf("-control-token-secret, -session-key-secret, -gateway-token-secret and -api-keys-secret need -secret-namespace (or $POD_NAMESPACE)")
	}
	c, err := client.New(restCfg, client.Options{})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "flint", "app.kubernetes.io/created-by": "flint-manager"}
	for _, want := range []struct {
		name  string
		s     bootstrap.Secret
		value **reload.Value[secret.Tokens]
		what  string // names the token in logs, as the gateways name it
	}{
		{s.ControlToken, bootstrap.Secret{Name: s.ControlToken, Key: bootstrap.TokenKey, Generate: bootstrap.Token}, &s.controlToken, "control token"},
		{s.SessionKeys, bootstrap.Secret{Name: s.SessionKeys, Key: bootstrap.SessionKeysKey, Generate: bootstrap.SessionKeys}, nil, ""},
		{s.GatewayToken, bootstrap.Secret{Name: s.GatewayToken, Key: bootstrap.TokenKey, Generate: bootstrap.Token}, &s.gatewayToken, "gateway token"},
		{s.APIKeys, bootstrap.Secret{Name: s.APIKeys, Key: s.APIKeysKey, Generate: bootstrap.APIKey}, nil, ""},
	} {
		if want.name == "" {
			continue
		}
		v, err := bootstrap.Ensure(ctx, c, s.Namespace, want.s, labels)
		if err != nil {
			return err
		}
		if want.value != nil {
			where := "Secret " + s.Namespace + "/" + want.name
			name, first := want.name, v // the value Ensure just read starts it
			read := func() ([]byte, error) {
				if first != nil {
					b := first
					first = nil
					return b, nil
				}
				return readSecretKey(c, s.Namespace, name, bootstrap.TokenKey)
			}
			tokens, err := reload.New(want.what, where, read,
				func(b []byte) (secret.Tokens, error) { return secret.ParseTokens(b, want.what+" in "+where) }, log)
			if err != nil {
				return err
			}
			*want.value = tokens
		}
		log.Info("shared secret ready", "secret", s.Namespace+"/"+want.name)
	}
	return nil
}

// readSecretKey reads one key of a Secret through the API, for reload.
func readSecretKey(c client.Client, namespace, name, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sec); err != nil {
		return nil, err
	}
	v, ok := sec.Data[key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s has no key %q", namespace, name, key)
	}
	return v, nil
}
