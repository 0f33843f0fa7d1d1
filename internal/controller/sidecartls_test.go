package controller

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/servingcert"
	"github.com/flint-dev/flint/internal/testenv"
)

func tlsConfig(caNamespace string) Config {
	cfg := testConfig()
	cfg.SidecarTLS.Enabled = true
	cfg.SidecarTLS.Namespace = caNamespace
	return cfg
}

func TestSidecarTLSPodAndService(t *testing.T) {
	a := testAgent("ns", "secure")
	pod, err := render(tlsConfig("flint-system"), a)
	if err != nil {
		t.Fatal(err)
	}
	sc := pod.Spec.InitContainers[0]
	for _, want := range []string{"-tls-cert-file=/var/run/flint/tls/tls.crt", "-tls-key-file=/var/run/flint/tls/tls.key"} {
		if !slices.Contains(sc.Args, want) {
			t.Errorf("sidecar args %q lack %s", sc.Args, want)
		}
	}
	parseSidecarArgs(t, sc.Args) // the sidecar accepts them (files are read at start, not by flag parsing)
	if len(sc.VolumeMounts) != 1 || sc.VolumeMounts[0].Name != "flint-tls" || !sc.VolumeMounts[0].ReadOnly {
		t.Errorf("sidecar mounts %+v", sc.VolumeMounts)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Secret == nil || pod.Spec.Volumes[0].Secret.SecretName != "secure-flint-tls" {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
	if len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Error("the agent must not see the sidecar's key")
	}
	if plain, _ := render(testConfig(), a); len(plain.Spec.Volumes) != 0 || slices.ContainsFunc(plain.Spec.InitContainers[0].Args, func(s string) bool { return strings.HasPrefix(s, "-tls") }) {
		t.Errorf("TLS off, yet %+v %q", plain.Spec.Volumes, plain.Spec.InitContainers[0].Args)
	}

	// The gateways are told to speak TLS only once every replica can.
	appProtocol := func(tls bool) string {
		var svc corev1.Service
		if err := convert(desiredService(a, tls), &svc); err != nil {
			t.Fatal(err)
		}
		return deref(svc.Spec.Ports[0].AppProtocol)
	}
	if appProtocol(false) != "" || appProtocol(true) != "https" {
		t.Errorf("appProtocol %q / %q", appProtocol(false), appProtocol(true))
	}
	d := &appsv1.Deployment{}
	d.Generation = 2
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2}
	if rolledOut(d) {
		t.Error("rolled out before the Deployment controller saw the new template")
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2}
	if rolledOut(d) || rolledOut(nil) {
		t.Error("rolled out with an old replica left")
	}
	d.Status.Replicas = 2
	if !rolledOut(d) {
		t.Error("not rolled out with every replica updated")
	}
}

func TestSidecarTLSConfigValidation(t *testing.T) {
	cfg := tlsConfig("")
	cfg.SidecarTLS.CertLifetime = time.Minute
	cfg.SidecarTLS.ClusterDomain = ".local"
	err := cfg.Validate()
	for _, want := range []string{"-sidecar-tls-cert-lifetime", "-cluster-domain"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %s", err, want)
		}
	}
	t.Setenv("POD_NAMESPACE", "flint-system")
	c := tlsConfig("").SidecarTLS
	if err := c.resolveNamespace(); err != nil || c.Namespace != "flint-system" {
		t.Errorf("namespace %q, %v", c.Namespace, err)
	}
}

