// Regenerates crates/crypto/tests/vectors/circom.json with the circom ecosystem's own packages:
// circomlibjs (poseidon, prv2pub, signPoseidon, verifyPoseidon, packPoint, packSignature),
// @zk-kit/eddsa-poseidon (derivePublicKey, signMessage, packPublicKey, packSignature) and
// ethers v5 (personal_sign for the L2 key derivation).
//
//   cd scripts/vectors && npm ci && npm run crypto
//
// The output is committed, so `cargo test` needs no node. Inputs are deterministic.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { buildPoseidon, buildEddsa, buildBabyjub } from "circomlibjs";
import { ethers } from "ethers";

// The package's ESM build does not load under node 20; its CommonJS build does. The default
// entry point hashes private keys with BLAKE-512 (the circomlibjs-compatible "blake-1" variant).
const zk = createRequire(import.meta.url)("@zk-kit/eddsa-poseidon/blake-1");

const out = process.argv[2] ?? "circom.json";
const P = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

// Deterministic pseudo-random field elements (xorshift over BigInt; nothing cryptographic).
let seed = 0x2545f4914f6cdd1dn;
function rnd64() {
  seed ^= (seed << 13n) & 0xffffffffffffffffn;
  seed ^= seed >> 7n;
  seed ^= (seed << 17n) & 0xffffffffffffffffn;
  return seed & 0xffffffffffffffffn;
}
function rndField() {
  let x = 0n;
  for (let i = 0; i < 4; i++) x = (x << 64n) | rnd64();
  return x % P;
}
function rndBytes32() {
  const b = Buffer.alloc(32);
  for (let i = 0; i < 4; i++) b.writeBigUInt64BE(rnd64(), i * 8);
  return b;
}
const hex = (b) => "0x" + Buffer.from(b).toString("hex");

const poseidon = await buildPoseidon();
const eddsa = await buildEddsa();
const babyJub = await buildBabyjub();
const F = poseidon.F;
const str = (x) => F.toObject(x).toString();

// Poseidon, 1 to 16 inputs.
const poseidonVectors = [];
for (let n = 1; n <= 16; n++) {
  const sets = [
    Array.from({ length: n }, (_, i) => BigInt(i + 1)),
    Array.from({ length: n }, () => 0n),
    Array.from({ length: n }, () => P - 1n),
    Array.from({ length: n }, () => rndField()),
    Array.from({ length: n }, () => rndField()),
  ];
  for (const inputs of sets) {
    poseidonVectors.push({ inputs: inputs.map(String), output: str(poseidon(inputs)) });
  }
}

// EdDSA-Poseidon: circomlibjs and zk-kit on the same keys and messages.
const keys = [
  Buffer.alloc(32, 0),
  Buffer.alloc(32, 1),
  Buffer.from("0001020304050607080900010203040506070809000102030405060708090001", "hex"),
  ...Array.from({ length: 5 }, rndBytes32),
];
const messages = [0n, 1n, 1234n, P - 1n, rndField(), rndField()];
const eddsaVectors = [];
for (const prv of keys) {
  const A = eddsa.prv2pub(prv);
  const zkA = zk.derivePublicKey(prv);
  if (F.toObject(A[0]) !== zkA[0] || F.toObject(A[1]) !== zkA[1]) throw new Error("zk-kit and circomlibjs disagree on prv2pub");
  const zkPacked = zk.packPublicKey(zkA);
  const packed = babyJub.packPoint(A);
  const signatures = messages.map((msg) => {
    const sig = eddsa.signPoseidon(prv, F.e(msg));
    if (!eddsa.verifyPoseidon(F.e(msg), sig, A)) throw new Error("circomlibjs rejects its own signature");
    const zkSig = zk.signMessage(prv, msg);
    if (zkSig.S !== sig.S || zkSig.R8[0] !== F.toObject(sig.R8[0]) || zkSig.R8[1] !== F.toObject(sig.R8[1]))
      throw new Error("zk-kit and circomlibjs disagree on a signature");
    if (!zk.verifySignature(msg, zkSig, zkA)) throw new Error("zk-kit rejects its own signature");
    return {
      message: msg.toString(),
      r8_x: str(sig.R8[0]),
      r8_y: str(sig.R8[1]),
      s: sig.S.toString(),
      packed: hex(eddsa.packSignature(sig)),
      zk_kit_packed: hex(zk.packSignature(zkSig)),
    };
  });
  eddsaVectors.push({
    private_key: hex(prv),
    pubkey_x: str(A[0]),
    pubkey_y: str(A[1]),
    packed_pubkey: hex(packed),
    zk_kit_packed_pubkey: zkPacked.toString(),
    pubkey_hash_input: str(poseidon([A[0], A[1]])),
    signatures,
  });
}

// L2 key derivation: ethers personal_sign, keccak256 of the 65-byte signature, circomlibjs prv2pub.
const L2_KEY_MESSAGE = "Access zkLink-rs Layer-2 account.\n\nOnly sign this message for a trusted client!";
const ethKeys = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  hex(rndBytes32()),
];
const derivations = [];
for (const k of ethKeys) {
  const wallet = new ethers.Wallet(k);
  const signature = await wallet.signMessage(L2_KEY_MESSAGE);
  const l2 = Buffer.from(ethers.utils.keccak256(signature).slice(2), "hex");
  const A = eddsa.prv2pub(l2);
  const h = F.toObject(poseidon([A[0], A[1]]));
  derivations.push({
    eth_private_key: k,
    eth_address: wallet.address,
    signature,
    l2_private_key: hex(l2),
    pubkey_x: str(A[0]),
    pubkey_y: str(A[1]),
    pubkey_hash: "0x" + (h % (1n << 160n)).toString(16).padStart(40, "0"),
  });
}

const doc = {
  generator: "scripts/vectors/gen-crypto-vectors.mjs",
  packages: { circomlibjs: "0.1.7", "@zk-kit/eddsa-poseidon": "1.1.0", ethers: "5.8.0" },
  l2_key_message: L2_KEY_MESSAGE,
  poseidon: poseidonVectors,
  eddsa: eddsaVectors,
  key_derivation: derivations,
};
writeFileSync(out, JSON.stringify(doc, null, 1) + "\n");
console.log(`wrote ${out}: ${poseidonVectors.length} poseidon, ${eddsaVectors.length} keys x ${messages.length} messages, ${derivations.length} derivations`);
