//! The committed blocks, read from the data-availability chain's `commitBlocks` calldata:
//! found through the `BlockCommit` events (scanned in pages of L1 blocks), decoded through the
//! one pubdata layout, and kept in an optional cache so that a rerun fetches only what is new.
//!
//! The cache ([`BlockCache`], `DATA_DIR/l1-blocks.redb`) is the processed prefix of the event
//! stream: every block number with its newest commit seen so far, and the L1 height the scan
//! reached. A later commit of the same number (after a revert) overwrites the earlier one, so a
//! resumed scan ends where a fresh one would; blocks that are final are never reverted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use indicatif::ProgressBar;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use zkl_contracts::bindings::ZkLink::commitBlocksCall;
use zkl_types::layout::CHUNK_BYTES;
use zkl_types::op::Op;

use crate::recover::CommittedBlock;
use crate::{Connection, ExodusError};

/// L1 blocks per `eth_getLogs` query (public RPCs cap the range).
pub const LOG_PAGE: u64 = 10_000;

/// The blocks one `commitBlocks` call carries, from its calldata, each with its ops decoded.
pub fn blocks_of_commit(input: &[u8]) -> Result<Vec<CommittedBlock>, ExodusError> {
    let call = commitBlocksCall::abi_decode(input)
        .map_err(|e| ExodusError::rebuild(0, format!("commitBlocks calldata: {e}")))?;
    call.newBlocks
        .iter()
        .map(|b| {
            Ok(CommittedBlock {
                number: b.blockNumber,
                timestamp: b.timestamp,
                new_root: b.newStateRoot,
                ops: Op::decode_block(&b.pubdata).map_err(|e| ExodusError::rebuild(b.blockNumber, e))?,
                capacity: b.pubdata.len() / CHUNK_BYTES,
            })
        })
        .collect()
}

const BLOCKS: TableDefinition<u32, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The data-availability chain's committed blocks seen so far, on disk (module docs).
pub struct BlockCache {
    db: Database,
}

fn encode_block(b: &CommittedBlock) -> Result<Vec<u8>, ExodusError> {
    let pubdata = b.l2_block().pubdata().map_err(|e| ExodusError::rebuild(b.number, e))?;
    let mut out = Vec::with_capacity(44 + pubdata.len());
    out.extend(b.timestamp.to_be_bytes());
    out.extend(b.new_root.0);
    out.extend((b.capacity as u32).to_be_bytes());
    out.extend(pubdata);
    Ok(out)
}

fn decode_block(number: u32, bytes: &[u8]) -> Result<CommittedBlock, String> {
    if bytes.len() < 44 {
        return Err(format!("block {number} is truncated"));
    }
    let ops = Op::decode_block(&bytes[44..]).map_err(|e| format!("block {number}: {e}"))?;
    Ok(CommittedBlock {
        number,
        timestamp: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        new_root: B256::from_slice(&bytes[8..40]),
        ops,
        capacity: u32::from_be_bytes(bytes[40..44].try_into().expect("4 bytes")) as usize,
    })
}

