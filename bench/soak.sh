#!/usr/bin/env bash
# Soak HexProx on loopback: builds the handler, then drives it for
# DURATION (default 60s) at CONNS (default 256) concurrent connections with
# a mix of redirects, streamed tiles and capabilities, tokens expiring every
# 4 s. Prints the figures; exits non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o handler .
exec go run ./bench/soak -handler ./handler -duration "${DURATION:-60s}" -c "${CONNS:-256}" "$@"
