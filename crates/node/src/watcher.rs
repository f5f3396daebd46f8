//! The watcher of one chain: reads the `ZkLink` contract's `NewPriorityRequest` events once they
//! are `confirmations` blocks deep and hands them to the sequencer in serial order, and its
//! `AuthPubkeyHashSet` events (on-chain ChangePubKey authorisations), which the sequencer records
//! before any tx may use them.
//!
//! Progress: the sequencer's log is the truth for which serial ids were applied (it refuses a
//! serial id it already applied, and the watcher asks it for the next one); the watcher persists
//! only the next L1 block to scan, after every request up to that block has been applied. A
//! restart therefore rescans at most one range and skips what the log already holds: nothing is
//! skipped, nothing is credited twice. A request in a block that is reorganised away before it
//! is `confirmations` deep is never read.

use std::time::Duration;

use zkl_contracts::ops::{OP_DEPOSIT, OP_FULL_EXIT};
use zkl_types::{Address, AuthFact, PriorityRequest, TokenRegistry};

use crate::l1::{ChainClient, L1Error, sleep_or_stop};
use crate::sequencer::SequencerHandle;
use crate::storage::Storage;
use std::sync::Arc;

/// Blocks per `eth_getLogs` query.
const MAX_RANGE: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// The next L1 block to scan.
    next_block: u64,
}

pub struct Watcher {
    client: ChainClient,
    storage: Arc<Storage>,
    sequencer: SequencerHandle,
    registry: TokenRegistry,
}

