package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/servingcert"
)

// The sidecars' CA lives in a Secret in the manager's namespace. The
// manager creates it when missing and never replaces it, so a restart, an
// upgrade or a second manager replica issues from the same CA; an operator
// may put a CA of their own there instead (tls.crt, tls.key). Its
// certificate, never its key, is published in a ConfigMap for the gateways,
// together with every earlier CA certificate still valid, so that when the
// CA is replaced the gateways trust both until the last certificate of the
// old one has been renewed (docs/manager.md, "Sidecar TLS").
//
// Secrets and ConfigMaps are read from the API server, not a cache: a cache
// would watch every Secret in the cluster. The CA is read again every
// secretRecheck, which is how a replaced or deleted CA is noticed.

// loadedCA is the CA and the bundle published with it.
type loadedCA struct {
	ca         *servingcert.CA
	bundle     []byte
	bundleHash string
	roots      *x509.CertPool
	loaded     time.Time
}

// caStore loads the CA once per secretRecheck for every reconcile.
type caStore struct {
	cfg    SidecarTLSConfig
	reader func() client.Reader
	writer client.Writer

	mu      sync.Mutex
	current *loadedCA
}

// load returns the CA, creating its Secret and publishing its bundle
// when needed.
func (s *caStore) load(ctx context.Context, now time.Time) (*loadedCA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.current; c != nil && now.Sub(c.loaded) < secretRecheck {
		return c, nil
	}
	ca, err := s.loadOrCreate(ctx, now)
	if err != nil {
		return nil, err
	}
	bundle, err := s.publish(ctx, ca, now)
	if err != nil {
		return nil, err
	}
	roots, err := servingcert.Pool(bundle)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bundle)
	s.current = &loadedCA{ca: ca, bundle: bundle, bundleHash: hex.EncodeToString(sum[:8]), roots: roots, loaded: now}
	return s.current, nil
}

func (s *caStore) loadOrCreate(ctx context.Context, now time.Time) (*servingcert.CA, error) {
	nn := types.NamespacedName{Namespace: s.cfg.Namespace, Name: s.cfg.CASecret}
	var secret corev1.Secret
	err := s.reader().Get(ctx, nn, &secret)
	if apierrors.IsNotFound(err) {
		ca, err := servingcert.NewCA("flint sidecar CA", now, servingcert.DefaultCALifetime)
		if err != nil {
			return nil, err
		}
		secret = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name,
				Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: ca.CertPEM, corev1.TLSPrivateKeyKey: ca.KeyPEM},
		}
		// Create, never apply: of two managers racing, one wins and the
		// other reads the winner's CA.
		err = s.writer.Create(ctx, &secret)
		if err == nil {
			log.FromContext(ctx).Info("created the sidecar CA", "secret", nn.String(), "fingerprint", ca.Fingerprint(),
				"expires", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create the sidecar CA Secret %s: %w (the manager needs create on secrets in its namespace for -sidecar-tls)", nn, err)
		}
		err = s.reader().Get(ctx, nn, &secret)
	}
	if err != nil {
		return nil, fmt.Errorf("get the sidecar CA Secret %s: %w (the manager needs get on secrets in its namespace for -sidecar-tls)", nn, err)
	}
	ca, err := servingcert.ParseCA(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("the sidecar CA Secret %s: %w (put an ECDSA CA in tls.crt and tls.key, or delete the Secret and the manager makes a new CA)", nn, err)
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("the sidecar CA in Secret %s expired at %s: replace it (docs/manager.md, \"Sidecar TLS\")", nn, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ca, nil
}

// publish writes the CA bundle ConfigMap when it lacks the CA or holds an
// expired certificate, and returns the bundle.
func (s *caStore) publish(ctx context.Context, ca *servingcert.CA, now time.Time) ([]byte, error) {
	nn := types.NamespacedName{Namespace: s.cfg.Namespace, Name: s.cfg.CABundle}
	var cm corev1.ConfigMap
	err := s.reader().Get(ctx, nn, &cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get the sidecar CA bundle ConfigMap %s: %w (the manager needs get on configmaps in its namespace for -sidecar-tls)", nn, err)
	}
	found := err == nil
	old := []byte(cm.Data[CABundleKey])
	bundle := servingcert.Bundle(ca.Cert, old, now)
	if found && bytes.Equal(bundle, old) {
		return bundle, nil
	}
	cm.Namespace, cm.Name = nn.Namespace, nn.Name
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[CABundleKey] = string(bundle)
	if found {
		err = s.writer.Update(ctx, &cm) // resourceVersion guards a concurrent edit
	} else {
		err = s.writer.Create(ctx, &cm)
	}
	if err != nil {
		return nil, fmt.Errorf("publish the sidecar CA bundle in ConfigMap %s: %w (the manager needs create/update on configmaps in its namespace for -sidecar-tls)", nn, err)
	}
	log.FromContext(ctx).Info("published the sidecar CA bundle", "configmap", nn.String(), "fingerprint", ca.Fingerprint())
	return bundle, nil
}

// caBootstrap creates the CA and publishes the bundle when the manager
// starts, on every replica (creating is race-free), rather than on the
// first Agent's reconcile: the gateways mount the bundle ConfigMap and
// cannot start before it exists, Agents or not.
type caBootstrap struct{ r *Reconciler }

// Start retries until the CA and bundle are in place or ctx ends.
func (b caBootstrap) Start(ctx context.Context) error {
	wait := time.Second
	for {
		_, err := b.r.ca.load(ctx, b.r.now())
		if err == nil || ctx.Err() != nil {
			return nil
		}
		log.FromContext(ctx).Error(err, "cannot set up the sidecar CA; retrying", "in", wait.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica may bootstrap.
func (caBootstrap) NeedLeaderElection() bool { return false }
