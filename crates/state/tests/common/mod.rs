//! A small world of users for the state tests.
#![allow(dead_code)]

use zkl_state::testkit::*;
use zkl_state::{BlockParams, State, TxError};
use zkl_types::*;

#[derive(Clone)]
pub struct World {
    pub state: State,
    pub users: Vec<User>,
    pub ids: Vec<AccountId>,
    pub serial: u64,
}

impl World {
    /// `n` users; user 0 is an allowed matcher. Nobody has funds or keys yet.
    pub fn new(n: usize) -> Self {
        let fee_owner = User::new(999).address;
        let mut state = State::new(demo_registry(), fee_owner);
        state.set_block_params(BlockParams { capacity: 1 << 16, max_fee_tokens: 16, max_onchain_ops: 1 << 16 });
        let users: Vec<User> = (0..n as u64).map(User::new).collect();
        World { state, users, ids: Vec::new(), serial: 0 }
    }

    /// Deposits for user `i` and returns its account id.
    pub fn deposit(
        &mut self,
        i: usize,
        chain: ChainId,
        l1: TokenId,
        l2: TokenId,
        l1_amount: u128,
    ) -> Result<AccountId, TxError> {
        self.serial += 1;
        let op = self.state.execute_priority(&deposit(chain, self.serial, self.users[i].address, l1, l2, l1_amount))?;
        let Op::Deposit(d) = op else { panic!("deposit op expected") };
        if self.ids.len() <= i {
            self.ids.resize(i + 1, u32::MAX);
        }
        self.ids[i] = d.account;
        Ok(d.account)
    }

    /// Users 0..n each get 10 ETH on chain 1 and 10,000 USDC on chain 2, and set their keys.
    pub fn funded(n: usize) -> Self {
        let mut w = World::new(n);
        for i in 0..n {
            w.deposit(i, 1, ETH, ETH, 10 * ONE).unwrap();
            w.deposit(i, 2, USDC, USDC, 10_000_000_000).unwrap();
            let id = w.ids[i];
            let cpk = w.users[i].change_pubkey(id, 0, 1, ETH, 0);
            w.state.execute_tx(&cpk).unwrap();
        }
        let matcher = w.ids[0];
        w.state.set_matcher(matcher, true);
        w
    }

    pub fn id(&self, i: usize) -> AccountId {
        self.ids[i]
    }

    pub fn nonce(&self, i: usize) -> Nonce {
        self.state.account(self.ids[i]).unwrap().nonce
    }

    /// A fingerprint of everything a rejected tx must leave alone.
    pub fn snapshot(&mut self) -> (zkl_crypto::Fr, usize, Vec<(TokenId, u128)>, u32) {
        let root = self.state.root();
        let fees = self.state.pending_fees().iter().map(|(k, v)| (*k, *v)).collect();
        (root, self.state.pending_ops().len(), fees, self.state.account_count())
    }
}

/// Asserts that `f` fails with an error matching `pat` and changes nothing.
#[macro_export]
macro_rules! assert_rejected {
    ($world:expr, $f:expr, $pat:pat) => {{
        let before = $world.snapshot();
        let result = $f;
        match result {
            Err(e) => {
                assert!(matches!(e, $pat), "unexpected error: {e:?}");
                assert!(!e.to_string().is_empty() && !e.to_string().contains('\n'), "one-line message");
            }
            Ok(op) => panic!("expected rejection, got {op:?}"),
        }
        assert_eq!($world.snapshot(), before, "a rejected tx changed the state");
    }};
}
