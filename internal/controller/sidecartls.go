package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/servingcert"
)

// Sidecar TLS. With -sidecar-tls the manager keeps a CA in a Secret of its
// own namespace (sidecarca.go), issues each agent a serving certificate for
// its Service's DNS names into a Secret owned by the Agent, mounts it into
// the sidecar only, and renews it at two thirds of its life; the sidecar
// reloads the files when the kubelet refreshes them, so a renewal rolls no
// pod. The gateways dial pod IPs and verify the Service name against the CA
// bundle the manager publishes in a ConfigMap (their -upstream-ca-file).
const (
	// DefaultSidecarCASecret holds the CA's certificate and key.
	DefaultSidecarCASecret = "flint-sidecar-ca"
	// DefaultSidecarCABundle is the ConfigMap of trusted CA certificates
	// (key CABundleKey) that gateways mount.
	DefaultSidecarCABundle = "flint-sidecar-ca-bundle"
	// CABundleKey is the bundle's key in its ConfigMap and in every
	// agent's certificate Secret.
	CABundleKey          = "ca.crt"
	sidecarTLSVolume     = v1alpha1.ReservedPrefix + "tls"
	sidecarTLSDir        = "/var/run/flint/tls"
	kindTLSSecret        = "TLSSecret"
	serviceAccountNSFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// SidecarTLSConfig is the manager's sidecar TLS settings.
type SidecarTLSConfig struct {
	// Enabled issues, mounts and renews serving certificates.
	Enabled bool
	// Namespace holds the CA Secret and the bundle ConfigMap: the manager's
	// own (empty: $POD_NAMESPACE, else the service account's namespace).
	Namespace string
	// CASecret and CABundle name the CA Secret and bundle ConfigMap.
	CASecret, CABundle string
	// CertLifetime is each serving certificate's validity; it is renewed
	// at two thirds of it.
	CertLifetime time.Duration
	// ClusterDomain completes the Service names certificates carry; the
	// gateways' -cluster-domain must match.
	ClusterDomain string
}

// DefaultSidecarTLSConfig returns the defaults: off.
func DefaultSidecarTLSConfig() SidecarTLSConfig {
	return SidecarTLSConfig{CASecret: DefaultSidecarCASecret, CABundle: DefaultSidecarCABundle,
		CertLifetime: servingcert.DefaultLifetime, ClusterDomain: "cluster.local"}
}

// RegisterFlags binds c to flags on fs; c's current values are the defaults.
func (c *SidecarTLSConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, "sidecar-tls", c.Enabled,
		"serve TLS on every sidecar's serving port with a certificate the manager issues for the agent's Service names from its CA (-sidecar-tls-ca-secret), mounts and renews; gateways verify it with the -sidecar-tls-ca-bundle ConfigMap as their -upstream-ca-file")
	fs.StringVar(&c.Namespace, "sidecar-tls-namespace", c.Namespace,
		"`namespace` of the CA Secret and the CA bundle ConfigMap (empty: the manager's own, from $POD_NAMESPACE or its service account)")
	fs.StringVar(&c.CASecret, "sidecar-tls-ca-secret", c.CASecret,
		"`name` of the Secret holding the sidecars' CA (tls.crt, tls.key); created when missing, never replaced")
	fs.StringVar(&c.CABundle, "sidecar-tls-ca-bundle", c.CABundle,
		"`name` of the ConfigMap where the manager publishes the CA certificates gateways trust (key ca.crt)")
	fs.DurationVar(&c.CertLifetime, "sidecar-tls-cert-lifetime", c.CertLifetime,
		"validity of each sidecar's serving certificate; renewed at two thirds of it")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain,
		"the cluster's DNS domain, completing the Service names in sidecar certificates (the gateways' -cluster-domain must match)")
}

