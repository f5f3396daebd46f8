//! The one replay of the node's log. The state is the fold of the log: recovery, the operator's
//! rewind and the prover queue's block inputs all apply entries through [`Replay::apply`]
//! (which refuses a priority request whose serial was already applied, then
//! [`LogEntry::apply`]), so they cannot drift apart.

use std::collections::HashMap;
use std::sync::Mutex;

use zkl_state::{SealedBlock, State};
use zkl_types::{ChainId, PriorityRequest, SignedTx};

use crate::storage::{Applied, LogEntry, Storage, StorageError};

/// Refuses a priority request whose serial id was already applied (or an older one).
pub(crate) fn check_serial(next_serial: &HashMap<ChainId, u64>, request: &PriorityRequest) -> Result<(), String> {
    let next = next_serial.get(&request.chain()).copied().unwrap_or(0);
    if request.serial_id() < next {
        return Err(format!(
            "duplicate priority request: chain {} serial {} already applied (next is {next})",
            request.chain(),
            request.serial_id()
        ));
    }
    Ok(())
}

/// A state rebuilt from the log, `next_seq` being the first entry it has not applied.
#[derive(Clone)]
pub struct Replay {
    pub state: State,
    pub next_seq: u64,
    /// Per chain, the next priority serial.
    pub next_serial: HashMap<ChainId, u64>,
}

impl Replay {
    pub fn new(genesis: State) -> Self {
        Replay { state: genesis, next_seq: 0, next_serial: HashMap::new() }
    }

    /// Applies log entry `seq` (the entries must come in order).
    pub fn apply(&mut self, seq: u64, entry: &LogEntry) -> Result<Applied, StorageError> {
        let fail = |e: &dyn std::fmt::Display| StorageError(format!("log entry {seq} no longer applies: {e}"));
        if let LogEntry::Priority { request } = entry {
            check_serial(&self.next_serial, request).map_err(|e| fail(&e))?;
            self.next_serial.insert(request.chain(), request.serial_id() + 1);
        }
        let applied = entry.apply(&mut self.state).map_err(|e| fail(&e))?;
        self.next_seq = seq + 1;
        Ok(applied)
    }

    /// Applies `entries` in order.
    pub fn apply_all<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (u64, &'a LogEntry)>,
    ) -> Result<(), StorageError> {
        for (seq, entry) in entries {
            self.apply(seq, entry)?;
        }
        Ok(())
    }
}

/// What a block's proof is built from: the state before the block, the sealed block, and per
/// op the signed tx it came from (`None` for a priority request).
pub struct BlockInputs<'a> {
    pub pre: &'a State,
    pub block: &'a SealedBlock,
    pub txs: &'a [Option<SignedTx>],
}

/// Replays the log up to any sealed block, keeping a replica so that blocks asked for in order
/// cost one pass over the log. Asking for an earlier block than the replica has passed, or
/// after the node rewound blocks the replica had applied, rebuilds it from genesis.
pub struct BlockReplayer {
    genesis: State,
    replica: Mutex<Option<Replay>>,
}

impl BlockReplayer {
    pub fn new(genesis: State) -> Self {
        BlockReplayer { genesis, replica: Mutex::new(None) }
    }

    /// Calls `f` with the inputs of sealed block `number` of the log in `storage`.
    pub fn with_block<R>(
        &self,
        storage: &Storage,
        number: u32,
        f: impl FnOnce(BlockInputs<'_>) -> R,
    ) -> Result<R, StorageError> {
        let mut guard = self.replica.lock().unwrap_or_else(|p| p.into_inner());
        // The replica's last block must still be the stored one (the node may have rewound).
        let current = |r: &mut Replay| {
            let last = r.state.last_block();
            last == 0
                || storage
                    .block(last)
                    .ok()
                    .flatten()
                    .is_some_and(|b| b.new_root == zkl_crypto::fr_to_hex(&r.state.root()))
        };
        let reusable = guard.take().filter(|r| r.state.last_block() < number);
        let mut r = match reusable.map(|mut r| (current(&mut r), r)) {
            Some((true, r)) => r,
            _ => Replay::new(self.genesis.clone()),
        };
        let mut pre: Option<State> = None;
        let mut txs = Vec::new();
        for (seq, entry) in storage.log_from(r.next_seq)? {
            if pre.is_none() && r.state.last_block() + 1 == number && !matches!(entry, LogEntry::Seal { .. }) {
                pre = Some(r.state.clone());
            }
            match r.apply(seq, &entry)? {
                Applied::Tx(_) if pre.is_some() => {
                    if let LogEntry::Tx { tx } = entry {
                        txs.push(Some(tx));
                    }
                }
                Applied::Priority(_) if pre.is_some() => txs.push(None),
                Applied::Sealed(sealed) if sealed.number == number => {
                    let pre = pre.ok_or_else(|| StorageError(format!("block {number} holds no ops")))?;
                    let out = f(BlockInputs { pre: &pre, block: &sealed, txs: &txs });
                    *guard = Some(r);
                    return Ok(out);
                }
                _ => {}
            }
        }
        Err(StorageError(format!("block {number} is not sealed in the log")))
    }
}
