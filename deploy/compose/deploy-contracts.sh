#!/bin/sh
# One-shot contract deployment of the compose stack (service `deployer`, foundry image):
# what `ingrid dev` does in hub/src/dev.rs (deploy_stack), with cast instead of Rust.
#
# Deploys, from the hub's key, the committed creation bytecode of client-sdk/artifacts/ (the
# same bytes the Rust code deploys; no Solidity compiler needed):
#   nonce 0  Adjudicator
#   nonce 1  EthAssetHolder(adjudicator)
#   nonce 2  TestToken ("tUSD", 6 decimals, anyone may mint: a local chain only)
#   nonce 3  Erc20AssetHolder(adjudicator, token)
# then mints 1,000,000 tUSD to every account of the node (anvil's dev accounts), as
# `ingrid dev` does. Contract addresses follow from the deployer's address and nonce, so on a
# fresh anvil with anvil's dev account 0 as the hub key they are the ones in
# deploy/compose/ingrid.toml; the script checks each address against EXPECT_* and fails
# with the address it got if they differ (then put the printed addresses in ingrid.toml).
#
# Idempotent: if the expected contracts already have code (the chain kept its state, e.g.
# `docker compose up` again without restarting anvil), it deploys nothing.
#
# POSIX sh with cast, grep, sed and tr only. Environment (defaults are the compose values):
#   RPC_URL      JSON-RPC endpoint                 http://chain:8545
#   KEY_FILE     deployer key, hex (the hub key)   /run/secrets/hub_key
#   ARTIFACTS    client-sdk/artifacts directory    /artifacts
#   EXPECT_ADJUDICATOR, EXPECT_ETH_HOLDER, EXPECT_TOKEN, EXPECT_TOKEN_HOLDER
set -eu

RPC_URL=${RPC_URL:-http://chain:8545}
KEY_FILE=${KEY_FILE:-/run/secrets/hub_key}
ARTIFACTS=${ARTIFACTS:-/artifacts}
EXPECT_ADJUDICATOR=${EXPECT_ADJUDICATOR:-0x5FbDB2315678afecb367f032d93F642f64180aa3}
EXPECT_ETH_HOLDER=${EXPECT_ETH_HOLDER:-0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512}
EXPECT_TOKEN=${EXPECT_TOKEN:-0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0}
EXPECT_TOKEN_HOLDER=${EXPECT_TOKEN_HOLDER:-0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9}
# 1,000,000 tUSD (6 decimals), what `ingrid dev` mints to each dev account.
MINT_AMOUNT=${MINT_AMOUNT:-1000000000000}

log() { printf 'deployer: %s\n' "$*" >&2; }
lower() { printf '%s' "$1" | tr 'A-F' 'a-f'; }

# The hub key file holds the key as hex, with or without 0x (as hub_key_file).
key=$(tr -d ' \t\r\n' < "$KEY_FILE")
case $key in 0x*) ;; *) key=0x$key ;; esac

# The creation bytecode of an artifact ({"abi": [...], "bytecode": {"object": "0x..."}}).
bytecode() {
  code=$(grep -o '"object": *"0x[0-9a-fA-F]*"' "$ARTIFACTS/$1.json" | sed 's/.*"\(0x[0-9a-fA-F]*\)"$/\1/')
  [ -n "$code" ] || { log "no bytecode in $ARTIFACTS/$1.json"; exit 1; }
  printf '%s' "$code"
}

has_code() { [ "$(cast code --rpc-url "$RPC_URL" "$1")" != "0x" ]; }

# deploy NAME EXPECTED [CONSTRUCTOR_SIG ARGS...]: sends the creation transaction, waits for
# its receipt and checks the new contract's address.
deploy() {
  name=$1 expected=$2
  shift 2
  receipt=$(cast send --rpc-url "$RPC_URL" --private-key "$key" --json --create "$(bytecode "$name")" "$@")
  address=$(printf '%s' "$receipt" | grep -o '"contractAddress": *"0x[0-9a-fA-F]*"' | sed 's/.*"\(0x[0-9a-fA-F]*\)"$/\1/')
  status=$(printf '%s' "$receipt" | grep -o '"status": *"0x[0-9a-f]*"' | sed 's/.*"\(0x[0-9a-f]*\)"$/\1/')
  [ "$status" = "0x1" ] || { log "$name: the creation transaction failed: $receipt"; exit 1; }
  if [ "$(lower "$address")" != "$(lower "$expected")" ]; then
    log "$name deployed at $address, but the configuration expects $expected."
    log "Was the chain fresh and is the hub key anvil's dev account 0? Otherwise put the"
    log "deployed addresses into deploy/compose/ingrid.toml and EXPECT_* of the deployer."
    exit 1
  fi
  log "$name at $address"
}

# Wait for the node (the compose healthcheck already did, but the script also runs alone).
tries=0
until chain_id=$(cast chain-id --rpc-url "$RPC_URL" 2>/dev/null); do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { log "no node at $RPC_URL"; exit 1; }
  sleep 1
done
deployer=$(cast wallet address --private-key "$key")
log "chain $chain_id at $RPC_URL, deploying from $deployer"

if has_code "$EXPECT_ADJUDICATOR"; then
  for contract in "$EXPECT_ETH_HOLDER" "$EXPECT_TOKEN" "$EXPECT_TOKEN_HOLDER"; do
    has_code "$contract" || { log "the adjudicator is deployed but $contract is not: reset the chain"; exit 1; }
  done
  log "contracts already deployed; nothing to do"
  exit 0
fi

deploy Adjudicator "$EXPECT_ADJUDICATOR"
deploy EthAssetHolder "$EXPECT_ETH_HOLDER" "constructor(address)" "$EXPECT_ADJUDICATOR"
deploy TestToken "$EXPECT_TOKEN"
deploy Erc20AssetHolder "$EXPECT_TOKEN_HOLDER" "constructor(address,address)" "$EXPECT_ADJUDICATOR" "$EXPECT_TOKEN"

# anvil's dev accounts: eth_accounts answers a JSON array of addresses.
for account in $(cast rpc --rpc-url "$RPC_URL" eth_accounts | tr -d '[]" ' | tr ',' ' '); do
  cast send --rpc-url "$RPC_URL" --private-key "$key" "$EXPECT_TOKEN" "mint(address,uint256)" "$account" "$MINT_AMOUNT" > /dev/null
  log "minted $MINT_AMOUNT tUSD units to $account"
done
log "done"
