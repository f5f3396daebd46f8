//! Chains, tokens and merge groups (protocol.md section 9).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ChainId, MAX_CHAINS, TokenId};

/// One token id: an asset with L1 deployments on some chains, or a merge group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub symbol: String,
    /// The merge group this L1 token may also fund.
    pub group: Option<TokenId>,
    /// Whether this id is a merge group (an L2-only token funded by its members).
    pub is_group: bool,
    /// L1 decimals per chain where the token is registered.
    pub l1_decimals: BTreeMap<ChainId, u8>,
}

/// A rejected token or chain reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown chain {0}")]
    UnknownChain(ChainId),
    #[error("unknown token {0}")]
    UnknownToken(TokenId),
    #[error("token {token} is not registered on chain {chain}")]
    TokenNotOnChain { token: TokenId, chain: ChainId },
    #[error("L1 token {l1} does not fund L2 token {l2} (it must be the same token or its merge group)")]
    NotFunding { l1: TokenId, l2: TokenId },
    #[error("amount {amount} is not a multiple of 10^{shift} (L1 token {token} has {decimals} decimals)")]
    NotExact { amount: u128, token: TokenId, decimals: u8, shift: u32 },
    #[error("amount overflows when converted to 18 decimals")]
    Overflow,
    #[error("invalid registry entry: {0}")]
    Invalid(String),
}

/// The registry of chains and tokens that the state machine and the contracts share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRegistry {
    chains: BTreeSet<ChainId>,
    tokens: BTreeMap<TokenId, TokenInfo>,
}

