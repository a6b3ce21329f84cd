#!/usr/bin/env bash
# `clawgrid id --json` against an independent implementation: the peer id must be the libp2p id of
# node.key's Ed25519 public key (identity multihash of the protobuf PublicKey, base58btc) and the address
# the EIP-55 checksum address of wallet.key's secp256k1 key (keccak-256 of the public key), both computed
# by @noble/curves, @noble/hashes and multiformats (the npm peers installed for the libp2p interop tests).
# The output must be exactly {"peerId","address"}, the same with --json before the command, offline.
set -euo pipefail
root=${CLAWGRID_ROOT:-$(pwd)}
bin=${CLAWGRID_BIN:?CLAWGRID_BIN not set}
mods=$root/tests/interop/libp2p/node_modules
command -v node >/dev/null || { echo "skip: node (JavaScript) missing"; exit 77; }
for m in @noble/curves @noble/hashes multiformats; do
  [ -d "$mods/$m" ] || { echo "skip: $m not installed (make test installs the npm peers)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3; do
  dir=$tmp/d$i
  "$bin" --data-dir "$dir" init >/dev/null
  got=$("$bin" --data-dir "$dir" id --json)
  [ "$got" = "$("$bin" --data-dir "$dir" --json id)" ] || { echo "--json position changes the output"; exit 1; }
  # ESM resolution is relative to the working directory for --input-type=module code.
  want=$(cd "$root/tests/interop/libp2p" && node --input-type=module -e '
import { readFileSync } from "node:fs";
import { ed25519 } from "@noble/curves/ed25519.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { base58btc } from "multiformats/bases/base58";
const dir = process.argv[1];
const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const seed = hex(readFileSync(dir + "/node.key", "utf8").trim().replace(/^ed25519:/, ""));
const pub = ed25519.getPublicKey(seed);
const pb = new Uint8Array([0x08, 0x01, 0x12, 0x20, ...pub]);           // PublicKey{Type: Ed25519, Data}
const peerId = base58btc.encode(new Uint8Array([0x00, pb.length, ...pb])).slice(1); // identity multihash
const priv = hex(readFileSync(dir + "/wallet.key", "utf8").trim().replace(/^secp256k1:/, "").replace(/^0x/, ""));
const a = Buffer.from(keccak_256(secp256k1.getPublicKey(priv, false).slice(1)).slice(12)).toString("hex");
const h = Buffer.from(keccak_256(new TextEncoder().encode(a))).toString("hex");
let address = "0x";
for (let k = 0; k < 40; k++) address += parseInt(h[k], 16) >= 8 ? a[k].toUpperCase() : a[k];
console.log(JSON.stringify({ peerId, address }));
' "$dir")
  if [ "$got" != "$want" ]; then
    echo "clawgrid id --json: $got"
    echo "independent:        $want"
    exit 1
  fi
  case "$got" in '{"peerId":"12D3KooW'*) ;; *) echo "not a 12D3KooW peer id: $got"; exit 1 ;; esac
done
echo "identity ok: 3 data dirs, peer ids and EIP-55 addresses match an independent implementation"
