//! The exodus claim rule: what a user's balance pays on each chain once the rollup has stopped.
//!
//! A user claims the balance `b = balance(account, sub, l2_token)` at the exodus state root.
//! The L2 token belongs to a *pool* of up to four L1 token ids `members = [m0, m1, m2, m3]`
//! (0 = unused slot), which the contract supplies: the token's merge group's members, or
//! `[l2_token, 0, 0, 0]` for an ungrouped token. With the liquidity
//! `L(c, t) = balance(GLOBAL_ACCOUNT, sub = c, token = t)` ([`State::liquidity`]) and the pool
//! total `P = Σ_{c=1..=4} Σ_i L(c, m_i)`, the claim on chain `chain` pays, for each slot `i`,
//!
//! ```text
//! a_i = floor(b · L(chain, m_i) / P)        (L2 units)
//! ```
//!
//! of L1 token `m_i`. Summed over the chains a claim pays at most `b`, and as long as the
//! pool's balances do not exceed its liquidity (the state machine's conservation of value) all
//! claims on `(chain, m_i)` together pay at most `L(chain, m_i)`.
//!
//! The exit circuit (`zkl_circuit::exit`) accepts exactly the claims this rule accepts:
//! chain in 1..=4, sub-account below 32, an owned account whose owner is an EVM address (the
//! public input is the 160-bit address), every liquidity leaf within `MAX_LIQUIDITY`, `P > 0`,
//! and every amount within `MAX_LIQUIDITY` (which a balance within the pool's liquidity
//! guarantees: `a_i ≤ L(chain, m_i)`).

use alloy_primitives::U256;
use zkl_types::{
    AccountId, Address, ChainId, GLOBAL_ACCOUNT, MAX_CHAINS, MAX_LIQUIDITY, MAX_SUB_ACCOUNT_ID, SubAccountId, TokenId,
};

use crate::State;

/// Slots of an exodus pool (L1 tokens that pay out one L2 token).
pub const POOL_MEMBERS: usize = 4;
/// Chains an exodus pool spans (`MAX_CHAINS`).
pub const POOL_CHAINS: usize = MAX_CHAINS as usize;

/// Why a claim is not possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExodusError {
    #[error("chain {0} is out of range (1..={max})", max = MAX_CHAINS)]
    InvalidChain(ChainId),
    #[error("sub-account {0} is out of range (0..=31)")]
    InvalidSubAccount(SubAccountId),
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("account {0} has no owner (the global asset account) and cannot claim")]
    NoOwner(AccountId),
    #[error("the owner {1} of account {0} is not an EVM address and cannot claim")]
    NotEvmOwner(AccountId, Address),
    #[error("liquidity {value} of chain {chain}, pool slot {slot} exceeds 2^112 - 1")]
    LiquidityTooLarge { chain: ChainId, slot: usize, value: u128 },
    #[error("the pool holds no liquidity on any chain: nothing can be claimed")]
    EmptyPool,
    #[error("the claim of pool slot {slot} ({amount}) exceeds 2^112 - 1: the balance exceeds the pool's liquidity")]
    AmountTooLarge { slot: usize, amount: u128 },
}

/// The amounts a claim of `balance` pays on `chain`: `a_i = floor(balance · L(chain, m_i) / P)`
/// with `liquidity[c - 1][i] = L(c, m_i)` and `P` the sum of all sixteen entries.
///
/// Errors: `chain` outside 1..=4, an entry above `MAX_LIQUIDITY`, `P = 0`, or an amount above
/// `MAX_LIQUIDITY` (possible only when the balance exceeds the pool's liquidity).
pub fn exodus_amounts(
    balance: u128,
    liquidity: &[[u128; POOL_MEMBERS]; POOL_CHAINS],
    chain: ChainId,
) -> Result<[u128; POOL_MEMBERS], ExodusError> {
    if !(1..=MAX_CHAINS).contains(&chain) {
        return Err(ExodusError::InvalidChain(chain));
    }
    let mut pool: u128 = 0;
    for (c, row) in (1..=MAX_CHAINS).zip(liquidity) {
        for (slot, &value) in row.iter().enumerate() {
            if value > MAX_LIQUIDITY {
                return Err(ExodusError::LiquidityTooLarge { chain: c, slot, value });
            }
            // 16 terms below 2^112: the sum stays below 2^116.
            pool += value;
        }
    }
    if pool == 0 {
        return Err(ExodusError::EmptyPool);
    }
    let row = &liquidity[usize::from(chain - 1)];
    let mut amounts = [0u128; POOL_MEMBERS];
    for (slot, (a, &l)) in amounts.iter_mut().zip(row).enumerate() {
        // b · L < 2^240 fits 256 bits; the quotient is at most b (L ≤ P), so it fits u128.
        let q = U256::from(balance) * U256::from(l) / U256::from(pool);
        let amount = u128::try_from(q).map_err(|_| ExodusError::AmountTooLarge { slot, amount: u128::MAX })?;
        if amount > MAX_LIQUIDITY {
            return Err(ExodusError::AmountTooLarge { slot, amount });
        }
        *a = amount;
    }
    Ok(amounts)
}