impl BlockCache {
    /// Opens (or creates) `dir/l1-blocks.redb` for the deployment named `deployment`; a cache
    /// of another deployment is refused.
    pub fn open(dir: &Path, deployment: &str) -> Result<Self, ExodusError> {
        let path = dir.join("l1-blocks.redb");
        let fail = |e: &dyn std::fmt::Display| ExodusError::DataDir(format!("{}: {e}", path.display()));
        let db = Database::create(&path).map_err(|e| fail(&e))?;
        let w = db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut meta = w.open_table(META).map_err(|e| fail(&e))?;
            w.open_table(BLOCKS).map_err(|e| fail(&e))?;
            let held = meta.get("deployment").map_err(|e| fail(&e))?.map(|v| v.value().to_vec());
            match held {
                Some(d) if d != deployment.as_bytes() => {
                    let msg = format!(
                        "holds the blocks of another deployment ({}); use another --data-dir",
                        String::from_utf8_lossy(&d)
                    );
                    return Err(fail(&msg));
                }
                Some(_) => {}
                None => {
                    meta.insert("deployment", deployment.as_bytes()).map_err(|e| fail(&e))?;
                }
            }
        }
        w.commit().map_err(|e| fail(&e))?;
        Ok(BlockCache { db })
    }

    fn fail(&self, e: impl std::fmt::Display) -> ExodusError {
        ExodusError::DataDir(format!("l1-blocks.redb: {e}"))
    }

    /// The first L1 block not scanned yet, and every cached block.
    pub fn load(&self) -> Result<(u64, BTreeMap<u32, CommittedBlock>), ExodusError> {
        let r = self.db.begin_read().map_err(|e| self.fail(e))?;
        let meta = r.open_table(META).map_err(|e| self.fail(e))?;
        let scanned = match meta.get("scanned").map_err(|e| self.fail(e))? {
            Some(v) => u64::from_be_bytes(v.value().try_into().map_err(|_| self.fail("bad scan height"))?),
            None => 0,
        };
        let mut blocks = BTreeMap::new();
        for entry in r.open_table(BLOCKS).map_err(|e| self.fail(e))?.iter().map_err(|e| self.fail(e))? {
            let (k, v) = entry.map_err(|e| self.fail(e))?;
            let b = decode_block(k.value(), v.value()).map_err(|e| self.fail(e))?;
            blocks.insert(b.number, b);
        }
        Ok((scanned, blocks))
    }

    /// Records `blocks` (newer commits replace older ones) and that L1 blocks below `scanned`
    /// have been read, atomically.
    pub fn store(&self, blocks: &[&CommittedBlock], scanned: u64) -> Result<(), ExodusError> {
        let w = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut t = w.open_table(BLOCKS).map_err(|e| self.fail(e))?;
            for b in blocks {
                t.insert(b.number, encode_block(b)?.as_slice()).map_err(|e| self.fail(e))?;
            }
            let mut meta = w.open_table(META).map_err(|e| self.fail(e))?;
            meta.insert("scanned", scanned.to_be_bytes().as_slice()).map_err(|e| self.fail(e))?;
        }
        w.commit().map_err(|e| self.fail(e))
    }
}

/// Blocks 1..=`upto` from the data-availability chain's commit calldata (the newest commit of
/// each number, so reverted blocks drop out), through `cache` when given; `progress` counts
/// blocks found.
pub async fn committed_blocks(
    da: &Connection,
    upto: u32,
    cache: Option<&BlockCache>,
    progress: &ProgressBar,
) -> Result<Vec<CommittedBlock>, ExodusError> {
    let (mut from, mut blocks) = match cache {
        Some(c) => c.load()?,
        None => (0, BTreeMap::new()),
    };
    // Blocks 1..=have are all known; keys are only ever added, so `have` only grows.
    let mut have = 0u32;
    let advance = |blocks: &BTreeMap<u32, CommittedBlock>, have: &mut u32| {
        while *have < upto && blocks.contains_key(&(*have + 1)) {
            *have += 1;
        }
    };
    advance(&blocks, &mut have);
    progress.set_length(u64::from(upto));
    progress.set_position(u64::from(have));
    let latest = da.provider.get_block_number().await.map_err(|e| da.rpc(e))?;
    // The scan always reaches the latest block: a block below `upto` that is not final yet may
    // have been reverted and committed again further on.
    while from <= latest {
        let to = latest.min(from + LOG_PAGE - 1);
        let logs = da.zklink.BlockCommit_filter().from_block(from).to_block(to).query().await.map_err(|e| da.rpc(e))?;
        let mut calls: HashMap<B256, Vec<CommittedBlock>> = HashMap::new();
        let mut page: Vec<u32> = Vec::new();
        for (ev, log) in logs {
            let hash = log.transaction_hash.ok_or_else(|| da.rpc("a log without its transaction"))?;
            if let std::collections::hash_map::Entry::Vacant(slot) = calls.entry(hash) {
                slot.insert(blocks_of_commit(&da.input_of(Some(hash)).await?)?);
            }
            let b = calls[&hash]
                .iter()
                .find(|b| b.number == ev.blockNumber)
                .ok_or_else(|| ExodusError::rebuild(ev.blockNumber, "its commit transaction does not carry it"))?;
            // Logs come in chain order: a later commit of the same number (after a revert) wins.
            blocks.insert(b.number, b.clone());
            page.push(b.number);
        }
        from = to + 1;
        if let Some(c) = cache {
            let new: Vec<&CommittedBlock> = page.iter().map(|n| &blocks[n]).collect();
            c.store(&new, from)?;
        }
        advance(&blocks, &mut have);
        progress.set_position(u64::from(have));
    }
    if have < upto {
        return Err(ExodusError::rebuild(have + 1, "not committed on the data-availability chain"));
    }
    Ok(blocks.into_values().take(upto as usize).collect())
}
