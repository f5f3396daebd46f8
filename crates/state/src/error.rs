//! Typed rejections. A rejected transaction or operation changes nothing.

use zkl_crypto::SignatureError;
use zkl_types::{AccountId, Address, AmountError, ChainId, OpEncodeError, SubAccountId, TokenError, TokenId};

/// Why a transaction or operation was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("{field} = {value} does not fit its {bytes}-byte pubdata field")]
    FieldWidth { field: &'static str, value: u128, bytes: usize },
    #[error("account {0} is the global asset account and cannot send, receive or sign")]
    GlobalAccount(AccountId),
    #[error("sub-account {0} is out of range (0..=31)")]
    InvalidSubAccount(SubAccountId),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("insufficient balance: account {account} sub-account {sub} token {token} has {available}, needs {needed}")]
    InsufficientBalance { account: AccountId, sub: SubAccountId, token: TokenId, available: u128, needed: u128 },
    #[error("bad nonce: account {account} expects {expected}, tx has {got}")]
    BadNonce { account: AccountId, expected: u32, got: u32 },
    #[error("nonce of account {0} would overflow")]
    NonceOverflow(AccountId),
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    #[error("account {0} has no signing key set (ChangePubKey first)")]
    NoSigningKey(AccountId),
    #[error("insufficient liquidity: chain {chain} holds {available} of token {token}, needs {needed}")]
    InsufficientLiquidity { chain: ChainId, token: TokenId, available: u128, needed: u128 },
    #[error("liquidity cap: chain {chain} token {token} would exceed 2^112 - 1")]
    LiquidityCap { chain: ChainId, token: TokenId },
    #[error("balance of account {account} token {token} would overflow")]
    BalanceOverflow { account: AccountId, token: TokenId },
    #[error("owner mismatch for account {0}")]
    OwnerMismatch(AccountId),
    #[error("address is zero")]
    ZeroAddress,
    #[error("account tree is full")]
    AccountTreeFull,
    #[error("op names account {got} but the next account id is {expected}")]
    WrongNewAccountId { expected: AccountId, got: AccountId },
    #[error("the address already owns account {0}")]
    AddressTaken(AccountId),
    #[error("transfer to the same account and sub-account")]
    SelfTransfer,
    #[error("forced exit target {0} has a signing key; only key-less accounts can be forced out")]
    TargetHasKey(AccountId),
    #[error("nothing to withdraw")]
    NothingToWithdraw,
    #[error("account {0} is not an allowed matcher")]
    MatcherNotAllowed(AccountId),
    #[error("orders do not match: {0}")]
    OrderMismatch(&'static str),
    #[error("order nonce {got} does not match slot nonce {expected} (filled or cancelled)")]
    OrderNonce { expected: u32, got: u32 },
    #[error("order residue before the fill is {actual}, the matching claims {claimed}")]
    ResidueMismatch { actual: u128, claimed: u128 },
    #[error("order overfilled: {available} left, fill is {fill}")]
    OrderOverfilled { available: u128, fill: u128 },
    #[error("price mismatch: quote fill must equal base fill times the maker price exactly")]
    PriceMismatch,
    #[error("taker price limit exceeded")]
    PriceLimit,
    #[error("fill amounts must be positive")]
    ZeroFill,
    #[error("fee ratio {0} bps is above the maximum")]
    FeeRatio(u8),
    #[error("Ethereum authorisation does not recover to the account owner")]
    BadEthAuth,
    #[error("Ethereum authorisation is not in canonical form: {0}")]
    EthSignatureForm(String),
    #[error(
        "no on-chain authorisation: the owner has not called setAuthPubkeyHash(new pubkey hash, nonce {nonce}) on chain {chain} (or it is not confirmed yet)"
    )]
    NoAuthFact { chain: ChainId, nonce: u32 },
    #[error("address {0} is not an EVM address (the top 12 bytes must be zero)")]
    NotEvmAddress(Address),
    #[error("full exit amount {claimed} differs from the computed {computed}")]
    FullExitAmount { claimed: u128, computed: u128 },
    #[error("full exit L1 decimals {claimed} differ from the registered {registered}")]
    FullExitDecimals { claimed: u8, registered: u8 },
    #[error("forced exit amount {claimed} differs from the balance {balance}")]
    ForcedExitAmount { claimed: u128, balance: u128 },
    #[error("block is full: {needed} chunks needed, {free} free")]
    BlockFull { needed: usize, free: usize },
    #[error(
        "the block cannot be sealed at {0} chunks (its ops or fee tokens do not fit, or it is not below the configured capacity)"
    )]
    SealCapacity(usize),
    #[error("block already collects fees in {0} tokens (the limit)")]
    TooManyFeeTokens(usize),
    #[error("block already holds {0} on-chain operations (the limit)")]
    TooManyOnchainOps(usize),
}

impl From<OpEncodeError> for TxError {
    fn from(e: OpEncodeError) -> Self {
        match e {
            OpEncodeError::Amount(a) => TxError::Amount(a),
            OpEncodeError::FieldWidth { field, value, bytes } => TxError::FieldWidth { field, value, bytes },
        }
    }
}
