package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/flint-dev/flint/internal/gateway"
)

const agentsSynopsis = `List agents with their replicas and load, as the gateway sees them now.
Reads the gateway at -gateway (default from FLINT_GATEWAY, else ` + defaultGateway + `),
or with -kube the Agents' status in a Kubernetes cluster.`

func runAgents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var kf kubeFlags
	var namespace string
	fs := newFlagSet("agents", agentsSynopsis, stderr)
	cf.RegisterFlags(fs)
	cf.registerOutput(fs, "output format")
	kf.RegisterFlags(fs)
	fs.StringVar(&namespace, "n", "", "with -kube, only this namespace (default: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.checkOutput(); err != nil {
		return err
	}
	reader, err := kf.reader(&cf, namespace)
	if err != nil {
		return err
	}
	agents, err := reader.List(ctx)
	if err != nil {
		return err
	}
	if cf.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(agents)
	}
	printAgents(stdout, agents, time.Now())
	return nil
}

// printAgents writes the agents table.
func printAgents(w io.Writer, agents []gateway.AgentSummary, now time.Time) {
	if len(agents) == 0 {
		fmt.Fprintln(w, "No agents. Start some with: flint up -f examples/")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE/NAME\tPROTOCOL\tREPLICAS\tREADY\tIN-FLIGHT/HELD\tLAST INVOCATION")
	for _, a := range agents {
		replicas := strconv.Itoa(int(a.Replicas))
		if a.DesiredReplicas != nil && *a.DesiredReplicas != a.Replicas {
			replicas += fmt.Sprintf(" (→%d)", *a.DesiredReplicas)
		}
		ready := strconv.Itoa(a.ReadyReplicas)
		if a.Failure != nil {
			ready += " (" + a.Failure.Reason + ")"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%d/%d\t%s\n", a.Namespace, a.Name, a.Protocol, replicas,
			ready, a.InFlight, a.Held, sinceText(a.LastInvocationAt, now))
	}
	_ = tw.Flush()
}

// sinceText renders how long ago t was: "never", "12s ago", "3m ago", "5h ago", "2d ago".
func sinceText(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
