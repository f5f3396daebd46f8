//! Identifiers, limits and addresses (protocol.md section 8).

use zkl_crypto::Fr;

/// L2 chain id (1..=MAX_CHAINS).
pub type ChainId = u8;
/// Account id (< 2^24).
pub type AccountId = u32;
/// Sub-account id (0..=31).
pub type SubAccountId = u8;
/// Token id (1..=65535); one numbering for L1 and L2 tokens.
pub type TokenId = u16;
/// Order slot id.
pub type SlotId = u16;
/// Account nonce / order nonce.
pub type Nonce = u32;

/// Number of chains a deployment can connect.
pub const MAX_CHAINS: u8 = 4;
/// Account tree depth in quad levels (4^12 = 2^24 accounts).
pub const ACCOUNT_TREE_DEPTH: usize = 12;
/// Balance and order tree depth in quad levels (4^11 = 2^22 leaves).
pub const BALANCE_TREE_DEPTH: usize = 11;
/// Order tree depth in quad levels.
pub const ORDER_TREE_DEPTH: usize = 11;
/// Largest account id.
pub const MAX_ACCOUNT_ID: AccountId = (1 << 24) - 1;
/// Largest sub-account id.
pub const MAX_SUB_ACCOUNT_ID: SubAccountId = 31;
/// The fee account.
pub const FEE_ACCOUNT: AccountId = 0;
/// The global asset account tracking per-chain liquidity.
pub const GLOBAL_ACCOUNT: AccountId = 1;
/// Largest liquidity of one L1 token on one chain, in L2 units.
pub const MAX_LIQUIDITY: u128 = (1 << 112) - 1;
/// Largest fee ratio in basis points.
pub const MAX_FEE_BPS: u8 = 100;
/// Price scale: prices are quote units per base unit times 10^18.
pub const PRICE_SCALE: u128 = 1_000_000_000_000_000_000;

/// A 32-byte owner address; an EVM address is left-padded with 12 zero bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The zero address (no owner).
    pub const ZERO: Address = Address([0; 32]);

    /// An EVM address, left-padded.
    pub fn from_evm(addr: [u8; 20]) -> Self {
        let mut out = [0u8; 32];
        out[12..].copy_from_slice(&addr);
        Address(out)
    }

    /// The EVM address, if the top 12 bytes are zero.
    pub fn to_evm(&self) -> Option<[u8; 20]> {
        if self.0[..12].iter().all(|b| *b == 0) { Some(self.0[12..].try_into().expect("20 bytes")) } else { None }
    }

    /// High 16 bytes as a field element.
    pub fn hi(&self) -> Fr {
        crate::codec::fr_from_u128(u128::from_be_bytes(self.0[..16].try_into().expect("16 bytes")))
    }

    /// Low 16 bytes as a field element.
    pub fn lo(&self) -> Fr {
        crate::codec::fr_from_u128(u128::from_be_bytes(self.0[16..].try_into().expect("16 bytes")))
    }

    /// Parses `0x` + 40 hex digits (EVM) or `0x` + 64 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let hex_part = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))?;
        let bytes = hex::decode(hex_part).ok()?;
        match bytes.len() {
            20 => Some(Address::from_evm(bytes.try_into().ok()?)),
            32 => Some(Address(bytes.try_into().ok()?)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

/// Balance-tree index of (sub-account, token).
pub fn balance_index(sub: SubAccountId, token: TokenId) -> u32 {
    (u32::from(sub) << 16) | u32::from(token)
}

/// Order-tree index of (sub-account, slot).
pub fn order_index(sub: SubAccountId, slot: SlotId) -> u32 {
    (u32::from(sub) << 16) | u32::from(slot)
}
