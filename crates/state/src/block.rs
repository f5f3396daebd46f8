//! Blocks: capacity in chunks, the fee-token limit, sealing (fees credited, root computed,
//! pubdata and commitment produced).

use zkl_crypto::Fr;
use zkl_types::block::{BlockCommitment, commitment, onchain_hashes, pubdata_for_block, pubdata_hash, public_input};
use zkl_types::op::Op;

use crate::error::TxError;
use crate::exec::fee_tokens;
use crate::state::State;

/// Limits of the block being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockParams {
    /// Capacity in chunks.
    pub capacity: usize,
    /// Distinct fee tokens a block can collect (the circuit's fee slots).
    pub max_fee_tokens: usize,
    /// On-chain operations per block (node policy, not proven): each costs its chain about
    /// 100,000 gas to commit, so this keeps every block committable within an L1 block's gas.
    pub max_onchain_ops: usize,
}

/// The default [`BlockParams::max_onchain_ops`]: about 6.4M gas of commit per block and chain.
pub const MAX_ONCHAIN_OPS_PER_BLOCK: usize = 64;

impl BlockParams {
    /// The documented default for a capacity: a quarter of the chunks, at least 2, as fee
    /// slots, and at most [`MAX_ONCHAIN_OPS_PER_BLOCK`] on-chain ops.
    pub fn for_capacity(capacity: usize) -> Self {
        BlockParams { capacity, max_fee_tokens: (capacity / 4).max(2), max_onchain_ops: MAX_ONCHAIN_OPS_PER_BLOCK }
    }
}

/// The block being built.
#[derive(Debug, Clone)]
pub(crate) struct PendingBlock {
    pub number: u32,
    pub params: BlockParams,
    pub ops: Vec<Op>,
    pub chunks: usize,
    pub onchain_ops: usize,
    pub old_root: Fr,
}

/// A sealed block and everything its commitment binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    pub number: u32,
    pub timestamp: u64,
    pub capacity: usize,
    pub ops: Vec<Op>,
    pub pubdata: Vec<u8>,
    pub commitment: BlockCommitment,
    /// sha256 of the commitment preimage.
    pub commitment_hash: [u8; 32],
    /// The proof's public input.
    pub public_input: Fr,
}

impl State {
    fn pending(&mut self) -> &mut PendingBlock {
        if self.block.is_none() {
            let old_root = self.commit();
            let number = self.last_block + 1;
            self.block = Some(PendingBlock {
                number,
                params: self.block_params,
                ops: Vec::new(),
                chunks: 0,
                onchain_ops: 0,
                old_root,
            });
        }
        self.block.as_mut().expect("just set")
    }

    /// Sets the limits for blocks started from now on.
    pub fn set_block_params(&mut self, params: BlockParams) {
        self.block_params = params;
    }

    /// The number of the last sealed block (0 = genesis).
    pub fn last_block(&self) -> u32 {
        self.last_block
    }

    /// Chunks still free in the current block.
    pub fn free_chunks(&mut self) -> usize {
        let b = self.pending();
        b.params.capacity - b.chunks
    }

    /// Ops in the current block.
    pub fn pending_ops(&self) -> &[Op] {
        self.block.as_ref().map(|b| b.ops.as_slice()).unwrap_or(&[])
    }

    pub(crate) fn check_block_room(&mut self, op: &Op) -> Result<(), TxError> {
        let max_fee_tokens = self.block_params.max_fee_tokens;
        let new_fee_tokens = fee_tokens(op).into_iter().filter(|t| !self.pending_fees.contains_key(t)).count();
        let collecting = self.pending_fees.len();
        let b = self.pending();
        let free = b.params.capacity - b.chunks;
        if op.chunks() > free {
            return Err(TxError::BlockFull { needed: op.chunks(), free });
        }
        if collecting + new_fee_tokens > b.params.max_fee_tokens.min(max_fee_tokens) {
            return Err(TxError::TooManyFeeTokens(collecting));
        }
        if op.onchain_chain().is_some() && b.onchain_ops >= b.params.max_onchain_ops {
            return Err(TxError::TooManyOnchainOps(b.onchain_ops));
        }
        Ok(())
    }

    pub(crate) fn record_op(&mut self, op: Op) {
        let b = self.pending();
        b.chunks += op.chunks();
        b.onchain_ops += usize::from(op.onchain_chain().is_some());
        b.ops.push(op);
    }

    /// Seals the current block: credits fees, computes the new root, the pubdata and the
    /// commitment. An empty block can be sealed (all Noop).
    pub fn seal_block(&mut self, timestamp: u64) -> SealedBlock {
        self.seal_block_at(timestamp, None)
    }

    /// The smallest of `capacities` the current block fits, if it is below the block's own
    /// capacity: its chunks fit, and so do its fee tokens in the fee slots of that capacity
    /// ([`BlockParams::for_capacity`], the prover's rule). Otherwise the block's own capacity.
    pub fn fitting_capacity(&mut self, capacities: &[usize]) -> usize {
        let own = self.pending().params.capacity;
        capacities.iter().copied().filter(|&c| c < own && self.can_seal_at(c)).min().unwrap_or(own)
    }

    /// Whether the current block can be sealed at `capacity` chunks: its own capacity, or a
    /// smaller one holding its chunks and, in `max(capacity/4, 2)` fee slots, its fee tokens.
    pub fn can_seal_at(&mut self, capacity: usize) -> bool {
        let fee_tokens = self.pending_fees.len();
        let b = self.pending();
        capacity == b.params.capacity
            || (capacity >= b.chunks.max(1)
                && capacity < b.params.capacity
                && fee_tokens <= BlockParams::for_capacity(capacity).max_fee_tokens)
    }

    /// [`State::seal_block`], padding the block to `capacity` chunks instead of its own capacity
    /// (from [`State::fitting_capacity`]); a capacity it cannot be sealed at
    /// ([`State::can_seal_at`]) is ignored (a log replay checks first).
    pub fn seal_block_at(&mut self, timestamp: u64, capacity: Option<usize>) -> SealedBlock {
        self.pending();
        // Decided before the fees are credited (they count as the block's fee tokens).
        let capacity = capacity.filter(|&c| self.can_seal_at(c));
        self.credit_fees();
        let new_root = self.commit();
        let mut b = self.block.take().expect("pending block exists");
        if let Some(c) = capacity {
            b.params.capacity = c;
        }
        let pubdata = pubdata_for_block(&b.ops, b.params.capacity).expect("ops were validated and fit");
        let c = BlockCommitment {
            block_number: b.number,
            timestamp,
            old_root: b.old_root,
            new_root,
            pubdata_hash: pubdata_hash(&pubdata),
            onchain_hashes: onchain_hashes(&b.ops).expect("ops were validated"),
        };
        let commitment_hash = commitment(&c);
        self.last_block = b.number;
        SealedBlock {
            number: b.number,
            timestamp,
            capacity: b.params.capacity,
            ops: b.ops,
            pubdata,
            commitment: c,
            commitment_hash,
            public_input: public_input(&commitment_hash),
        }
    }
}
