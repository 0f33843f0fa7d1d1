package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/flint-dev/flint/internal/mcp/bridge"
)

const stdioBridgeSynopsis = `Serve a stdio MCP server over streamable HTTP:
  flint stdio-bridge [flags] -- CMD [ARGS...]
Each MCP session (initialize) starts its own CMD, in its own process group;
the session's messages are relayed between the client and the child's stdin
and stdout, and the child's stderr is logged with the session's name.
/healthz turns ready once a probe child has answered initialize. On SIGTERM
the bridge fails readiness, ends standalone streams, finishes calls in flight,
stops every child in parallel in the spec's order (close stdin, wait,
SIGTERM, wait, SIGKILL) within -grace-period, and exits 0.`

func runStdioBridge(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := bridge.DefaultConfig()
	var logCfg logConfig
	fs := newFlagSet("stdio-bridge", stdioBridgeSynopsis, stderr)
	cfg.RegisterFlags(fs)
	logCfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil { // not parse(): the command follows the flags
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "no command given: put the stdio server's command after --, e.g. flint stdio-bridge -- python server.py")
		return errUsage
	}
	log, err := logCfg.logger(stderr)
	if err != nil {
		return err
	}
	b, err := bridge.New(cfg, fs.Args(), log, stderr)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
