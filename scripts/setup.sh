#!/usr/bin/env bash
# Installs what Ingrid's demo and tests need on a fresh Debian machine, using only the
# Debian, npm, PyPI and crates.io registries: Debian packages (PostgreSQL, Node.js, Prometheus),
# Foundry (forge, anvil, cast) and solcjs from npm, forge-std, Slither (pinned, in
# contracts/.venv), Schemathesis (pinned, in hub/tests/fuzz/.venv), cargo-nextest and the
# wasm32 target. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v runuser >/dev/null || missing+=(util-linux)
# The metrics test runs a real Prometheus; promtool checks the alert rules and dashboards.
command -v prometheus >/dev/null || missing+=(prometheus)
command -v python3 >/dev/null || missing+=(python3)
# Slither's virtualenv needs venv/ensurepip (a separate package on Debian).
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: a Rust toolchain (cargo) is required" >&2; exit 1; }
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked
# The protocol core must build for browsers and devices (checked in scripts/test.sh).
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

cd "$root/contracts"
if [ ! -x node_modules/.bin/forge ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
tools/fetch-forge-std.sh
# Slither (static analysis of the contracts in scripts/test.sh), pinned with its dependencies.
if [ ! -x .venv/bin/slither ] || [ tools/slither-requirements.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/slither-requirements.txt
  touch .venv/.installed
fi

# Schemathesis (the API fuzz test, hub/tests/it/fuzz.rs), pinned with its dependencies.
cd "$root/hub/tests/fuzz"
if [ ! -x .venv/bin/st ] || [ requirements.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  touch .venv/.installed
fi
