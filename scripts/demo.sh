#!/usr/bin/env bash
# Sets up what is missing and runs the demo: a local anvil chain, Ingrid's contracts
# deployed on it, and the seed's worked example (Alice, Ingrid, Bob, one virtual channel)
# settled through the contracts from Rust, with balances read back from the chain.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
cargo run --locked --quiet -p ingrid-hub --bin ingrid -- demo "$@"