/// A claim the rule accepts, with everything the exit proof shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExodusClaim {
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub l2_token: TokenId,
    /// The pool's L1 tokens (0 = unused slot).
    pub members: [TokenId; POOL_MEMBERS],
    /// The account's owner (an EVM address), who is paid.
    pub owner: Address,
    /// The claimed balance `b`.
    pub balance: u128,
    /// `liquidity[c - 1][i] = L(c, members[i])`.
    pub liquidity: [[u128; POOL_MEMBERS]; POOL_CHAINS],
    /// `amounts[i]`: what the claim pays of `members[i]` on `chain` (L2 units).
    pub amounts: [u128; POOL_MEMBERS],
}

impl ExodusClaim {
    /// The pool total `P`.
    pub fn pool(&self) -> u128 {
        self.liquidity.iter().flatten().sum()
    }
}

impl State {
    /// `liquidity[c - 1][i] = L(c, members[i])` for the chains 1..=4 (0 for an unused slot).
    pub fn pool_liquidity(&self, members: [TokenId; POOL_MEMBERS]) -> [[u128; POOL_MEMBERS]; POOL_CHAINS] {
        let mut out = [[0; POOL_MEMBERS]; POOL_CHAINS];
        for (c, row) in (1..=MAX_CHAINS).zip(out.iter_mut()) {
            for (l, m) in row.iter_mut().zip(members) {
                *l = self.liquidity(c, m);
            }
        }
        out
    }

    /// The claim of (`account`, `sub`, `l2_token`) on `chain` with the pool `members`, under
    /// the rule of this module (see [`exodus_amounts`]). A zero balance is a valid claim of
    /// nothing.
    pub fn exodus_claim(
        &self,
        chain: ChainId,
        account: AccountId,
        sub: SubAccountId,
        l2_token: TokenId,
        members: [TokenId; POOL_MEMBERS],
    ) -> Result<ExodusClaim, ExodusError> {
        if !(1..=MAX_CHAINS).contains(&chain) {
            return Err(ExodusError::InvalidChain(chain));
        }
        if sub > MAX_SUB_ACCOUNT_ID {
            return Err(ExodusError::InvalidSubAccount(sub));
        }
        let a = self.account(account).ok_or(ExodusError::UnknownAccount(account))?;
        if a.owner == Address::ZERO || account == GLOBAL_ACCOUNT {
            return Err(ExodusError::NoOwner(account));
        }
        if a.owner.to_evm().is_none() {
            return Err(ExodusError::NotEvmOwner(account, a.owner));
        }
        let balance = self.balance(account, sub, l2_token);
        let liquidity = self.pool_liquidity(members);
        let amounts = exodus_amounts(balance, &liquidity, chain)?;
        Ok(ExodusClaim { chain, account, sub, l2_token, members, owner: a.owner, balance, liquidity, amounts })
    }