impl TokenRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects chain `chain` (1..=MAX_CHAINS).
    pub fn add_chain(&mut self, chain: ChainId) -> Result<(), TokenError> {
        if chain == 0 || chain > MAX_CHAINS {
            return Err(TokenError::Invalid(format!("chain id {chain} outside 1..={MAX_CHAINS}")));
        }
        self.chains.insert(chain);
        Ok(())
    }

    /// Registers a token id (an asset).
    pub fn add_token(&mut self, id: TokenId, symbol: &str) -> Result<(), TokenError> {
        self.insert(id, symbol, false)
    }

    /// Registers a merge group id.
    pub fn add_group(&mut self, id: TokenId, symbol: &str) -> Result<(), TokenError> {
        self.insert(id, symbol, true)
    }

    fn insert(&mut self, id: TokenId, symbol: &str, is_group: bool) -> Result<(), TokenError> {
        if id == 0 || self.tokens.contains_key(&id) {
            return Err(TokenError::Invalid(format!("token id {id} is zero or already registered")));
        }
        let info = TokenInfo { id, symbol: symbol.to_string(), group: None, is_group, l1_decimals: BTreeMap::new() };
        self.tokens.insert(id, info);
        Ok(())
    }

    /// Makes `token` a member of merge group `group`.
    pub fn set_group(&mut self, token: TokenId, group: TokenId) -> Result<(), TokenError> {
        if !self.token(group)?.is_group {
            return Err(TokenError::Invalid(format!("token {group} is not a group")));
        }
        let info = self.tokens.get_mut(&token).ok_or(TokenError::UnknownToken(token))?;
        if info.is_group {
            return Err(TokenError::Invalid(format!("group {token} cannot join a group")));
        }
        info.group = Some(group);
        Ok(())
    }

    /// Registers `token` on `chain` with its L1 decimals.
    pub fn add_l1(&mut self, token: TokenId, chain: ChainId, decimals: u8) -> Result<(), TokenError> {
        self.check_chain(chain)?;
        if decimals > 18 {
            return Err(TokenError::Invalid(format!("token {token} has {decimals} decimals (at most 18)")));
        }
        let info = self.tokens.get_mut(&token).ok_or(TokenError::UnknownToken(token))?;
        if info.is_group {
            return Err(TokenError::Invalid(format!("group {token} has no L1 token")));
        }
        info.l1_decimals.insert(chain, decimals);
        Ok(())
    }

    pub fn chains(&self) -> impl Iterator<Item = ChainId> + '_ {
        self.chains.iter().copied()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &TokenInfo> {
        self.tokens.values()
    }

    pub fn check_chain(&self, chain: ChainId) -> Result<(), TokenError> {
        if self.chains.contains(&chain) { Ok(()) } else { Err(TokenError::UnknownChain(chain)) }
    }

    pub fn token(&self, id: TokenId) -> Result<&TokenInfo, TokenError> {
        self.tokens.get(&id).ok_or(TokenError::UnknownToken(id))
    }

    /// L1 decimals of `token` on `chain`.
    pub fn l1_decimals(&self, chain: ChainId, token: TokenId) -> Result<u8, TokenError> {
        self.check_chain(chain)?;
        self.token(token)?.l1_decimals.get(&chain).copied().ok_or(TokenError::TokenNotOnChain { token, chain })
    }

    /// Checks rule funds(l1, l2): `l2 == l1 || group(l1) == l2`, both registered.
    pub fn check_funds(&self, l1: TokenId, l2: TokenId) -> Result<(), TokenError> {
        let info = self.token(l1)?;
        self.token(l2)?;
        if l1 == l2 || info.group == Some(l2) { Ok(()) } else { Err(TokenError::NotFunding { l1, l2 }) }
    }

    /// The family a token belongs to for conservation: its group if it has one, else itself.
    pub fn family(&self, token: TokenId) -> TokenId {
        self.tokens.get(&token).and_then(|t| t.group).unwrap_or(token)
    }

    /// Converts an L1 amount of `token` on `chain` to L2 units (18 decimals).
    pub fn to_l2(&self, chain: ChainId, token: TokenId, l1_amount: u128) -> Result<u128, TokenError> {
        let shift = 18 - u32::from(self.l1_decimals(chain, token)?);
        l1_amount.checked_mul(10u128.pow(shift)).ok_or(TokenError::Overflow)
    }

    /// Converts an L2 amount to L1 units of `token` on `chain`; must be exact.
    pub fn to_l1(&self, chain: ChainId, token: TokenId, l2_amount: u128) -> Result<u128, TokenError> {
        let decimals = self.l1_decimals(chain, token)?;
        let shift = 18 - u32::from(decimals);
        let scale = 10u128.pow(shift);
        if !l2_amount.is_multiple_of(scale) {
            return Err(TokenError::NotExact { amount: l2_amount, token, decimals, shift });
        }
        Ok(l2_amount / scale)
    }

    /// The largest amount not above `l2_amount` that converts exactly.
    pub fn round_to_l1_precision(&self, chain: ChainId, token: TokenId, l2_amount: u128) -> Result<u128, TokenError> {
        let scale = 10u128.pow(18 - u32::from(self.l1_decimals(chain, token)?));
        Ok(l2_amount - l2_amount % scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> TokenRegistry {
        let mut r = TokenRegistry::new();
        r.add_chain(1).unwrap();
        r.add_chain(2).unwrap();
        r.add_token(1, "ETH").unwrap();
        r.add_token(2, "USDC").unwrap();
        r.add_token(3, "USDT").unwrap();
        r.add_group(100, "USD").unwrap();
        r.set_group(2, 100).unwrap();
        r.set_group(3, 100).unwrap();
        r.add_l1(1, 1, 18).unwrap();
        r.add_l1(1, 2, 18).unwrap();
        r.add_l1(2, 1, 6).unwrap();
        r.add_l1(2, 2, 6).unwrap();
        r.add_l1(3, 2, 6).unwrap();
        r
    }

    #[test]
    fn funding_rules() {
        let r = registry();
        assert!(r.check_funds(2, 2).is_ok());
        assert!(r.check_funds(2, 100).is_ok());
        assert!(r.check_funds(3, 100).is_ok());
        assert_eq!(r.check_funds(2, 3), Err(TokenError::NotFunding { l1: 2, l2: 3 }));
        assert_eq!(r.check_funds(100, 2), Err(TokenError::NotFunding { l1: 100, l2: 2 }));
        assert_eq!(r.check_funds(9, 9), Err(TokenError::UnknownToken(9)));
        assert_eq!(r.l1_decimals(1, 3), Err(TokenError::TokenNotOnChain { token: 3, chain: 1 }));
        assert_eq!(r.l1_decimals(3, 1), Err(TokenError::UnknownChain(3)));
        assert!(r.clone().add_l1(100, 1, 6).is_err());
        assert!(r.clone().add_chain(5).is_err());
    }

    #[test]
    fn conversions_are_exact() {
        let r = registry();
        assert_eq!(r.to_l2(1, 2, 1_000_000), Ok(10u128.pow(18)));
        assert_eq!(r.to_l1(1, 2, 10u128.pow(18)), Ok(1_000_000));
        assert!(matches!(r.to_l1(1, 2, 10u128.pow(12) + 1), Err(TokenError::NotExact { .. })));
        assert_eq!(r.round_to_l1_precision(1, 2, 10u128.pow(12) + 1), Ok(10u128.pow(12)));
        assert_eq!(r.to_l2(1, 2, u128::MAX), Err(TokenError::Overflow));
    }
}
