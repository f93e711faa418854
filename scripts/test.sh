#!/usr/bin/env bash
# Runs every check and test of Ingrid: formatting, lints, the contracts (forge), that the
# committed contract artifacts match the sources, and the Rust tests (nextest) against a
# real anvil chain and a real Postgres (started by scripts/test-postgres.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"

cd "$root/contracts"
echo "== contracts: format, build, artifacts, tests"
node_modules/.bin/forge fmt --check
node_modules/.bin/forge build --quiet
node tools/export-artifacts.js --check
node_modules/.bin/forge test
PATH="$PWD/node_modules/.bin:$PATH" FOUNDRY_OUT=out-slither FOUNDRY_CACHE_PATH=cache-slither .venv/bin/slither . --config-file slither.config.json --fail-medium

cd "$root"
echo "== monitoring: alert rules (promtool check and unit tests), dashboard queries"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
python3 grafana/check_dashboards.py

echo "== rust: format, lints, tests (real Postgres and anvil)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== rust: the protocol core builds for wasm32 (no I/O, no C code)"
cargo clippy -p ingrid-protocol --target wasm32-unknown-unknown --locked -- -D warnings
DATABASE_URL="$("$root/scripts/test-postgres.sh")"
export DATABASE_URL
cargo nextest run --workspace --locked --no-fail-fast
echo "== rust: the documentation's examples compile (and run, unless marked no_run)"
cargo test --workspace --doc --locked
