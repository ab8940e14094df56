#!/usr/bin/env bash
# HexProx load benchmark, one command: installs wrk (and nginx for the
# nginx baseline) from Debian if missing, builds the handler, the fake
# Hexagon and the baseline proxy, and runs bench/load, which writes
# bench/results.json and bench/results.svg and prints a Markdown table.
# Loopback only; every wrk run lasts DURATION (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p bench/bin
go build -trimpath -o bench/bin/handler .
go build -trimpath -o bench/bin/fakehexagon ./cmd/fakehexagon
go build -trimpath -o bench/bin/baseline ./bench/baseline
exec go run ./bench/load -bin bench/bin -duration "${DURATION:-10s}" -conns "${CONNS:-32,256}" "$@"
