//! The state-machine throughput benchmark behind `zkl bench state` and the criterion bench:
//! pre-fund many accounts, then apply pre-signed transfers and order matchings in blocks, with
//! signature checks and the root computed per block.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use zkl_crypto::{Fr, PrivateKey, PublicKey};
use zkl_types::op::{DepositOp, Op};
use zkl_types::*;

use crate::block::BlockParams;
use crate::state::State;
use crate::testkit::{ETH, ONE, USDC, demo_registry};

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    pub accounts: u32,
    pub blocks: u32,
    pub block_size: u32,
    /// Distinct signing keys shared round-robin by the accounts (key generation is set-up cost).
    pub keys: u32,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig { accounts: 100_000, blocks: 5, block_size: 1_000, keys: 1_000 }
    }
}

/// Time spent per phase, summed over blocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// Signature checks (parallel, including message hashing).
    pub verify: Duration,
    /// Applying ops (sequential, no hashing).
    pub apply: Duration,
    /// Root computation at block end (parallel over accounts).
    pub root: Duration,
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub accounts: u32,
    pub blocks: u32,
    pub transfers_per_s: f64,
    pub orders_per_s: f64,
    pub transfer_phases: Phases,
    pub order_phases: Phases,
    pub setup: Duration,
    pub final_root: Fr,
}

const MATCHER: AccountId = 2;

fn account_key(keys: &[(PrivateKey, PublicKey)], id: AccountId) -> &(PrivateKey, PublicKey) {
    &keys[id as usize % keys.len()]
}

fn owner_of(id: AccountId) -> Address {
    let mut a = [0u8; 20];
    a[..4].copy_from_slice(&id.to_be_bytes());
    a[19] = 1;
    Address::from_evm(a)
}

/// A tiny deterministic generator (xorshift) so runs are reproducible without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Builds the funded state: every account holds 1,000 ETH and 1,000,000 USDC in sub-account 0
/// and has a signing key.
pub fn funded_state(config: &BenchConfig, progress: &dyn Fn(&str)) -> (State, Vec<(PrivateKey, PublicKey)>) {
    progress("generating keys");
    let keys: Vec<(PrivateKey, PublicKey)> = (0..config.keys)
        .into_par_iter()
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let k = PrivateKey::from_bytes(seed);
            let p = k.public_key();
            (k, p)
        })
        .collect();
    let mut state = State::new(demo_registry(), Address::from_evm([0xfe; 20]));
    progress("funding accounts");
    for i in 0..config.accounts {
        let id = i + 2;
        for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 1_000_000 * ONE)] {
            let op = Op::Deposit(DepositOp {
                chain,
                account: id,
                sub: 0,
                l1_token: token,
                l2_token: token,
                amount,
                owner: owner_of(id),
            });
            state.apply_op(&op).expect("bench deposit is valid");
        }
        state.genesis_set_key(id, account_key(&keys, id).1).expect("account exists");
    }
    state.set_matcher(MATCHER, true);
    progress("computing the genesis root");
    state.commit();
    (state, keys)
}

fn run_blocks(state: &mut State, blocks: &[Vec<SignedTx>], ts: &mut u64) -> Phases {
    let mut phases = Phases::default();
    for txs in blocks {
        let t0 = Instant::now();
        let verified: Vec<_> = txs.par_iter().map(|t| state.verify_signatures(t)).collect();
        let t1 = Instant::now();
        for (tx, keys) in txs.iter().zip(verified) {
            let keys = keys.expect("bench signatures are valid");
            state.execute_verified(tx, &keys).expect("bench tx is valid");
        }
        let t2 = Instant::now();
        *ts += 1;
        state.seal_block(*ts);
        let t3 = Instant::now();
        phases.verify += t1 - t0;
        phases.apply += t2 - t1;
        phases.root += t3 - t2;
    }
    phases
}

fn total(p: &Phases) -> f64 {
    (p.verify + p.apply + p.root).as_secs_f64()
}

