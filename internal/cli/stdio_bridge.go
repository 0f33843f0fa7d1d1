package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	installTo := fs.String("install-to", "", "copy this flint binary to `path` and exit: the init container that brings the bridge into a stdio MCP agent's pod on Kubernetes")
	if err := fs.Parse(args); err != nil { // not parse(): the command follows the flags
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *installTo != "" {
		return installSelf(*installTo)
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

// installSelf copies the running flint binary to dst, executable, through a
// temporary file so a half-written binary is never run.
func installSelf(dst string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the flint binary: %w", err)
	}
	src, err := os.Open(exe)
	if err != nil {
		return fmt.Errorf("read the flint binary: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".flint-*")
	if err != nil {
		return fmt.Errorf("install the flint binary into %s: %w", filepath.Dir(dst), err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := io.Copy(tmp, src); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("copy the flint binary to %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o555); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("make %s executable: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("copy the flint binary to %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install the flint binary as %s: %w", dst, err)
	}
	return nil
}