// leafOf parses the certificate in an agent's Secret.
func leafOf(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
	if block == nil {
		t.Fatalf("Secret %s has no certificate", s.Name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsAgent starts a sidecar-TLS test on the real API server: the agent's
// namespace, the manager's (where the CA lives), and the Agent "secure" as
// created and defaulted.
func tlsAgent(t *testing.T) (env *testenv.Env, ns, caNS string, a *v1alpha1.Agent) {
	t.Parallel()
	env = cluster(t)
	ns, caNS = env.Namespace(t), env.Namespace(t)
	// Only this test's reconciler, with sidecar TLS on, acts on it.
	a = createAgent(t, env, ns, "secure", func(a *v1alpha1.Agent) {
		a.Labels = map[string]string{ownReconciler: "true"}
	}).DeepCopy()
	a.Default()
	return env, ns, caNS, a
}

// tlsReconciler is a manager with sidecar TLS on whose clock reads *now.
func tlsReconciler(t *testing.T, env *testenv.Env, caNS string, now *time.Time) *Reconciler {
	t.Helper()
	r, err := NewReconciler(env.Client, tlsConfig(caNS), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return *now }
	return r
}

// TestSidecarCertificateIssuedKeptAndRenewed, on the real API server: the
// manager creates its CA Secret and the bundle ConfigMap, issues the
// agent's certificate for its Service names into a Secret the Agent owns,
// keeps both across a restart, and renews the certificate once the
// (injected) clock reaches two thirds of its life.
func TestSidecarCertificateIssuedKeptAndRenewed(t *testing.T) {
	env, ns, caNS, a := tlsAgent(t)
	ctx := context.Background()
	now := time.Now()
	newReconciler := func() *Reconciler { return tlsReconciler(t, env, caNS, &now) }
	r := newReconciler()
	renewAt, err := r.applyServingCert(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var caSecret corev1.Secret
	if err := get(env, caNS, DefaultSidecarCASecret, &caSecret); err != nil {
		t.Fatalf("CA Secret: %v", err)
	}
	if caSecret.Type != corev1.SecretTypeTLS || len(caSecret.OwnerReferences) != 0 {
		t.Errorf("CA Secret type %q owners %v: it must outlive every agent", caSecret.Type, caSecret.OwnerReferences)
	}
	var bundle corev1.ConfigMap
	if err := get(env, caNS, DefaultSidecarCABundle, &bundle); err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	if strings.Contains(bundle.Data[CABundleKey], "PRIVATE KEY") || bundle.Data[CABundleKey] != string(caSecret.Data[corev1.TLSCertKey]) {
		t.Errorf("bundle %q is not the CA certificate alone", bundle.Data[CABundleKey])
	}
	var secret corev1.Secret
	if err := get(env, ns, SidecarTLSSecretName("secure"), &secret); err != nil {
		t.Fatal(err)
	}
	checkOwned(t, &secret.ObjectMeta, a)
	leaf := leafOf(t, &secret)
	wantNames := []string{"secure." + ns + ".svc", "secure." + ns + ".svc.cluster.local"}
	if !slices.Equal(leaf.DNSNames, wantNames) || len(leaf.IPAddresses) != 0 {
		t.Errorf("names %v %v, want %v", leaf.DNSNames, leaf.IPAddresses, wantNames)
	}
	roots, _ := servingcert.Pool([]byte(bundle.Data[CABundleKey]))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: wantNames[1]}); err != nil {
		t.Errorf("the gateways' bundle does not verify the certificate: %v", err)
	}
	if !renewAt.Equal(servingcert.RenewAt(leaf)) || renewAt.Before(now.Add(59*24*time.Hour)) || renewAt.After(now.Add(61*24*time.Hour)) {
		t.Errorf("renew at %s, %s from now; want two thirds of 90 days", renewAt, renewAt.Sub(now))
	}
	if d := certRequeue(renewAt, now); d != renewAt.Sub(now)+time.Second {
		t.Errorf("requeue after %s", d)
	}

	// A restarted manager finds the CA and the certificate and keeps both.
	now = now.Add(24 * time.Hour)
	r = newReconciler()
	if again, err := r.applyServingCert(ctx, a); err != nil || !again.Equal(renewAt) {
		t.Fatalf("after a restart: renew at %s (%v), want %s", again, err, renewAt)
	}
	var kept corev1.Secret
	if err := get(env, ns, SidecarTLSSecretName("secure"), &kept); err != nil {
		t.Fatal(err)
	}
	if leafOf(t, &kept).SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("a restart issued a new certificate")
	}
	var caAgain corev1.Secret
	if err := get(env, caNS, DefaultSidecarCASecret, &caAgain); err != nil || string(caAgain.Data[corev1.TLSPrivateKeyKey]) != string(caSecret.Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("the CA changed across a restart (%v)", err)
	}

	// Two thirds into its life the certificate is renewed, by the same CA.
	now = renewAt
	next, err := r.applyServingCert(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var renewed corev1.Secret
	if err := get(env, ns, SidecarTLSSecretName("secure"), &renewed); err != nil {
		t.Fatal(err)
	}
	fresh := leafOf(t, &renewed)
	if fresh.SerialNumber.Cmp(leaf.SerialNumber) == 0 || !next.After(renewAt) {
		t.Fatalf("not renewed at %s: next renewal %s", now, next)
	}
	if _, err := fresh.Verify(x509.VerifyOptions{Roots: roots, DNSName: wantNames[1], CurrentTime: now}); err != nil {
		t.Errorf("renewed certificate: %v", err)
	}

	// A certificate Secret someone broke is replaced at the next check.
	renewed.Data[corev1.TLSCertKey] = []byte("garbage")
	if err := env.Client.Update(ctx, &renewed); err != nil {
		t.Fatal(err)
	}
	now = now.Add(secretRecheck)
	if _, err := r.applyServingCert(ctx, a); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, settle, func() error {
		var s corev1.Secret
		if err := get(env, ns, SidecarTLSSecretName("secure"), &s); err != nil {
			return err
		}
		leafOf(t, &s)
		return nil
	})
}

// TestSidecarCABootstrappedAtStart: the bundle ConfigMap the gateways
// mount exists once the manager has started, with no Agent at all.
func TestSidecarCABootstrappedAtStart(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	caNS := env.Namespace(t)
	r, err := NewReconciler(env.Client, tlsConfig(caNS), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	if err := (caBootstrap{r}).Start(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("bootstrap: %v %v", err, ctx.Err())
	}
	var bundle corev1.ConfigMap
	var secret corev1.Secret
	if err := errors.Join(get(env, caNS, DefaultSidecarCABundle, &bundle), get(env, caNS, DefaultSidecarCASecret, &secret)); err != nil {
		t.Fatal(err)
	}
	if _, err := servingcert.Pool([]byte(bundle.Data[CABundleKey])); err != nil {
		t.Error(err)
	}
}

// forbidSecrets answers 403 to reads of Secrets in one namespace, as the
// API server does for a manager granted create/patch only.
type forbidSecrets struct {
	client.Reader
	namespace string
}

func (f forbidSecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && key.Namespace == f.namespace {
		return apierrors.NewForbidden(corev1.Resource("secrets"), key.Name, errors.New("test"))
	}
	return f.Reader.Get(ctx, key, obj, opts...)
}

// TestSidecarCertificateWithoutSecretReads: a manager that may not read
// Secrets in agents' namespaces keeps the pair it applied, applies it again
// after a recheck (restoring a deleted Secret), and issues anew after a
// restart.
func TestSidecarCertificateWithoutSecretReads(t *testing.T) {
	env, ns, caNS, a := tlsAgent(t)
	ctx := context.Background()
	now := time.Now()
	newReconciler := func() *Reconciler {
		r := tlsReconciler(t, env, caNS, &now)
		r.apiReader = forbidSecrets{Reader: env.Client, namespace: ns}
		return r
	}
	serial := func() string {
		t.Helper()
		var s corev1.Secret
		if err := get(env, ns, SidecarTLSSecretName("secure"), &s); err != nil {
			t.Fatal(err)
		}
		return leafOf(t, &s).SerialNumber.String()
	}
	r := newReconciler()
	if _, err := r.applyServingCert(ctx, a); err != nil {
		t.Fatal(err)
	}
	first := serial()
	var s corev1.Secret
	if err := get(env, ns, SidecarTLSSecretName("secure"), &s); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, &s); err != nil {
		t.Fatal(err)
	}
	now = now.Add(secretRecheck)
	if _, err := r.applyServingCert(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != first {
		t.Errorf("restored Secret has serial %s, want the same certificate %s", got, first)
	}
	r = newReconciler()
	if _, err := r.applyServingCert(ctx, a); err != nil {
		t.Fatal(err)
	}
	if serial() == first {
		t.Error("a restarted manager that cannot read the Secret kept a certificate it cannot know")
	}
}