    /// Whether every change is committed (the tree roots and Merkle proofs are current).
    pub fn is_committed(&self) -> bool {
        self.accounts.iter().all(|a| !a.dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP: u128 = MAX_LIQUIDITY;

    fn table() -> impl Strategy<Value = [[u128; 4]; 4]> {
        // Mostly small or empty entries, sometimes huge ones, so that both rounding and the
        // 256-bit product matter.
        let entry = prop_oneof![3 => Just(0u128), 4 => 0u128..1_000_000, 2 => 0..=CAP, 1 => Just(CAP)];
        proptest::array::uniform4(proptest::array::uniform4(entry))
    }

    fn pool(l: &[[u128; 4]; 4]) -> u128 {
        l.iter().flatten().sum()
    }

    #[test]
    fn pays_pro_rata_rounding_down() {
        let mut l = [[0u128; 4]; 4];
        l[0][0] = 300; // chain 1, m0
        l[1][0] = 600; // chain 2, m0
        l[1][1] = 100; // chain 2, m1
        // P = 1000, b = 7: chain 1 pays floor(2100 / 1000) = 2; chain 2 floor(4.2) = 4, floor(0.7) = 0.
        assert_eq!(exodus_amounts(7, &l, 1), Ok([2, 0, 0, 0]));
        assert_eq!(exodus_amounts(7, &l, 2), Ok([4, 0, 0, 0]));
        assert_eq!(exodus_amounts(7, &l, 3), Ok([0; 4]));
        assert_eq!(exodus_amounts(1000, &l, 2), Ok([600, 100, 0, 0]));
        // The product needs 256 bits.
        let mut big = [[0u128; 4]; 4];
        big[0][0] = CAP;
        big[1][0] = CAP;
        assert_eq!(exodus_amounts(2 * CAP, &big, 1), Ok([CAP, 0, 0, 0]));
        assert_eq!(exodus_amounts(u128::MAX, &[[0, 0, 0, 1], [0; 4], [0; 4], [0; 4]], 2), Ok([0; 4]));
    }

    #[test]
    fn rejects_what_the_circuit_rejects() {
        let l = [[5, 0, 0, 0], [0; 4], [0; 4], [0; 4]];
        assert_eq!(exodus_amounts(5, &l, 0), Err(ExodusError::InvalidChain(0)));
        assert_eq!(exodus_amounts(5, &l, 5), Err(ExodusError::InvalidChain(5)));
        assert_eq!(exodus_amounts(5, &[[0; 4]; 4], 1), Err(ExodusError::EmptyPool));
        assert_eq!(exodus_amounts(0, &[[0; 4]; 4], 1), Err(ExodusError::EmptyPool));
        let mut over = l;
        over[3][2] = CAP + 1;
        assert_eq!(
            exodus_amounts(5, &over, 1),
            Err(ExodusError::LiquidityTooLarge { chain: 4, slot: 2, value: CAP + 1 })
        );
        // A balance beyond the pool's liquidity can claim more than 2^112 - 1.
        assert_eq!(
            exodus_amounts(1 << 112, &[[1, 0, 0, 0], [0; 4], [0; 4], [0; 4]], 1),
            Err(ExodusError::AmountTooLarge { slot: 0, amount: 1 << 112 })
        );
        assert_eq!(exodus_amounts(CAP, &[[1, 0, 0, 0], [0; 4], [0; 4], [0; 4]], 1), Ok([CAP, 0, 0, 0]));
    }

    #[test]
    fn claims_from_a_state() {
        use crate::testkit::{ETH, ONE, USD, USDC, User, demo_registry, deposit};
        let (a, b) = (User::new(1), User::new(2));
        let mut s = State::new(demo_registry(), Address::ZERO);
        for r in [
            deposit(1, 0, a.address, USDC, USD, 3_000_000),
            deposit(2, 1, b.address, USDC, USDC, 1_000_000),
            deposit(2, 2, b.address, ETH, ETH, ONE),
        ] {
            s.execute_priority(&r).unwrap();
        }
        let pool = [USDC, 0, 0, 0];
        // A's 3 USD from a pool of 4 USDC: 3 · 3/4 on chain 1, 3 · 1/4 on chain 2.
        let unit = 1_000_000_000_000u128;
        let claim = s.exodus_claim(1, 2, 0, USD, pool).unwrap();
        assert_eq!((claim.owner, claim.balance, claim.pool()), (a.address, 3_000_000 * unit, 4_000_000 * unit));
        assert_eq!(claim.amounts, [2_250_000 * unit, 0, 0, 0]);
        assert_eq!(s.exodus_claim(2, 2, 0, USD, pool).unwrap().amounts, [750_000 * unit, 0, 0, 0]);
        assert_eq!(s.exodus_claim(3, 2, 0, USD, pool).unwrap().amounts, [0; 4]);
        // Errors.
        assert_eq!(s.exodus_claim(0, 2, 0, USD, pool), Err(ExodusError::InvalidChain(0)));
        assert_eq!(s.exodus_claim(5, 2, 0, USD, pool), Err(ExodusError::InvalidChain(5)));
        assert_eq!(s.exodus_claim(1, 2, 32, USD, pool), Err(ExodusError::InvalidSubAccount(32)));
        assert_eq!(s.exodus_claim(1, 9, 0, USD, pool), Err(ExodusError::UnknownAccount(9)));
        assert_eq!(s.exodus_claim(1, GLOBAL_ACCOUNT, 1, USDC, pool), Err(ExodusError::NoOwner(GLOBAL_ACCOUNT)));
        assert_eq!(s.exodus_claim(1, 0, 0, USD, pool), Err(ExodusError::NoOwner(0)));
        assert_eq!(s.exodus_claim(1, 3, 0, ETH, [7, 0, 0, 0]), Err(ExodusError::EmptyPool));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// One claim: over the chains it pays at most `b`, each amount is the exact floor, and
        /// (when `b ≤ P`) at most the liquidity it draws on.
        #[test]
        fn one_claim_is_bounded(l in table(), b in prop_oneof![any::<u128>(), 0u128..1_000_000_000]) {
            let p = pool(&l);
            if p == 0 {
                for chain in 1..=4 {
                    prop_assert_eq!(exodus_amounts(b, &l, chain), Err(ExodusError::EmptyPool));
                }
                return Ok(());
            }
            let mut total = U256::ZERO;
            for chain in 1..=4u8 {
                let amounts = match exodus_amounts(b, &l, chain) {
                    Ok(a) => a,
                    Err(ExodusError::AmountTooLarge { .. }) => {
                        prop_assert!(b > p, "only a balance beyond the pool can claim too much");
                        return Ok(());
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
                };
                for (i, a) in amounts.iter().enumerate() {
                    let liq = l[usize::from(chain - 1)][i];
                    // Exactly the floor: a · P ≤ b · L < (a + 1) · P.
                    let (a, bl, pp) = (U256::from(*a), U256::from(b) * U256::from(liq), U256::from(p));
                    prop_assert!(a * pp <= bl && bl < (a + U256::from(1u8)) * pp);
                    if b <= p {
                        prop_assert!(a <= U256::from(liq));
                    }
                    total += a;
                }
            }
            prop_assert!(total <= U256::from(b));
        }

        /// Many users: when their balances add up to at most the pool, every chain's claims on
        /// every slot together stay within that slot's liquidity.
        #[test]
        fn all_claims_fit_the_liquidity(l in table(), shares in proptest::collection::vec(1u128..1000, 1..8), used in 1u128..=1000) {
            let p = pool(&l);
            prop_assume!(p > 0);
            // Balances proportional to `shares`, adding up to at most `used / 1000` of P.
            let total_shares: u128 = shares.iter().sum();
            let budget = U256::from(p) * U256::from(used) / U256::from(1000u16);
            let balances: Vec<u128> = shares
                .iter()
                .map(|s| u128::try_from(budget * U256::from(*s) / U256::from(total_shares)).unwrap())
                .collect();
            prop_assert!(balances.iter().map(|b| U256::from(*b)).fold(U256::ZERO, |x, y| x + y) <= U256::from(p));
            for chain in 1..=4u8 {
                let mut paid = [0u128; 4];
                for b in &balances {
                    let a = exodus_amounts(*b, &l, chain).unwrap();
                    for (sum, a) in paid.iter_mut().zip(a) {
                        *sum += a;
                    }
                }
                for (i, (sum, liq)) in paid.iter().zip(l[usize::from(chain - 1)]).enumerate() {
                    prop_assert!(*sum <= liq, "chain {} slot {}: {} > {}", chain, i, sum, liq);
                }
            }
        }
    }
}
