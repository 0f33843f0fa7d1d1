package nodeagent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Defaults of Config. They are a kubelet's, scaled down where a test would
// otherwise wait: the kubelet's crash-loop back-off starts at 10s.
const (
	DefaultNodeName          = "flint-node"
	DefaultIPPrefix          = "127.0.1."
	DefaultHostIP            = "127.0.0.1"
	DefaultRestartBackoff    = time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultStopTimeout       = 2 * time.Second
)

// Config configures a node agent.
type Config struct {
	// Client reaches the API server; the agent needs to read and bind pods,
	// write pod status, delete pods, and write its Node and Lease.
	Client kubernetes.Interface
	// NodeName is the Node the agent registers and runs pods for.
	NodeName string
	// Images maps an image reference, exactly as written in a pod spec, to
	// the executable that stands in for it: its default entrypoint. A pod
	// with an image missing here gets ErrImagePull / ImagePullBackOff.
	Images map[string]string
	// Output receives every line the containers print, prefixed with
	// "namespace/pod/container | ", and the agent's own events, prefixed
	// with "nodeagent NODE: ". Each Write is one whole line, so a t.Log
	// adapter (see LogTo) works. Nil discards.
	Output io.Writer
	// RestartBackoff is the first crash-loop and image-pull back-off; it
	// doubles per failure up to MaxRestartBackoff. Default 1s (the kubelet's
	// is 10s, too slow for tests).
	RestartBackoff time.Duration
	// MaxRestartBackoff caps the back-off. Default 30 × RestartBackoff (the
	// kubelet's ratio: 10s to 5m).
	MaxRestartBackoff time.Duration
	// IPPrefix is the first three octets of the pod IPs, with the trailing
	// dot: pods get PREFIX1 to PREFIX254. The addresses must be local:
	// 127.x.y. always is on Linux, but the API server refuses loopback
	// addresses in EndpointSlices, so a test that needs EndpointSlices runs
	// in test/cluster/podnet and uses podnet.PodIPPrefix. Default
	// "127.0.1.".
	IPPrefix string
	// HostIP is the Node's InternalIP and every pod's hostIP (podnet.HostIP
	// in a podnet namespace). Default 127.0.0.1.
	HostIP string
	// Namespaces limits binding of unscheduled pods to these namespaces
	// (empty: all). Pods already assigned to the node run wherever they are.
	Namespaces []string
	// Env is added to every container's environment before the pod's own
	// variables (e.g. GOCOVERDIR). Values are not rewritten.
	Env map[string]string
	// HeartbeatInterval is how often the node Lease is renewed; the Ready
	// condition's heartbeat is refreshed every 4 intervals. Default 10s (the
	// kubelet's); kube-controller-manager's node-monitor-grace-period (50s)
	// must stay well above it.
	HeartbeatInterval time.Duration
	// StopTimeout is how long Stop, and a pod object deleted outright, give
	// processes between SIGTERM and SIGKILL. Default 2s (the kubelet's
	// minimum grace period).
	StopTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.NodeName == "" {
		c.NodeName = DefaultNodeName
	}
	if c.Output == nil {
		c.Output = io.Discard
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = DefaultRestartBackoff
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = 30 * c.RestartBackoff
	}
	if c.IPPrefix == "" {
		c.IPPrefix = DefaultIPPrefix
	}
	if c.HostIP == "" {
		c.HostIP = DefaultHostIP
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return c
}

// validate reports every problem at once, naming the field to change.
func (c Config) validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	if err := validIPPrefix(c.IPPrefix); err != nil {
		errs = append(errs, err)
	}
	if ip := net.ParseIP(c.HostIP); ip == nil || ip.To4() == nil {
		errs = append(errs, fmt.Errorf("HostIP %q is not an IPv4 address", c.HostIP))
	}
	for name, d := range map[string]time.Duration{
		"RestartBackoff": c.RestartBackoff, "MaxRestartBackoff": c.MaxRestartBackoff,
		"HeartbeatInterval": c.HeartbeatInterval, "StopTimeout": c.StopTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s (%s) must not be negative", name, d))
		}
	}
	if c.MaxRestartBackoff < c.RestartBackoff {
		errs = append(errs, fmt.Errorf("MaxRestartBackoff (%s) must not be below RestartBackoff (%s)", c.MaxRestartBackoff, c.RestartBackoff))
	}
	if len(errs) > 0 {
		return fmt.Errorf("nodeagent: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// validIPPrefix accepts "A.B.C." whose addresses are local: a server can
// listen on them and be reached there. Every address in 127.0.0.0/8 is,
// on Linux, without any configuration, which is what lets each pod have an
// IP of its own without privileges; so is all of podnet.CIDR inside a
// podnet namespace.
func validIPPrefix(p string) error {
	ip := net.ParseIP(p + "1")
	if !strings.HasSuffix(p, ".") || strings.Count(p, ".") != 3 || ip == nil || ip.To4() == nil {
		return fmt.Errorf("IPPrefix %q must be three octets of an IPv4 address with a trailing dot, e.g. %q", p, DefaultIPPrefix)
	}
	ln, err := net.Listen("tcp", p+"1:0")
	if err != nil {
		return fmt.Errorf("IPPrefix %q: its addresses are not local here (%v): use a prefix in 127.0.0.0/8, "+
			"or run in test/cluster/podnet and use podnet.PodIPPrefix", p, err)
	}
	ln.Close()
	return nil
}
