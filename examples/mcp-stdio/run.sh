#!/bin/sh
# Starts the stdio MCP example; the stdio bridge runs one per session. It
# builds the server when a source file is newer than the binary (a no-op
# otherwise) and then replaces this shell with it, so the bridge's pipes and
# signals reach the server itself (`go run .` would not forward SIGTERM).
set -eu
cd "$(dirname "$0")"
bin="${TMPDIR:-/tmp}/flint-mcp-stdio-$(id -u)-$(pwd | cksum | cut -d ' ' -f 1)"
if [ ! -x "$bin" ] || [ -n "$(find . -name '*.go' -newer "$bin")" ]; then
	go build -o "$bin" .
	touch "$bin"
fi
exec "$bin" "$@"
