#!/usr/bin/env bash
# HexProx load benchmark, one command: installs wrk (and nginx for the
# nginx yardstick) from Debian and Azurite (for the cold start from the
# token table) from npm if missing, builds the handler, the fake Hexagon
# and the baselines (a bare ReverseProxy, the least net/http relay and a
# bare 302 handler), and runs
# bench/load, which writes bench/results.json and bench/results.svg and
# prints a Markdown table with the ratios and goals of issue 14.
#
#   DURATION   length of each wrk run (default 5s; whole seconds)
#   ROUNDS     rounds of every path and target, interleaved (default 3;
#              the table gives medians, so that a drift in this machine's
#              speed cannot decide a ratio)
#   CONNS      concurrencies (default 32,256)
#   COLD       cold starts from the table to time (default 20; 0 skips)
#
# Loopback only. With the defaults it takes about 9 minutes: 3 rounds of
# 28 wrk runs of DURATION, 2 pinned runs, 2 runs of 1,000 slow streams,
# plus start-up, cache-miss and cold-start timing (~30 s).
# A smoke run: DURATION=2s ROUNDS=1 CONNS=32 COLD=3 bench/run.sh (about 1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "${COLD:-20}" != 0 ] && [ ! -x tools/node_modules/.bin/azurite-table ] && command -v npm >/dev/null; then
  npm ci --prefix tools --no-audit --no-fund >/dev/null
fi
mkdir -p bench/bin
# The slow-stream measurement holds 1,000 client and 1,000 upstream
# connections open in one process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go build -trimpath -o bench/bin/handler .
go build -trimpath -o bench/bin/fakehexagon ./cmd/fakehexagon
go build -trimpath -o bench/bin/baseline ./bench/baseline
exec go run ./bench/load -bin bench/bin -duration "${DURATION:-5s}" -rounds "${ROUNDS:-3}" -conns "${CONNS:-32,256}" -cold-starts "${COLD:-20}" "$@"
