#!/usr/bin/env node
// Copies the ABI and creation bytecode of the contracts the Rust code binds to from forge's
// out/ into client-sdk/artifacts/ (committed, so `cargo build` never needs forge).
// With --check, compares instead and exits 1 on any difference (CI runs this after forge build).
'use strict';
const fs = require('fs');
const path = require('path');

const CONTRACTS = [
  'Adjudicator', 'EthAssetHolder', 'Erc20AssetHolder', 'TestToken',
  'CoinFlip', 'TicTacToe', 'ConditionalPayment', 'AppChecker', 'ProgressChecker',
];
const APPS = ['CoinFlip', 'TicTacToe', 'ConditionalPayment'];
const root = path.join(__dirname, '..');
const dest = path.join(root, '..', 'client-sdk', 'artifacts');
const check = process.argv.includes('--check');

let stale = [];
fs.mkdirSync(dest, { recursive: true });
for (const name of CONTRACTS) {
  const built = JSON.parse(fs.readFileSync(path.join(root, 'out', `${name}.sol`, `${name}.json`), 'utf8'));
  const artifact = { abi: built.abi, bytecode: { object: built.bytecode.object } };
  // An app's runtime code, so a wallet can check that an app address a hub announces runs
  // exactly the rule its Rust twin mirrors.
  if (APPS.includes(name)) artifact.deployedBytecode = { object: built.deployedBytecode.object };
  const text = JSON.stringify(artifact, null, 1) + '\n';
  const file = path.join(dest, `${name}.json`);
  if (check) {
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) stale.push(name);
  } else {
    fs.writeFileSync(file, text);
  }
}
if (stale.length > 0) {
  console.error(`client-sdk/artifacts is stale for: ${stale.join(', ')}; run contracts/tools/export-artifacts.js`);
  process.exit(1);
}
