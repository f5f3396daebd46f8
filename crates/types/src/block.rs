//! Block pubdata, per-chain on-chain-operation hashes and the block commitment (section 13).

use ark_ff::{BigInteger, PrimeField};
use sha2::{Digest, Sha256};
use zkl_crypto::{Fr, field::fr_to_be_bytes, poseidon};

use crate::codec::fr_from_be;
use crate::ids::MAX_CHAINS;
use crate::op::{CHUNK_BYTES, Op, OpEncodeError};

/// Why ops could not be laid out in a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("ops need {needed} chunks but the block holds {capacity}")]
    Capacity { needed: usize, capacity: usize },
    #[error(transparent)]
    Encode(#[from] OpEncodeError),
}

/// The block's pubdata: the ops' pubdata then Noop chunks up to `capacity` chunks.
pub fn pubdata_for_block(ops: &[Op], capacity: usize) -> Result<Vec<u8>, BlockError> {
    let needed: usize = ops.iter().map(Op::chunks).sum();
    if needed > capacity {
        return Err(BlockError::Capacity { needed, capacity });
    }
    let mut out = Vec::with_capacity(capacity * CHUNK_BYTES);
    for op in ops {
        out.extend_from_slice(&op.pubdata()?);
    }
    out.resize(capacity * CHUNK_BYTES, 0);
    Ok(out)
}

/// The four 20-byte words of an on-chain op (zero past its end) as field elements.
pub fn onchain_words(op_pubdata: &[u8]) -> [Fr; 4] {
    std::array::from_fn(|i| op_pubdata.get(i * CHUNK_BYTES..(i + 1) * CHUNK_BYTES).map(fr_from_be).unwrap_or_default())
}

/// One step of a chain's on-chain hash: `Poseidon(h, w1, w2, w3, w4)`.
pub fn onchain_hash_step(h: Fr, op_pubdata: &[u8]) -> Fr {
    let [w1, w2, w3, w4] = onchain_words(op_pubdata);
    poseidon::hash_array([h, w1, w2, w3, w4])
}

/// The on-chain-operation hash of chains 1..=4 (index 0 is chain 1).
pub fn onchain_hashes(ops: &[Op]) -> Result<[Fr; MAX_CHAINS as usize], OpEncodeError> {
    let mut hashes = [Fr::from(0u64); MAX_CHAINS as usize];
    for op in ops {
        if let Some(chain) = op.onchain_chain() {
            let slot = &mut hashes[usize::from(chain - 1)];
            *slot = onchain_hash_step(*slot, &op.pubdata()?);
        }
    }
    Ok(hashes)
}

/// Everything the commitment binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCommitment {
    pub block_number: u32,
    pub timestamp: u64,
    pub old_root: Fr,
    pub new_root: Fr,
    pub pubdata_hash: [u8; 32],
    pub onchain_hashes: [Fr; MAX_CHAINS as usize],
}

impl BlockCommitment {
    /// The 236 bytes hashed into the commitment.
    pub fn preimage(&self) -> Vec<u8> {
        commitment_preimage(
            self.block_number,
            self.timestamp,
            &fr_to_be_bytes(&self.old_root),
            &fr_to_be_bytes(&self.new_root),
            &self.pubdata_hash,
            &self.onchain_hashes.map(|h| fr_to_be_bytes(&h)),
        )
    }
}

/// The 236-byte commitment preimage from its 32-byte parts (section 13): `block_number u32 ‖
/// timestamp u64 ‖ old_root ‖ new_root ‖ pubdata_hash ‖ onchain_hash_1..4`. (A contract hashes
/// whatever roots it is given; the proof binds them to real state roots.)
pub fn commitment_preimage(
    block_number: u32,
    timestamp: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    pubdata_hash: &[u8; 32],
    onchain_hashes: &[[u8; 32]; MAX_CHAINS as usize],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(236);
    out.extend_from_slice(&block_number.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(old_root);
    out.extend_from_slice(new_root);
    out.extend_from_slice(pubdata_hash);
    for h in onchain_hashes {
        out.extend_from_slice(h);
    }
    out
}

/// `sha256(preimage)`.
pub fn commitment(c: &BlockCommitment) -> [u8; 32] {
    Sha256::digest(c.preimage()).into()
}

/// sha256 of a block's pubdata.
pub fn pubdata_hash(pubdata: &[u8]) -> [u8; 32] {
    Sha256::digest(pubdata).into()
}

/// The proof's single public input: the commitment's low 253 bits.
pub fn public_input(commitment: &[u8; 32]) -> Fr {
    let mut bytes = *commitment;
    bytes[0] &= 0x1f;
    let x = Fr::from_be_bytes_mod_order(&bytes);
    debug_assert_eq!(x.into_bigint().to_bytes_be(), bytes.to_vec());
    x
}

/// `sync(n) = keccak256(sync(n − 1) ‖ commitment(n))`, `sync(0) = 0`: the chained commitments
/// every contract stores and the light oracle relays (docs/contracts.md).
pub fn next_sync_hash(prev: &[u8; 32], commitment: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(prev);
    buf[32..].copy_from_slice(commitment);
    alloy_primitives::keccak256(buf).0
}

/// One payout a chain's contract makes for a block: the recipient (the low 20 bytes of the op's
/// 32-byte address; the contract refuses any other), the L1 token and the amount in L2 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub to: [u8; 20],
    pub l1_token: crate::TokenId,
    pub amount: u128,
}

impl Withdrawal {
    /// The payout `op` makes on its chain, if any: Withdraw, ForcedExit, and FullExit with a
    /// non-zero amount.
    pub fn of(op: &Op) -> Option<(crate::ChainId, Withdrawal)> {
        let low20 = |a: &crate::Address| -> [u8; 20] { a.0[12..].try_into().expect("20 bytes") };
        let (chain, w) = match op {
            Op::Withdraw(o) => (o.chain, Withdrawal { to: low20(&o.to), l1_token: o.l1_token, amount: o.amount }),
            Op::ForcedExit(o) => {
                (o.chain, Withdrawal { to: low20(&o.target_owner), l1_token: o.l1_token, amount: o.amount })
            }
            Op::FullExit(o) => (o.chain, Withdrawal { to: low20(&o.owner), l1_token: o.l1_token, amount: o.amount }),
            _ => return None,
        };
        (w.amount != 0).then_some((chain, w))
    }

    /// `to 20 ‖ l1_token 2 ‖ amount 16`, as `executeBlocks` takes them.
    pub fn packed(&self) -> [u8; 38] {
        let mut out = [0u8; 38];
        out[..20].copy_from_slice(&self.to);
        out[20..22].copy_from_slice(&self.l1_token.to_be_bytes());
        out[22..].copy_from_slice(&self.amount.to_be_bytes());
        out
    }
}

/// Chain `chain`'s payouts of `ops`, in block order.
pub fn withdrawals_of(ops: &[Op], chain: crate::ChainId) -> Vec<Withdrawal> {
    ops.iter().filter_map(Withdrawal::of).filter(|(c, _)| *c == chain).map(|(_, w)| w).collect()
}

/// The packed payouts of a block, as `executeBlocks` takes them.
pub fn pack_withdrawals(ws: &[Withdrawal]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.packed()).collect()
}

/// The chained payouts hash a contract stores: `h = keccak256(h ‖ packed)`, `h0 = 0`.
pub fn withdrawals_hash(ws: &[Withdrawal]) -> [u8; 32] {
    ws.iter().fold([0u8; 32], |h, w| {
        let mut buf = h.to_vec();
        buf.extend_from_slice(&w.packed());
        alloy_primitives::keccak256(&buf).0
    })
}
