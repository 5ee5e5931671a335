#!/usr/bin/env bash
# Runs tests/interop/interop.py (authlib, PyJWT, http-message-signatures, DPoP proofs from
# PyJWT and pyca/cryptography) against the example, then apiauth-dpop's check of proofs made
# by pyca/cryptography alone (crates/dpop/tests/python_interop.rs, ignored without Python).
# Needs python3 with venv and network access to PyPI for the first install.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${INTEROP_VENV:-target/interop-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt
cargo build -q --example saas
# Wherever cargo puts it (CARGO_TARGET_DIR, a workspace target dir): ask cargo.
target_dir=$(cargo metadata -q --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$target_dir/debug/examples/saas" --addr "127.0.0.1:$port" --credentials-out "$tmp/creds.json" \
  >"$tmp/saas.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
ready=
for _ in $(seq 600); do
  if [ -s "$tmp/creds.json" ] && "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
       "http://127.0.0.1:$port/healthz" 2>/dev/null; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "the example did not become ready on port $port; its log:" >&2
  cat "$tmp/saas.log" >&2
  exit 1
fi
"$venv/bin/python" tests/interop/interop.py "$tmp/creds.json"
# Absolute: cargo runs the test from the crate's directory.
DPOP_INTEROP_PYTHON="$(cd "$venv" && pwd)/bin/python" cargo test -q -p apiauth-dpop --test python_interop -- --ignored
