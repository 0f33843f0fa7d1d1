// Package cli implements the flint command's subcommands. Each subcommand
// parses its flags into its role's Config, validates it, and runs the role
// until SIGINT or SIGTERM.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/flint-dev/flint/internal/platform/local"
)

// Version is set at build time with -ldflags "-X github.com/flint-dev/flint/internal/cli.Version=v1.2.3";
// hack/images.sh stamps the images' tag, from git describe, into it.
var Version = ""

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"up", "run agents locally: gateway, autoscaler and replicas in one process", runUp},
		{"gateway", "route invocations to agents' replicas (the activator included)", runGateway},
		{"proxy", "the per-replica sidecar: concurrency cap, stats, readiness, drain", runProxy},
		{"stdio-bridge", "serve a stdio MCP server over streamable HTTP, one child per session", runStdioBridge},
		{"manager", "the Kubernetes control plane: reconciles Agents, runs the autoscaler", runManager},
		// People-facing commands (agents.go, invoke.go, describe.go).
		{"agents", "list agents with their replicas and load", runAgents},
		{"invoke", "invoke an agent and stream its answer", runInvoke},
		{"mcp", "list an MCP agent's tools, call one, ping it (the official MCP client)", runMCP},
		{"describe", "show an agent's spec, status and recent scale decisions", runDescribe},
		{"version", "print the version", runVersion},
	}
}

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	switch args[0] {
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	case local.SuperviseCommand: // hidden: `flint up` runs each agent under it
		return local.Supervise(args[1:])
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "flint %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "flint: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage means the flags were wrong; the flag package already said why.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "Flint runs AI agents and MCP servers as serverless workloads.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: flint COMMAND [flags]    (flint --version prints the version)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'flint COMMAND -h' for a command's flags. Try: flint up -f examples/")
}

// newFlagSet returns a flag set whose usage explains the command.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("flint "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: flint %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, mapping flag errors to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Print Flint's version.", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flint %s\n", version())
	return nil
}
