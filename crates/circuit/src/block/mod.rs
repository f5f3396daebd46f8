//! The block circuit (protocol.md sections 10-14): a block of `C` pubdata chunks turns `old_root`
//! into `new_root` exactly as `zkl-state` does; the single public input is the block
//! commitment's low 253 bits.
//!
//! Layout (one universal chunk gadget per chunk position, see DESIGN.md):
//!
//! - The pubdata (`C · 20` bytes) is a witness, hashed with SHA-256 into the commitment.
//! - A counter of the chunks left in the current op tells which chunks start an op. A start
//!   chunk reads the op code and sets exactly one op flag; the op's fields are decoded from a
//!   window of four chunks starting there (bytes past the block are constant zeros and the
//!   counter must be zero after the last chunk, so an op cannot run past the block).
//! - Every chunk carries one EdDSA verification and two *account updates* (AU). An AU changes
//!   one account leaf: one balance (a balance-tree path update of depth 11), the nonce, the
//!   pubkey hash, and the owner when it creates the account (account-tree path update of
//!   depth 12). Each part is driven by the op flags; a disabled part leaves the root unchanged
//!   and checks nothing. A multi-chunk op does its work in its first chunk (ForcedExit: and
//!   its second; OrderMatching: the maker's side in its first chunk, the taker's in its second).
//! - OrderMatching: each chunk verifies one order's signature against its trader's key hash and
//!   fuses the chunk's two updates into one update of the trader's account: AU0's balance path
//!   debits what the trader gives, AU1's balance path (on the same balance tree) credits what it
//!   receives minus its fee, and AU1's account path serves as a depth-11 path of the trader's
//!   order tree (the slot's nonce must be the order's; fill ≤ available; a full fill moves the
//!   slot to the next nonce). The maker's chunk checks the price (`quote_fill · 10^18 =
//!   base_fill · maker_price` exactly), the taker's its limit against the maker's price.
//! - Fees: every op's fee is added to one of `F` per-block fee slots (token, amount) chosen by
//!   the prover; a non-zero fee must match its slot's token. After the last chunk every slot is
//!   credited to account 0, sub-account 0 (as `State::seal_block` does; the order of credits
//!   does not change the root, and a repeated token only splits a credit in two).
//! - On-chain ops update `onchain_hash[chain] = Poseidon(h, w1, w2, w3, w4)`.
//! - Work slots (a circuit of `W < C`, `BlockWitness::route`): the chunk positions keep the
//!   counter and say which chunks need work (an op's first chunk, and an OrderMatching's or a
//!   ForcedExit's second); the gadget runs in `W` slots, each on the window of the position it
//!   is routed to, in pubdata order (DESIGN.md, "Work slots").
//!
//! - FullExit: AU0 debits the account, AU1 the liquidity, by the pubdata amount, which must be
//!   `min(balance, liquidity)` rounded down to `10^(18 − l1_decimals)` (the decimals are a
//!   pubdata field the contract checks against its registry) when the account's owner is the
//!   requester, else 0.
//!
//! Every op kind has a flag (Noop, Deposit, TransferToNew, Withdraw, Transfer, FullExit,
//! ChangePubKey, ForcedExit, OrderMatching).

use std::collections::{BTreeMap, HashMap};

use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::uint8::UInt8;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};
use zkl_crypto::PublicKey;
use zkl_state::{MerkleProof, OrderSlot, SealedBlock, State};
use zkl_types::block::{
    BlockCommitment, BlockError, commitment as commitment_hash, onchain_hashes, pubdata_for_block, pubdata_hash,
    public_input,
};
use zkl_types::layout::{self, Field as PubdataField, OpLayout};
use zkl_types::op::{Op, code};
use zkl_types::{Address, SignedTx, Tx, balance_index};

use crate::bits::{
    bits_le_to_bytes_be, bytes_be_to_bits_le, fr_to_biguint, from_bits_le, to_bits_le, unpack_amount, unpack_fee,
};
use crate::commitment::{BlockHeaderVar, MAX_CHAINS};
use crate::ecc::PointVar;
use crate::eddsa::{self, SignatureVar};
use crate::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use crate::{BoolVar, Fr, FrVar, SynthesisError, poseidon, sha256};
pub use zkl_types::layout::CHUNK_BYTES;

/// Chunks an op's fields may span (ForcedExit has 4).
const WINDOW_CHUNKS: usize = 4;
/// Op codes with a flag in the chunk gadget, with their chunk counts.
pub const SUPPORTED_OPS: [(u8, usize); 9] = {
    use zkl_types::layout::*;
    const fn entry(l: OpLayout) -> (u8, usize) {
        (l.code, l.chunks)
    }
    [
        entry(NOOP),
        entry(deposit::LAYOUT),
        entry(transfer_to_new::LAYOUT),
        entry(withdraw::LAYOUT),
        entry(transfer::LAYOUT),
        entry(change_pubkey::LAYOUT),
        entry(forced_exit::LAYOUT),
        entry(order_matching::LAYOUT),
        entry(full_exit::LAYOUT),
    ]
};

// The on-chain ops the gadget reads with one set of chain / account / sub-account reads.
const _: () = {
    use zkl_types::layout::*;
    assert!(withdraw::ACCOUNT.offset == deposit::ACCOUNT.offset && withdraw::SUB.offset == deposit::SUB.offset);
    assert!(
        change_pubkey::ACCOUNT.offset == deposit::ACCOUNT.offset && change_pubkey::SUB.offset == deposit::SUB.offset
    );
    assert!(full_exit::ACCOUNT.offset == deposit::ACCOUNT.offset && full_exit::SUB.offset == deposit::SUB.offset);
    assert!(forced_exit::CHAIN.offset == CHAIN.offset);
};

pub(crate) fn pow2(k: u64) -> Fr {
    Fr::from(2u64).pow([k])
}

pub mod cost;
mod gadget;
mod witness;

pub use cost::{BlockCost, constraints_per_op, constraints_per_op_routed, op_name, work_per_op};
pub use witness::*;

/// The block circuit of capacity `witness.chunks.len()` chunks and `witness.fees.len()` fee
/// slots; one public input (the commitment's low 253 bits).
#[derive(Clone)]
pub struct BlockCircuit {
    pub witness: BlockWitness,
}

impl ConstraintSynthesizer<Fr> for BlockCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        gadget::synthesize(&cs, &self.witness, &mut Vec::new())
    }
}

impl BlockCircuit {
    /// The circuit of `capacity` chunks and `fee_slots` fee slots with a blank witness.
    pub fn blank(capacity: usize, fee_slots: usize) -> Self {
        Self { witness: BlockWitness::blank(capacity, fee_slots) }
    }

    /// The circuit of `capacity` chunks, `work_slots` work slots (`≥ capacity`: one chunk
    /// gadget per position) and `fee_slots` fee slots with a blank witness.
    pub fn blank_routed(capacity: usize, work_slots: usize, fee_slots: usize) -> Self {
        Self { witness: BlockWitness::blank_routed(capacity, work_slots, fee_slots) }
    }
}
