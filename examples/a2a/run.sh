#!/bin/sh
# Starts the A2A example in local mode. It builds the server when a source
# file is newer than the binary (a no-op otherwise) and then replaces this
# shell with it, so Flint's SIGTERM reaches the agent itself and the exit
# code is the agent's (`go run .` would exit at once and orphan it).
set -eu
cd "$(dirname "$0")"
bin="${TMPDIR:-/tmp}/flint-a2a-$(id -u)-$(pwd | cksum | cut -d ' ' -f 1)"
if [ ! -x "$bin" ] || [ -n "$(find . -name '*.go' -newer "$bin")" ]; then
	go build -o "$bin" .
	touch "$bin"
fi
exec "$bin" "$@"
