package realnode

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// HelmInstall installs the chart at chartDir as release into namespace
// (created if missing) with the Helm Go library, as `helm install --wait`
// would, against the node's API server.
func (n *Node) HelmInstall(ctx context.Context, chartDir, releaseName, namespace string, values map[string]any, timeout time.Duration) (*release.Release, error) {
	chart, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	cfg, err := n.helmConfig(namespace)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.CreateNamespace = true
	install.Wait = true
	install.Timeout = timeout
	rel, err := install.RunWithContext(ctx, chart, values)
	if err != nil {
		return nil, fmt.Errorf("helm install %s: %w", releaseName, err)
	}
	return rel, nil
}

// restGetter hands Helm the node's admin config, whose dialer reaches into
// the node's namespace (a kubeconfig file could not carry it).
type restGetter struct {
	cfg       *rest.Config
	namespace string
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(g.cfg)
	if err != nil {
		return nil, err
	}
	return memory.NewMemCacheClient(dc), nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(dc), nil
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: g.cfg.Host}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", Namespace: g.namespace}
	cfg.CurrentContext = "node"
	return clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})
}

// HelmUninstall removes release from namespace as `helm uninstall --wait`
// would.
func (n *Node) HelmUninstall(releaseName, namespace string, timeout time.Duration) error {
	cfg, err := n.helmConfig(namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Wait = true
	un.Timeout = timeout
	if _, err := un.Run(releaseName); err != nil {
		return fmt.Errorf("helm uninstall %s: %w", releaseName, err)
	}
	return nil
}

// helmConfig is Helm's action configuration for namespace on the node's API
// server, releases stored in Secrets as the helm CLI does.
func (n *Node) helmConfig(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	getter := &restGetter{cfg: n.REST, namespace: namespace}
	if err := cfg.Init(getter, namespace, "secret", func(format string, v ...any) { n.cfg.Log("helm: "+format, v...) }); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	return cfg, nil
}