/// Runs the benchmark.
pub fn run(config: &BenchConfig, progress: &dyn Fn(&str)) -> BenchReport {
    let t_setup = Instant::now();
    let (mut state, keys) = funded_state(config, progress);
    let setup = t_setup.elapsed();
    let user = |rng: &mut Rng| 3 + rng.below(config.accounts - 1);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let capacity = (config.block_size as usize) * 2;
    state.set_block_params(BlockParams { capacity, max_fee_tokens: 16, max_onchain_ops: capacity });

    // Transfers: random distinct sender/receiver, each sender's nonces in order.
    progress("signing transfers");
    let mut nonces = vec![0u32; config.accounts as usize + 2];
    let transfer_blocks: Vec<Vec<SignedTx>> = (0..config.blocks)
        .map(|_| {
            let plan: Vec<(AccountId, AccountId, Nonce)> = (0..config.block_size)
                .map(|_| {
                    let from = user(&mut rng);
                    let mut to = user(&mut rng);
                    if to == from {
                        to = if from == 3 { 4 } else { 3 };
                    }
                    let n = nonces[from as usize];
                    nonces[from as usize] += 1;
                    (from, to, n)
                })
                .collect();
            plan.par_iter()
                .map(|(from, to, nonce)| {
                    let tx = Transfer {
                        account: *from,
                        from_sub: 0,
                        to: owner_of(*to),
                        to_sub: 0,
                        token: ETH,
                        amount: ONE / 1000,
                        fee: ONE / 100_000,
                        nonce: *nonce,
                    };
                    Tx::Transfer(tx).sign(&account_key(&keys, *from).0)
                })
                .collect()
        })
        .collect();
    progress("applying transfers");
    let mut ts = 0;
    let transfer_phases = run_blocks(&mut state, &transfer_blocks, &mut ts);

    // Order matchings: a fresh slot per order, filled completely (maker sells ETH at 2,000).
    progress("signing order matchings");
    let mut next_slot = vec![0u16; config.accounts as usize + 2];
    let price = 2_000 * ONE;
    let order_blocks: Vec<Vec<SignedTx>> = (0..config.blocks)
        .map(|_| {
            let plan: Vec<(AccountId, SlotId, AccountId, SlotId)> = (0..config.block_size)
                .map(|_| {
                    let maker = user(&mut rng);
                    let mut taker = user(&mut rng);
                    if taker == maker {
                        taker = if maker == 3 { 4 } else { 3 };
                    }
                    let ms = next_slot[maker as usize];
                    next_slot[maker as usize] += 1;
                    let tslot = next_slot[taker as usize];
                    next_slot[taker as usize] += 1;
                    (maker, ms, taker, tslot)
                })
                .collect();
            plan.par_iter()
                .map(|(maker, ms, taker, tslot)| {
                    let order = |account: AccountId, slot: SlotId, is_sell: bool| {
                        let o = Order {
                            account,
                            sub: 0,
                            slot,
                            nonce: 0,
                            base: ETH,
                            quote: USDC,
                            amount: ONE / 100,
                            price,
                            is_sell,
                            maker_fee_bps: 5,
                            taker_fee_bps: 10,
                        };
                        o.sign(&account_key(&keys, account).0)
                    };
                    let tx = OrderMatching {
                        matcher: MATCHER,
                        maker: order(*maker, *ms, true),
                        taker: order(*taker, *tslot, false),
                        base_fill: ONE / 100,
                        quote_fill: 20 * ONE,
                        maker_residue_before: 0,
                        taker_residue_before: 0,
                    };
                    Tx::OrderMatching(Box::new(tx)).sign(&account_key(&keys, MATCHER).0)
                })
                .collect()
        })
        .collect();
    progress("applying order matchings");
    let order_phases = run_blocks(&mut state, &order_blocks, &mut ts);

    let n = f64::from(config.blocks * config.block_size);
    BenchReport {
        accounts: config.accounts,
        blocks: config.blocks * 2,
        transfers_per_s: n / total(&transfer_phases),
        orders_per_s: n / total(&order_phases),
        transfer_phases,
        order_phases,
        setup,
        final_root: state.root(),
    }
}
