// Command nodeagent runs the test node agent against a cluster, for trying
// the harness by hand:
//
//	go run ./test/cluster/nodeagent/cmd -kubeconfig=$KUBECONFIG \
//	    -image flint:test=/tmp/x/flint -image echo:test=/tmp/x/echo
//
// It runs until SIGINT or SIGTERM, then stops every pod's processes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flint-dev/flint/test/cluster/nodeagent"
)

// imageFlags collects repeated -image name=path flags.
type imageFlags map[string]string

func (f imageFlags) String() string { return fmt.Sprint(map[string]string(f)) }

func (f imageFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want IMAGE=EXECUTABLE, got %q", v)
	}
	f[name] = path
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

func run() error {
	images := imageFlags{}
	cfg := nodeagent.Config{Images: images, Output: os.Stdout}
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig `file` of the cluster")
	namespaces := flag.String("namespaces", "", "comma-separated namespaces whose pending pods are bound here (default: all)")
	flag.Var(images, "image", "`IMAGE=EXECUTABLE` mapping (repeatable)")
	flag.StringVar(&cfg.NodeName, "node-name", nodeagent.DefaultNodeName, "name of the Node to register")
	flag.StringVar(&cfg.IPPrefix, "ip-prefix", nodeagent.DefaultIPPrefix, "first three octets of pod IPs, with the trailing dot")
	flag.StringVar(&cfg.HostIP, "host-ip", nodeagent.DefaultHostIP, "the node's address")
	flag.DurationVar(&cfg.RestartBackoff, "restart-backoff", nodeagent.DefaultRestartBackoff, "first crash-loop back-off")
	flag.Parse()
	if *namespaces != "" {
		cfg.Namespaces = strings.Split(*namespaces, ",")
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if cfg.Client, err = kubernetes.NewForConfig(restCfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	agent, err := nodeagent.Start(startCtx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	agent.Stop()
	return nil
}