func (c SidecarTLSConfig) validate() error {
	var errs []error
	if c.Enabled {
		if c.CASecret == "" || c.CABundle == "" {
			errs = append(errs, errors.New("-sidecar-tls-ca-secret and -sidecar-tls-ca-bundle must name a Secret and a ConfigMap"))
		}
		if c.CertLifetime < time.Hour {
			errs = append(errs, fmt.Errorf("-sidecar-tls-cert-lifetime=%s must be at least 1h: renewals must have time to reach the pods", c.CertLifetime))
		}
	}
	if c.ClusterDomain == "" || strings.HasPrefix(c.ClusterDomain, ".") || strings.HasSuffix(c.ClusterDomain, ".") {
		errs = append(errs, fmt.Errorf("-cluster-domain=%q must be a DNS domain such as cluster.local", c.ClusterDomain))
	}
	return errors.Join(errs...)
}

// resolveNamespace fills Namespace from the pod's environment.
func (c *SidecarTLSConfig) resolveNamespace() error {
	if !c.Enabled || c.Namespace != "" {
		return nil
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		c.Namespace = ns
		return nil
	}
	if b, err := os.ReadFile(serviceAccountNSFile); err == nil && strings.TrimSpace(string(b)) != "" {
		c.Namespace = strings.TrimSpace(string(b))
		return nil
	}
	return errors.New("-sidecar-tls: set -sidecar-tls-namespace (the manager's namespace is neither in $POD_NAMESPACE nor in its service account)")
}

// SidecarTLSSecretName is the Secret holding an agent's serving certificate.
func SidecarTLSSecretName(agent string) string { return agent + "-flint-tls" }

// ServiceDNSNames are the names an agent's serving certificate carries;
// the gateways verify the longer one.
func (c SidecarTLSConfig) ServiceDNSNames(namespace, name string) []string {
	svc := name + "." + namespace + ".svc"
	return []string{svc, svc + "." + c.ClusterDomain}
}

func sidecarTLSArgs() []string {
	return []string{
		"-tls-cert-file=" + path.Join(sidecarTLSDir, corev1.TLSCertKey),
		"-tls-key-file=" + path.Join(sidecarTLSDir, corev1.TLSPrivateKeyKey),
	}
}

// sidecarTLSVolumeSource mounts the agent's certificate Secret, readable
// by the sidecar's user whatever it is (no UID is imposed); only the
// sidecar mounts it.
func sidecarTLSVolumeSource(a *v1alpha1.Agent) *corev1ac.VolumeApplyConfiguration {
	return corev1ac.Volume().WithName(sidecarTLSVolume).
		WithSecret(corev1ac.SecretVolumeSource().WithSecretName(SidecarTLSSecretName(a.Name)).WithDefaultMode(0o444))
}

func sidecarTLSMount() *corev1ac.VolumeMountApplyConfiguration {
	return corev1ac.VolumeMount().WithName(sidecarTLSVolume).WithMountPath(sidecarTLSDir).WithReadOnly(true)
}

// certRecord is what the reconciler knows of an agent's certificate.
type certRecord struct {
	hash    string // CA, agent UID and names it was checked against
	renewAt time.Time
	checked time.Time
	// The pair last applied, for a manager that may not read Secrets.
	certPEM, keyPEM []byte
}

// certMemo spares a Secret read per reconcile: a certificate checked within
// secretRecheck and not yet due is not read again.
type certMemo struct {
	mu      sync.Mutex
	records map[types.NamespacedName]certRecord
}

func (m *certMemo) get(nn types.NamespacedName) (certRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[nn]
	return r, ok
}

func (m *certMemo) set(nn types.NamespacedName, r certRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[types.NamespacedName]certRecord{}
	}
	m.records[nn] = r
}

func (m *certMemo) forget(nn types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, nn)
}

