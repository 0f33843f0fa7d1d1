package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
)

const describeSynopsis = `Show one agent: its spec, status, ready replicas and the autoscaler's
recent scale decisions with their reasons. NAME is NAME (in -n) or
NAMESPACE/NAME. With -kube it reads the Agent, its EndpointSlices and its
Events from a Kubernetes cluster instead of a gateway.`

// maxDescribedDecisions keeps describe to a screen; -o json has them all.
const maxDescribedDecisions = 15

func runDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var kf kubeFlags
	namespace := "default"
	fs := newFlagSet("describe", describeSynopsis, stderr)
	fs.Usage = usageWithArgs(fs, "describe NAME", describeSynopsis)
	fs.StringVar(&namespace, "n", namespace, "namespace of NAME when it has none")
	cf.RegisterFlags(fs)
	cf.registerOutput(fs, "output format")
	kf.RegisterFlags(fs)
	key, err := oneAgentArg(fs, args, &namespace)
	if err != nil {
		return err
	}
	if err := cf.checkOutput(); err != nil {
		return err
	}
	reader, err := kf.reader(&cf, key.Namespace)
	if err != nil {
		return err
	}
	d, err := reader.Describe(ctx, key)
	if errors.Is(err, errAgentNotFound) {
		return fmt.Errorf("no agent %s: `flint agents` lists them", key)
	}
	if err != nil {
		return err
	}
	if cf.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	printDetail(stdout, d, time.Now())
	return nil
}

func printDetail(w io.Writer, d *gateway.AgentDetail, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("Name:", d.Name)
	line("Namespace:", d.Namespace)
	line("URL:", d.URL)
	line("Protocol:", d.Protocol)
	line("Container:", containerText(&d.Spec.Container))
	line("Concurrency:", concurrencyText(d.Spec.Concurrency))
	line("Scaling:", scalingText(&d.Spec))
	line("Timeouts:", fmt.Sprintf("request %s, cold start %s", d.Spec.RequestTimeout(), d.Spec.ColdStartTimeout()))
	desired := "unknown"
	if d.DesiredReplicas != nil {
		desired = fmt.Sprint(*d.DesiredReplicas)
	}
	line("Replicas:", fmt.Sprintf("%d asked, %d ready, %s desired", d.Replicas, d.ReadyReplicas, desired))
	if f := d.Failure; f != nil {
		line("Failing:", f.Reason+": "+f.Message)
	}
	line("Load:", fmt.Sprintf("%d in flight, %d held", d.InFlight, d.Held))
	line("Requests:", fmt.Sprintf("%d (%s, %d refused)", d.RequestsTotal, plural(int(d.ColdStartsTotal), "cold start"), d.RejectedTotal))
	last := sinceText(d.LastInvocationAt, now)
	if d.LastInvocationAt != nil {
		last = d.LastInvocationAt.Local().Format(time.DateTime) + " (" + last + ")"
	}
	line("Last invocation:", last)
	_ = tw.Flush()

	fmt.Fprintln(w, "\nReady replicas:")
	if len(d.Endpoints) == 0 {
		fmt.Fprintln(w, "  none (the first request starts one)")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  REPLICA\tADDRESS\tADMIN\tIN-FLIGHT")
		for _, e := range d.Endpoints {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", e.Replica, e.Addr, e.AdminAddr, e.InFlight)
		}
		_ = tw.Flush()
	}

	if d.Events != nil {
		printEvents(w, d.Events, now)
		return // read from a cluster: decisions are the manager's, not here
	}
	fmt.Fprintln(w, "\nRecent scale decisions (oldest first):")
	decs := d.Decisions
	if len(decs) == 0 {
		fmt.Fprintln(w, "  none recorded (no autoscaler in this gateway's process, or it has not ticked yet)")
		return
	}
	if len(decs) > maxDescribedDecisions {
		fmt.Fprintf(w, "  (%d older not shown; -o json has them)\n", len(decs)-maxDescribedDecisions)
		decs = decs[len(decs)-maxDescribedDecisions:]
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tREPLICAS\tREADY\tREASON\tDEMAND (STABLE/PANIC)")
	for _, dec := range decs {
		change := fmt.Sprintf("%d", dec.Current)
		if dec.Desired != dec.Current {
			change = fmt.Sprintf("%d → %d", dec.Current, dec.Desired)
		}
		reason := dec.Reason
		if dec.Panic && reason != "panic" {
			reason += " (panic)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%.1f (%.1f/%.1f)\n", dec.Time.Local().Format(time.TimeOnly), change, dec.Ready, reason,
			dec.Demand, dec.StableDemand, dec.PanicDemand)
	}
	_ = tw.Flush()
}

func containerText(c *v1alpha1.AgentContainer) string {
	var parts []string
	if c.Image != "" {
		parts = append(parts, "image "+c.Image)
	}
	if len(c.Command) > 0 {
		parts = append(parts, "command "+strings.Join(append(append([]string(nil), c.Command...), c.Args...), " "))
	}
	parts = append(parts, fmt.Sprintf("port %d", c.Port))
	return strings.Join(parts, ", ")
}

func concurrencyText(n int32) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d in flight per replica", n)
}

func scalingText(s *v1alpha1.AgentSpec) string {
	sc := s.Scaling
	var b strings.Builder
	if sc.MinReplicas != nil && sc.MaxReplicas != nil {
		fmt.Fprintf(&b, "%d–%d replicas", *sc.MinReplicas, *sc.MaxReplicas)
	}
	if sc.Target != nil {
		fmt.Fprintf(&b, ", target %d in flight per replica", *sc.Target)
	}
	if sc.ScaleToZeroAfter != nil {
		fmt.Fprintf(&b, ", to zero after %s idle", sc.ScaleToZeroAfter.Duration)
	}
	if sc.StableWindow != nil {
		fmt.Fprintf(&b, ", stable window %s", sc.StableWindow.Duration)
	}
	return strings.TrimPrefix(b.String(), ", ")
}

// usageWithArgs is a usage function for commands that take arguments.
func usageWithArgs(fs interface {
	Output() io.Writer
	PrintDefaults()
}, synopsisLine, text string) func() {
	return func() {
		fmt.Fprintf(fs.Output(), "Usage: flint %s [flags]\n\n%s\n\nFlags:\n", synopsisLine, text)
		fs.PrintDefaults()
	}
}

// printEvents lists an Agent's Kubernetes Events, as kubectl describe does.
func printEvents(w io.Writer, events []gateway.EventDetail, now time.Time) {
	fmt.Fprintln(w, "\nEvents (oldest first; scale decisions are in the manager's log and metrics):")
	if len(events) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  AGE\tTYPE\tREASON\tMESSAGE")
	for _, e := range events {
		age := sinceText(&e.Time, now)
		if e.Count > 1 {
			age += fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", age, e.Type, e.Reason, e.Message)
	}
	_ = tw.Flush()
}
