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

use zkl_types::{Address, AuthFact, Op, PriorityRequest, TokenRegistry};

use std::sync::Arc;

use zkl_node::sequencer::SequencerHandle;
use zkl_node::settlement::progress_key;
use zkl_node::storage::Storage;

use crate::client::sleep_or_stop;
use crate::{ChainClient, L1Error};

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

/// The priority request a `NewPriorityRequest` event of chain `chain` describes: the op's
/// pubdata (protocol.md §11, read with the one layout table) with the account of a deposit and
/// the amount of a full exit zero. The deposit's amount is converted back to the L1 token's units
/// with the node's token registry, which must agree with the contract (checked: the conversion
/// must be exact, and a full exit's decimals byte must be the registry's).
pub fn parse_request(
    registry: &TokenRegistry,
    chain: u8,
    serial_id: u64,
    op_type: u8,
    pubdata: &[u8],
) -> Result<PriorityRequest, String> {
    let malformed =
        |why: String| format!("serial {serial_id}: malformed pubdata for op {op_type} of chain {chain}: {why}");
    let (op, len) = Op::decode(pubdata).map_err(|e| malformed(e.to_string()))?;
    if len != pubdata.len() || op.code() != op_type || op.onchain_chain() != Some(chain) {
        return Err(malformed("not one op of that type and chain".into()));
    }
    match op {
        Op::Deposit(d) if d.account != 0 => Err(malformed("a deposit's account is not zero".into())),
        Op::FullExit(f) if f.amount != 0 => Err(malformed("a full exit's amount is not zero".into())),
        Op::Deposit(d) => {
            let l1_amount =
                registry.to_l1(chain, d.l1_token, d.amount).map_err(|e| format!("serial {serial_id}: {e}"))?;
            if registry.to_l2(chain, d.l1_token, l1_amount).ok() != Some(d.amount) {
                return Err(format!(
                    "serial {serial_id}: token {} decimals differ between node and contract",
                    d.l1_token
                ));
            }
            Ok(PriorityRequest::Deposit {
                chain,
                serial_id,
                sub: d.sub,
                l1_token: d.l1_token,
                l2_token: d.l2_token,
                l1_amount,
                owner: d.owner,
            })
        }
        Op::FullExit(f) => {
            let ours = registry.l1_decimals(chain, f.l1_token).map_err(|e| format!("serial {serial_id}: {e}"))?;
            if f.l1_decimals != ours {
                return Err(format!(
                    "serial {serial_id}: token {} has {ours} decimals on the node, {} on the contract",
                    f.l1_token, f.l1_decimals
                ));
            }
            Ok(PriorityRequest::FullExit {
                chain,
                serial_id,
                account: f.account,
                sub: f.sub,
                owner: f.owner,
                l1_token: f.l1_token,
                l2_token: f.l2_token,
            })
        }
        other => Err(format!("serial {serial_id}: unknown priority op type {}", other.code())),
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
            self.sequencer.priority(request).await.map_err(|source| L1Error::Priority { serial, source })?;
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
    use zkl_types::op::{DepositOp, FullExitOp, code};

    fn registry() -> TokenRegistry {
        zkl_node::NodeConfig::demo("/nonexistent".into()).registry().unwrap_or_default()
    }

    /// The pubdata the contract emits for a deposit: the §11 layout with the account zero.
    fn deposit_pubdata(chain: u8, token: u16, l2_amount: u128, owner: [u8; 32]) -> Vec<u8> {
        let op = DepositOp {
            chain,
            account: 0,
            sub: 3,
            l1_token: token,
            l2_token: token,
            amount: l2_amount,
            owner: Address(owner),
        };
        Op::Deposit(op).pubdata().unwrap()
    }

    /// The pubdata the contract emits for a full exit: the amount zero.
    fn full_exit_pubdata(chain: u8, account: u32, owner: [u8; 32], token: u16, l1_decimals: u8) -> Vec<u8> {
        let op = FullExitOp {
            chain,
            account,
            sub: 1,
            owner: Address(owner),
            l1_token: token,
            l2_token: token,
            amount: 0,
            l1_decimals,
        };
        Op::FullExit(op).pubdata().unwrap()
    }

    #[test]
    fn parses_the_contracts_events() {
        let r = registry();
        let owner = Address::from_evm([7; 20]).0;
        // USDC (token 2) has 6 decimals: 1.5 USDC is 1.5e18 L2 units, 1_500_000 L1 units.
        let req = parse_request(&r, 1, 4, code::DEPOSIT, &deposit_pubdata(1, 2, 1_500_000 * 10u128.pow(12), owner));
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
        let exit = full_exit_pubdata(2, 77, owner, 1, 18);
        assert_eq!(
            parse_request(&r, 2, 9, code::FULL_EXIT, &exit),
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
        // Wrong chain byte, wrong op type, truncated, unknown op, a non-zero account.
        assert!(parse_request(&r, 2, 0, code::DEPOSIT, &good).is_err());
        assert!(parse_request(&r, 1, 0, code::FULL_EXIT, &good).is_err());
        assert!(parse_request(&r, 1, 0, code::DEPOSIT, &good[..59]).is_err());
        let mut unknown = good.clone();
        unknown[0] = 9;
        assert!(parse_request(&r, 1, 0, 9, &unknown).is_err());
        let mut with_account = good.clone();
        with_account[zkl_types::layout::deposit::ACCOUNT.offset] = 1;
        assert!(parse_request(&r, 1, 0, code::DEPOSIT, &with_account).is_err());
        // An amount that is not a whole number of the node's L1 units: the node's decimals differ
        // from the contract's.
        let odd = deposit_pubdata(1, 2, 10u128.pow(18) + 1, owner);
        assert!(parse_request(&r, 1, 0, code::DEPOSIT, &odd).is_err());
        // A token the node does not know on that chain (USDT, token 3, is on chain 2 only).
        assert!(parse_request(&r, 1, 0, code::DEPOSIT, &deposit_pubdata(1, 3, 10u128.pow(18), owner)).is_err());
        // A full exit whose decimals byte differs from the node's registry (ETH has 18), or of a
        // token the node does not have on that chain.
        let exit = full_exit_pubdata(2, 77, owner, 1, 6);
        assert_eq!(
            parse_request(&r, 2, 9, code::FULL_EXIT, &exit),
            Err("serial 9: token 1 has 18 decimals on the node, 6 on the contract".into())
        );
        let exit = full_exit_pubdata(1, 77, owner, 3, 6);
        assert!(parse_request(&r, 1, 9, code::FULL_EXIT, &exit).is_err());
    }

    use proptest::prelude::*;

    // Fuzzing the event parser (`PROPTEST_CASES=1000000 cargo test --release -p zkl-l1 --lib
    // watcher` for a long run): arbitrary event bytes and mutations of real ones never panic;
    // whatever parses is a request of the event's chain and serial that re-encodes to exactly the
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
            let owner = Address::from_evm([7; 20]).0;
            let mut bytes = if exit { full_exit_pubdata(1, 77, owner, 1, 18) } else { deposit_pubdata(1, 2, 10u128.pow(18), owner) };
            for (i, v) in edits {
                bytes[i] = v;
            }
            if let Ok(req) = parse_request(&registry(), 1, 5, bytes[0], &bytes) {
                prop_assert_eq!((req.chain(), req.serial_id()), (1, 5));
                let back = match req {
                    PriorityRequest::Deposit { sub, l1_token, l2_token, l1_amount, owner, .. } => {
                        let amount = registry().to_l2(1, l1_token, l1_amount).unwrap();
                        Op::Deposit(DepositOp { chain: 1, account: 0, sub, l1_token, l2_token, amount, owner })
                    }
                    PriorityRequest::FullExit { account, sub, owner, l1_token, l2_token, .. } => {
                        let l1_decimals = registry().l1_decimals(1, l1_token).unwrap();
                        Op::FullExit(FullExitOp { chain: 1, account, sub, owner, l1_token, l2_token, amount: 0, l1_decimals })
                    }
                };
                prop_assert_eq!(back.pubdata().unwrap(), bytes);
            }
        }
    }
}