// applyServingCert makes sure the agent's certificate Secret holds a
// certificate for its Service names that the gateways trust and that is
// not due for renewal, issuing one when not, and returns when it is due.
// A zero time means sidecar TLS is off.
func (r *Reconciler) applyServingCert(ctx context.Context, a *v1alpha1.Agent) (time.Time, error) {
	if !r.cfg.SidecarTLS.Enabled {
		return time.Time{}, nil
	}
	ca, err := r.ca.load(ctx, r.now())
	if err != nil {
		return time.Time{}, err
	}
	nn := types.NamespacedName{Namespace: a.Namespace, Name: SidecarTLSSecretName(a.Name)}
	names := r.cfg.SidecarTLS.ServiceDNSNames(a.Namespace, a.Name)
	hash := ca.ca.Fingerprint() + "/" + ca.bundleHash + "/" + string(a.UID) + "/" + strings.Join(names, ",")
	now := r.now()
	if rec, ok := r.certs.get(nn); ok && rec.hash == hash && now.Before(rec.renewAt) && now.Sub(rec.checked) < secretRecheck {
		r.metrics.applies.WithLabelValues(kindTLSSecret, "skipped").Inc()
		return rec.renewAt, nil
	}
	var current corev1.Secret
	err = r.reader().Get(ctx, nn, &current)
	switch {
	case apierrors.IsForbidden(err):
		// Without get on secrets (a chart may grant create/patch only),
		// the pair this manager last applied stands for the Secret: it is
		// applied again, which restores a deleted Secret; after a restart
		// a new one is issued.
		if rec, ok := r.certs.get(nn); ok {
			current.Data = map[string][]byte{corev1.TLSCertKey: rec.certPEM, corev1.TLSPrivateKeyKey: rec.keyPEM}
			current.OwnerReferences = []metav1.OwnerReference{{UID: a.UID, Controller: ptr(true)}}
		}
	case err != nil && !apierrors.IsNotFound(err):
		return time.Time{}, fmt.Errorf("get Secret %s: %w", nn, err)
	}
	readable := err == nil
	certPEM, keyPEM := current.Data[corev1.TLSCertKey], current.Data[corev1.TLSPrivateKeyKey]
	why := errors.New("no certificate yet")
	var renewAt time.Time
	if ownedBy(&current, a) {
		renewAt, why = servingcert.Check(certPEM, keyPEM, ca.roots, names, now)
	}
	if why == nil && readable && string(current.Data[CABundleKey]) == string(ca.bundle) {
		r.certs.set(nn, certRecord{hash: hash, renewAt: renewAt, checked: now, certPEM: certPEM, keyPEM: keyPEM})
		r.metrics.applies.WithLabelValues(kindTLSSecret, "skipped").Inc()
		return renewAt, nil
	}
	if why != nil {
		log.FromContext(ctx).Info("issuing a sidecar serving certificate", "secret", nn.String(), "reason", why.Error())
		if certPEM, keyPEM, err = ca.ca.Issue(names, now, r.cfg.SidecarTLS.CertLifetime); err != nil {
			return time.Time{}, err
		}
		if renewAt, err = servingcert.Check(certPEM, keyPEM, ca.roots, names, now); err != nil {
			return time.Time{}, fmt.Errorf("check the certificate just issued for %s: %w", nn, err)
		}
	}
	desired := corev1ac.Secret(nn.Name, nn.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithType(corev1.SecretTypeTLS).
		WithData(map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, CABundleKey: ca.bundle})
	if err := r.client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		r.metrics.applies.WithLabelValues(kindTLSSecret, "error").Inc()
		return time.Time{}, fmt.Errorf("apply Secret %s: %w (the manager needs create/patch on secrets for -sidecar-tls)", nn, err)
	}
	r.metrics.applies.WithLabelValues(kindTLSSecret, "applied").Inc()
	r.certs.set(nn, certRecord{hash: hash, renewAt: renewAt, checked: now, certPEM: certPEM, keyPEM: keyPEM})
	return renewAt, nil
}

// ownedBy reports whether obj is controlled by agent a (this Agent, not a
// deleted one of the same name).
func ownedBy(obj client.Object, a *v1alpha1.Agent) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == a.UID && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// certRequeue is when to reconcile again for a renewal: just after it is due.
func certRequeue(renewAt, now time.Time) time.Duration {
	if renewAt.IsZero() {
		return 0
	}
	return max(renewAt.Sub(now), 0) + time.Second
}
