#!/usr/bin/env bash
# Installs forge-std into contracts/lib/forge-std from the npm registry. forge-std is
# normally a git submodule, which cannot be fetched here; its npm distribution is years
# old, so we take the copy that @chainlink/contracts ships (pinned, checksum verified).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/lib/forge-std"
version="1.4.0"
sha256="ce1c6b2fea3f4fa07d1a23d53f0b9582c2adb99226d9201a33ee49e93810ddd3"
[ -f "$dest/src/Test.sol" ] && exit 0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@chainlink/contracts@$version" >/dev/null)
echo "$sha256  $tmp/chainlink-contracts-$version.tgz" | sha256sum -c --quiet -
tar xzf "$tmp/chainlink-contracts-$version.tgz" -C "$tmp" package/src/v0.8/vendor/forge-std
mkdir -p "$dest"
cp -r "$tmp/package/src/v0.8/vendor/forge-std/." "$dest/"
