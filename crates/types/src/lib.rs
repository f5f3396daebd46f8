//! The protocol's data types, one definition shared by the state machine, the circuit, the
//! contracts' encoders, the node and the exodus tool. Layouts are specified in
//! `docs/protocol.md` sections 8–13.

pub mod amount;
pub mod block;
pub mod codec;
pub mod ids;
pub mod layout;
pub mod op;
pub mod serde_impls;
pub mod tokens;
pub mod tx;

pub use amount::{AmountError, pack_amount, pack_fee, round_up_fee, unpack_amount, unpack_fee};
pub use block::{BlockCommitment, commitment, onchain_hashes, pubdata_for_block, public_input};
pub use ids::*;
pub use op::{Op, OpDecodeError, OpEncodeError};
pub use tokens::{TokenError, TokenInfo, TokenRegistry};
pub use tx::*;
