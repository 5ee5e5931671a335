#!/usr/bin/env bash
# Load test of the example API on loopback (issue 11): requests/s and p99 for /healthz and
# for the guarded route with each method, as ratios to /healthz from the same run.
#
#   benches/load.sh                 # 10 s per scenario, 1 wrk thread, 32 connections
#   DURATION=20 CONNECTIONS=64 benches/load.sh
#
# Needs the example (`cargo run --example saas`); installs wrk with apt if it is missing.
# Sends traffic to 127.0.0.1 only, for a bounded time, and stops the server it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18080}
DOMAIN_PATH=/v1/companies/example.com
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
for tool in curl python3; do command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done

cd "$ROOT"
cargo build --release --example saas -q
cargo build --release -p apiauth-bench --bin sign-requests -q
TARGET=$(target_dir)

CREDS=$WORK/credentials.json
# Quotas far above what two cores can serve, so the quota layer computes but never refuses.
# Audit events go to the log at info level; RUST_LOG=warn (the default here) measures the
# auth path rather than the terminal. Set RUST_LOG=info to include them.
QUOTAS=()
# "default" only takes effect once the example maps it to the default plan (see BENCHMARKS.md).
for plan in ${PLANS:-pro free default}; do QUOTAS+=(--quota "$plan=100000000:100000000"); done
RUST_LOG=${RUST_LOG:-warn} "$TARGET/release/examples/saas" --addr "127.0.0.1:$PORT" \
  --credentials-out "$CREDS" "${QUOTAS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "http://127.0.0.1:$PORT/healthz" "$SERVER_PID" "$WORK/server.log"
[[ -s $CREDS ]] || { echo "example wrote no credentials:" >&2; cat "$WORK/server.log" >&2; exit 1; }

json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$CREDS" "$1"; }
BASE=$(json base_url)
PRO_KEY=$(json api_keys.pro.key)
CLIENT_ID=$(json oauth_client.client_id)
CLIENT_SECRET=$(json oauth_client.client_secret)
TOKEN=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
  -d scope=companies:read "$BASE/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# One wrk run: "rps p99_ms non2xx ok_rps" (ok_rps: 2xx/3xx answers per second).
run() {
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  echo "$out" >>"$WORK/wrk.log"
  local rps p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  ok=$(awk -v t="${total:-0}" -v b="${bad:-0}" -v d="$DURATION" 'BEGIN {printf "%.2f", (t - b) / d}')
  echo "$rps ${p99:-?} ${bad:-0} $ok"
}

# Enough signed requests that none is sent twice at the rate /healthz reached.
declare -A RESULT
RESULT[healthz]=$(run "$BASE/healthz")
HEALTHZ_RPS=${RESULT[healthz]%% *}
SIGNED=$(awk -v r="$HEALTHZ_RPS" -v d="$DURATION" 'BEGIN {printf "%d", r * d * 1.3 + 10000}')
"$TARGET/release/sign-requests" "$CREDS" "$DOMAIN_PATH" "$SIGNED" >"$WORK/signed.tsv"

RESULT[api_key]=$(run -H "X-API-Key: $PRO_KEY" "$BASE$DOMAIN_PATH")
RESULT[jwt]=$(run -H "Authorization: Bearer $TOKEN" "$BASE$DOMAIN_PATH")
RESULT[hmac]=$(run -s "$ROOT/benches/signed.lua" "$BASE$DOMAIN_PATH" -- "$WORK/signed.tsv" "$DOMAIN_PATH" "$THREADS")

echo
echo "Loopback load test: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $(nproc) cores, $(date -u +%F)"
echo
echo "| route | requests/s | p99 ms | non-2xx | 2xx/s | 2xx/s / healthz |"
echo "|---|---:|---:|---:|---:|---:|"
read -r _ _ _ HEALTHZ_OK <<<"${RESULT[healthz]}"
for k in healthz api_key jwt hmac; do
  read -r rps p99 bad ok <<<"${RESULT[$k]}"
  ratio=$(awk -v a="$ok" -v b="$HEALTHZ_OK" 'BEGIN {printf "%.2f", a / b}')
  echo "| $k | $rps | $p99 | $bad | $ok | $ratio |"
done
echo
echo "non-2xx answers are 429s when a method's principals fall under a plan --quota does not"
echo "raise (the example's default plan), 401s when pre-signed requests ran out and repeated."
