#!/usr/bin/env bash
# The loopback twin (issue 20): the same handler served bare and behind the example's whole
# stack (API key, bearer JWT, RFC 9421, quota with metering, the trace layer and the log
# subscriber) by one process on two loopback ports, loaded with wrk in one run. Prints
# requests/s, p50 and p99 for each and the stack's ratios to bare.
#
#   benches/twin.sh                          # 10 s per run, 1 wrk thread, 32 connections
#   ROUNDS=3 DURATION=10 RUST_LOG=info benches/twin.sh
#
# Runs alternate bare, API key, JWT, ROUNDS times, so that drift on a shared machine lands
# on all of them; medians over rounds are reported. Sends traffic to 127.0.0.1 only, for a
# bounded time, and stops the server it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
BARE_PORT=${BARE_PORT:-18181}
STACK_PORT=${STACK_PORT:-18182}
PATH_=/v1/companies/example.com
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; })
fi

cd "$ROOT"
cargo build --release -p apiauth-bench --bin loopback-twin -q
RUST_LOG=${RUST_LOG:-warn} "$(target_dir)/release/loopback-twin" \
  "127.0.0.1:$BARE_PORT" "127.0.0.1:$STACK_PORT" "$WORK/creds.env" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "http://127.0.0.1:$BARE_PORT$PATH_" "$SERVER_PID" "$WORK/server.log"
wait_ready "http://127.0.0.1:$STACK_PORT$PATH_" "$SERVER_PID" "$WORK/server.log"
[[ -s $WORK/creds.env ]] || { echo "twin wrote no credentials:" >&2; cat "$WORK/server.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$WORK/creds.env"

# One wrk run: "rps p50_ms p99_ms non2xx".
ms() { awk -v k="$1" '$1 == k {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'; }
run() {
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  echo "$out" >>"$WORK/wrk.log"
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(ms 50% <<<"$out"); p99=$(ms 99% <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "$rps ${p50:-?} ${p99:-?} ${bad:-0}"
}

declare -A ALL
for round in $(seq 1 "$ROUNDS"); do
  ALL[bare]+="$(run "http://127.0.0.1:$BARE_PORT$PATH_");"
  ALL[api_key]+="$(run -H "X-API-Key: $API_KEY" "http://127.0.0.1:$STACK_PORT$PATH_");"
  ALL[jwt]+="$(run -H "Authorization: Bearer $JWT" "http://127.0.0.1:$STACK_PORT$PATH_");"
  echo "round $round done" >&2
done

# Median of column $2 over the runs in $1 ("a b c d;a b c d;…").
median() { tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF {print $c}' | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
maxcol() { tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF && $c > m {m=$c} END {print m+0}'; }

echo
echo "Loopback twin: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, $(nproc) cores, RUST_LOG=${RUST_LOG:-warn}, $(date -u '+%F %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| twin | requests/s | p50 ms | p99 ms | non-2xx | throughput / bare | p50 / bare | p99 / bare |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
B_RPS=$(median "${ALL[bare]}" 1); B_P50=$(median "${ALL[bare]}" 2); B_P99=$(median "${ALL[bare]}" 3)
for k in bare api_key jwt; do
  rps=$(median "${ALL[$k]}" 1); p50=$(median "${ALL[$k]}" 2); p99=$(median "${ALL[$k]}" 3)
  bad=$(maxcol "${ALL[$k]}" 4)
  awk -v k="$k" -v r="$rps" -v a="$p50" -v b="$p99" -v n="$bad" -v br="$B_RPS" -v ba="$B_P50" -v bb="$B_P99" \
    'BEGIN {printf "| %s | %.0f | %.3f | %.3f | %d | %.2f | %.2f | %.2f |\n", k, r, a, b, n, r / br, a / ba, b / bb}'
done
echo
echo "Medians over rounds; non-2xx is the largest count in any round (it must be 0)."
