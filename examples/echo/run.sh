#!/bin/sh
# Starts the echo agent in local mode. It builds the agent when a source file
# is newer than the binary (a no-op otherwise: asking `go build` alone costs
# ~90ms per start) and then replaces this shell with it, so Flint's signals
# reach the agent itself and the exit code is the agent's. `go run .` would
# not do: on SIGTERM it exits at once, leaving the agent running as an orphan.
set -eu
cd "$(dirname "$0")"
bin="${TMPDIR:-/tmp}/flint-echo-$(id -u)-$(pwd | cksum | cut -d ' ' -f 1)"
if [ ! -x "$bin" ] || [ -n "$(find . -name '*.go' -newer "$bin")" ]; then
	go build -o "$bin" .
	touch "$bin"
fi
exec "$bin" "$@"