/// The `L1` table key of chain `chain`'s watcher progress (removed to rescan from the start).
pub fn progress_key(chain: zkl_types::ChainId) -> String {
    format!("watcher/{chain}")
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// The priority request a `NewPriorityRequest` event of chain `chain` describes (the contract's
/// pubdata layout, protocol.md §11, with the account of a deposit and the amount of a full exit
/// zero). The deposit's amount is converted back to the L1 token's units with the node's token
/// registry, which must agree with the contract (checked: the conversion must be exact).
pub fn parse_request(
    registry: &TokenRegistry,
    chain: u8,
    serial_id: u64,
    op_type: u8,
    pubdata: &[u8],
) -> Result<PriorityRequest, String> {
    if pubdata.len() != 60 || pubdata[0] != op_type || pubdata[1] != chain {
        return Err(format!("serial {serial_id}: malformed pubdata for op {op_type} of chain {chain}"));
    }
    match op_type {
        OP_DEPOSIT => {
            let (l1_token, l2_token) = (u16_at(pubdata, 6), u16_at(pubdata, 8));
            let mut amount = [0u8; 16];
            amount.copy_from_slice(&pubdata[10..26]);
            let l2_amount = u128::from_be_bytes(amount);
            let mut owner = [0u8; 32];
            owner.copy_from_slice(&pubdata[26..58]);
            let l1_amount =
                registry.to_l1(chain, l1_token, l2_amount).map_err(|e| format!("serial {serial_id}: {e}"))?;
            if registry.to_l2(chain, l1_token, l1_amount).ok() != Some(l2_amount) {
                return Err(format!("serial {serial_id}: token {l1_token} decimals differ between node and contract"));
            }
            Ok(PriorityRequest::Deposit {
                chain,
                serial_id,
                sub: pubdata[5],
                l1_token,
                l2_token,
                l1_amount,
                owner: Address(owner),
            })
        }
        OP_FULL_EXIT => {
            let l1_token = u16_at(pubdata, 38);
            let ours = registry.l1_decimals(chain, l1_token).map_err(|e| format!("serial {serial_id}: {e}"))?;
            if pubdata[58] != ours {
                return Err(format!(
                    "serial {serial_id}: token {l1_token} has {ours} decimals on the node, {} on the contract",
                    pubdata[58]
                ));
            }
            let account = u32::from_be_bytes([0, pubdata[2], pubdata[3], pubdata[4]]);
            let mut owner = [0u8; 32];
            owner.copy_from_slice(&pubdata[6..38]);
            Ok(PriorityRequest::FullExit {
                chain,
                serial_id,
                account,
                sub: pubdata[5],
                owner: Address(owner),
                l1_token,
                l2_token: u16_at(pubdata, 40),
            })
        }
        other => Err(format!("serial {serial_id}: unknown priority op type {other}")),
    }
}

impl Watcher {
    pub fn new(
        client: ChainClient,
        storage: Arc<Storage>,
        sequencer: SequencerHandle,
        registry: TokenRegistry,
    ) -> Self {
        Self { client, storage, sequencer, registry }
    }

    fn key(&self) -> String {
        progress_key(self.client.chain())
    }

    /// Scans the next confirmed range once; returns how many requests it handed to the
    /// sequencer.
    pub async fn poll_once(&self) -> Result<usize, L1Error> {
        let chain = self.client.chain();
        let confirmations = self.client.config.confirmations;
        let head = self.client.head().await?;
        let Some(safe) = (head + 1).checked_sub(confirmations) else { return Ok(0) };
        let progress: Option<Progress> = self.storage.l1_get(&self.key())?;
        let from = progress.map(|p| p.next_block).unwrap_or(self.client.config.start_block);
        if from > safe {
            return Ok(0);
        }
        let to = safe.min(from + MAX_RANGE - 1);
        let mut logs = self
            .client
            .zklink
            .NewPriorityRequest_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(|e| self.client.rpc(e))?;
        logs.sort_by_key(|(_, l)| (l.block_number, l.log_index));
        // Authorisations first: a ChangePubKey may only use a fact the node has recorded.
        let facts = self
            .client
            .zklink
            .AuthPubkeyHashSet_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(|e| self.client.rpc(e))?;
        for (ev, _) in facts {
            let fact = AuthFact {
                chain,
                owner: Address::from_evm(ev.owner.0.0),
                nonce: ev.nonce,
                pubkey_hash: zkl_crypto::PubKeyHash(ev.pubkeyHash.0),
            };
            if self.sequencer.auth_fact(fact).await.map_err(L1Error::Sequencer)? {
                tracing::info!(chain, owner = %fact.owner, nonce = fact.nonce, "on-chain ChangePubKey authorisation");
            }
        }
        let mut next = self.sequencer.next_serial(chain).await.map_err(L1Error::Sequencer)?;
        let mut handed = 0;
        for (ev, _) in logs {
            let serial = ev.serialId;
            if serial < next {
                continue; // already in the log (a rescan after a restart)
            }
            if serial > next {
                return Err(L1Error::Inconsistent {
                    chain,
                    msg: format!("priority request {serial} seen before {next} (missing events)"),
                });
            }
            let request = parse_request(&self.registry, chain, serial, ev.opType, &ev.pubdata)
                .map_err(|msg| L1Error::Inconsistent { chain, msg })?;
            self.sequencer.priority(request).await.map_err(|e| L1Error::Sequencer(format!("serial {serial}: {e}")))?;
            tracing::info!(chain, serial, "priority request applied");
            next += 1;
            handed += 1;
        }
        self.storage.l1_put(&self.key(), Some(&Progress { next_block: to + 1 }))?;
        Ok(handed)
    }

    /// Polls until asked to stop; errors are logged and retried (nothing is skipped).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.client.config.poll_ms);
        loop {
            let wait = match self.poll_once().await {
                Ok(n) if n > 0 => Duration::ZERO,
                Ok(_) => poll,
                Err(err) => {
                    tracing::warn!(chain = self.client.chain(), %err, "watcher");
                    poll
                }
            };
            if sleep_or_stop(wait, &mut stop).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zkl_contracts::ops;

    fn registry() -> TokenRegistry {
        crate::NodeConfig::demo("/nonexistent".into()).registry().unwrap_or_default()
    }

    /// The pubdata the contract emits: the §11 layout with the deposit's account zero.
    fn deposit_pubdata(chain: u8, token: u16, l2_amount: u128, owner: [u8; 32]) -> Vec<u8> {
        ops::deposit(chain, 0, 3, token, token, l2_amount, owner)
    }

    #[test]
    fn parses_the_contracts_events() {
        let r = registry();
        let owner = ops::owner32(alloy::primitives::Address::repeat_byte(7));
        // USDC (token 2) has 6 decimals: 1.5 USDC is 1.5e18 L2 units, 1_500_000 L1 units.
        let req = parse_request(&r, 1, 4, OP_DEPOSIT, &deposit_pubdata(1, 2, 1_500_000 * 10u128.pow(12), owner));
        assert_eq!(
            req,
            Ok(PriorityRequest::Deposit {
                chain: 1,
                serial_id: 4,
                sub: 3,
                l1_token: 2,
                l2_token: 2,
                l1_amount: 1_500_000,
                owner: Address(owner)
            })
        );
        let exit = ops::full_exit_with_decimals(2, 77, 1, owner, 1, 1, 0, 18);
        assert_eq!(
            parse_request(&r, 2, 9, OP_FULL_EXIT, &exit),
            Ok(PriorityRequest::FullExit {
                chain: 2,
                serial_id: 9,
                account: 77,
                sub: 1,
                owner: Address(owner),
                l1_token: 1,
                l2_token: 1
            })
        );
    }

    #[test]
    fn rejects_what_the_contract_cannot_have_emitted() {
        let r = registry();
        let owner = [1u8; 32];
        let good = deposit_pubdata(1, 2, 10u128.pow(18), owner);
        // Wrong chain byte, wrong op type, truncated, unknown op.
        assert!(parse_request(&r, 2, 0, OP_DEPOSIT, &good).is_err());
        assert!(parse_request(&r, 1, 0, OP_FULL_EXIT, &good).is_err());
        assert!(parse_request(&r, 1, 0, OP_DEPOSIT, &good[..59]).is_err());
        let mut unknown = good.clone();
        unknown[0] = 9;
        assert!(parse_request(&r, 1, 0, 9, &unknown).is_err());
        // An amount that is not a whole number of the node's L1 units: the node's decimals differ
        // from the contract's.
        let odd = deposit_pubdata(1, 2, 10u128.pow(18) + 1, owner);
        assert!(parse_request(&r, 1, 0, OP_DEPOSIT, &odd).is_err());
        // A token the node does not know on that chain (USDT, token 3, is on chain 2 only).
        assert!(parse_request(&r, 1, 0, OP_DEPOSIT, &deposit_pubdata(1, 3, 10u128.pow(18), owner)).is_err());
        // A full exit whose decimals byte differs from the node's registry (ETH has 18), or of a
        // token the node does not have on that chain.
        let exit = ops::full_exit_with_decimals(2, 77, 1, owner, 1, 1, 0, 6);
        assert_eq!(
            parse_request(&r, 2, 9, OP_FULL_EXIT, &exit),
            Err("serial 9: token 1 has 18 decimals on the node, 6 on the contract".into())
        );
        let exit = ops::full_exit_with_decimals(1, 77, 1, owner, 3, 3, 0, 6);
        assert!(parse_request(&r, 1, 9, OP_FULL_EXIT, &exit).is_err());
    }

    use proptest::prelude::*;

    // Fuzzing the event parser (`PROPTEST_CASES=1000000 cargo test --release -p zkl-node --lib
    // watcher` for a long run): arbitrary event bytes and mutations of real ones never panic;
    // whatever parses is a request of the event's chain and serial whose layout re-encodes to the
    // event's bytes.
    proptest! {
        #[test]
        fn arbitrary_events_never_panic(
            chain in any::<u8>(),
            op_type in any::<u8>(),
            pubdata in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let _ = parse_request(&registry(), chain, 1, op_type, &pubdata);
        }

        #[test]
        fn mutated_events_parse_consistently(
            exit in any::<bool>(),
            edits in proptest::collection::vec((0..60usize, any::<u8>()), 1..4),
        ) {
            let owner = ops::owner32(alloy::primitives::Address::repeat_byte(7));
            let mut bytes = if exit {
                ops::full_exit_with_decimals(1, 77, 1, owner, 1, 1, 0, 18)
            } else {
                deposit_pubdata(1, 2, 10u128.pow(18), owner)
            };
            for (i, v) in edits {
                bytes[i] = v;
            }
            let op_type = bytes[0];
            if let Ok(req) = parse_request(&registry(), 1, 5, op_type, &bytes) {
                prop_assert_eq!((req.chain(), req.serial_id()), (1, 5));
                let back = match req {
                    PriorityRequest::Deposit { sub, l1_token, l2_token, l1_amount, owner, .. } => {
                        let l2 = registry().to_l2(1, l1_token, l1_amount).unwrap();
                        ops::deposit(1, 0, sub, l1_token, l2_token, l2, owner.0)
                    }
                    PriorityRequest::FullExit { account, sub, owner, l1_token, l2_token, .. } => {
                        let d = registry().l1_decimals(1, l1_token).unwrap();
                        ops::full_exit_with_decimals(1, account, sub, owner.0, l1_token, l2_token, 0, d)
                    }
                };
                // The parser ignores the bytes the contract always writes as zero (a deposit's
                // account and the padding, a full exit's amount and padding).
                let significant = |b: &[u8]| -> Vec<u8> {
                    let mut b = b.to_vec();
                    if op_type == OP_DEPOSIT { b[2..5].fill(0); b[58..].fill(0) } else { b[42..58].fill(0); b[59..].fill(0) }
                    b
                };
                prop_assert_eq!(significant(&back), significant(&bytes));
            }
        }
    }
}
