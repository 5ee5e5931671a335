# Shared by the load scripts (sourced): where cargo puts binaries, and a readiness wait that
# fails loudly.

# The target directory cargo uses here (CARGO_TARGET_DIR, build.target-dir in a cargo
# config, or the workspace's target/): ask cargo rather than guess.
target_dir() {
  cargo metadata -q --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# wait_ready URL PID LOG [SECONDS]: until URL answers any HTTP status, the process PID exits,
# or SECONDS (default 60) pass; in the last two cases print LOG and fail.
wait_ready() {
  local url=$1 pid=$2 log=$3 deadline=$((SECONDS + ${4:-60}))
  while ((SECONDS < deadline)); do
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
    [[ $code != 000 && -n $code ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "not ready: $url (log follows)" >&2
  cat "$log" >&2
  return 1
}
