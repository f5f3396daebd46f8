//! A state machine with a matcher and four funded traders, and the engine's view of it.
#![allow(dead_code)]

use zkl_crypto::PubKeyHash;
use zkl_exchange::engine::{NodeView, Unavailable};
use zkl_state::State;
use zkl_state::testkit::{ETH, ONE, USDC, User, demo_registry, deposit};
use zkl_types::{AccountId, Nonce, SlotId, SubAccountId, TokenId};

/// ETH/USDC (both 18 decimals on L2): ticks of 0.01 USDC, lots of 0.0001 ETH.
pub const TICK: u128 = ONE / 100;
pub const LOT: u128 = ONE / 10_000;

pub struct World {
    pub state: State,
    /// User 0 is the matcher; 1..=4 trade.
    pub users: Vec<User>,
    pub ids: Vec<AccountId>,
}

impl World {
    /// Users 0..=4 with 1,000 ETH and 10,000,000 USDC each and their L2 keys; user 0 is an
    /// allowed matcher.
    pub fn new() -> Self {
        let mut state = State::new(demo_registry(), User::new(999).address);
        state.set_block_params(zkl_state::BlockParams {
            capacity: 1 << 16,
            max_fee_tokens: 16,
            max_onchain_ops: 1 << 16,
        });
        let users: Vec<User> = (0..5).map(User::new).collect();
        let mut ids = Vec::new();
        let mut serial = 0;
        for u in &users {
            let mut id = 0;
            for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 10_000_000_000_000)] {
                serial += 1;
                let zkl_types::Op::Deposit(d) =
                    state.execute_priority(&deposit(chain, serial, u.address, token, token, amount)).unwrap()
                else {
                    panic!("a deposit")
                };
                id = d.account;
            }
            state.execute_tx(&u.change_pubkey(id, 0, 1, ETH, 0)).unwrap();
            ids.push(id);
        }
        state.set_matcher(ids[0], true);
        World { state, users, ids }
    }

    /// Every trader's balance of `token` plus the fees collected: what trading must conserve.
    pub fn total(&self, token: TokenId) -> u128 {
        let traders: u128 = self.ids.iter().map(|&id| self.state.balance(id, 0, token)).sum();
        traders + self.state.pending_fees().get(&token).copied().unwrap_or(0)
    }
}

/// The engine's view of the state machine.
pub struct View<'a>(pub &'a State);

impl NodeView for View<'_> {
    fn pubkey_hash(&self, account: AccountId) -> Result<Option<PubKeyHash>, Unavailable> {
        Ok(self.0.account(account).and_then(|a| a.pubkey).map(|k| k.pubkey_hash()))
    }
    fn balance(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> Result<u128, Unavailable> {
        Ok(self.0.balance(account, sub, token))
    }
    fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> Result<(Nonce, u128), Unavailable> {
        let s = self.0.slot(account, sub, slot);
        Ok((s.nonce, s.residue))
    }
}
