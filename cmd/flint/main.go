// Command flint runs AI agents and MCP servers as serverless workloads.
// Each role is a subcommand; see `flint help`.
package main

import (
	"os"

	"github.com/flint-dev/flint/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
