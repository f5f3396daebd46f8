//! The one byte layout of every op's pubdata (protocol.md section 11): each field's offset and
//! length, each op's code and chunk count, and which ops a contract sees.
//!
//! Everything that reads or writes pubdata takes its offsets from here: the encoder and decoder
//! of [`crate::op::Op`], the node's watcher (a priority request's event bytes), the contracts'
//! Solidity constants (generated from this table, `zkl_contracts::layout_sol`), the block
//! circuit's field reads and the exodus tool. Fields are chained with [`Field::then`], so they
//! are contiguous by construction, starting after the op code at byte 0.

/// Bytes per pubdata chunk.
pub const CHUNK_BYTES: usize = 20;

/// A field of an op's pubdata: `len` big-endian bytes at `offset` (from the op's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub len: usize,
}

impl Field {
    /// The op-code byte every op starts with.
    pub const OP: Field = Field { name: "op", offset: 0, len: 1 };

    /// The field right after this one.
    pub const fn then(self, name: &'static str, len: usize) -> Field {
        Field { name, offset: self.offset + self.len, len }
    }

    /// One past the field's last byte.
    pub const fn end(self) -> usize {
        self.offset + self.len
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.offset..self.end()
    }
}

/// One op's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpLayout {
    pub code: u8,
    pub name: &'static str,
    pub chunks: usize,
    /// A contract sees it (section 11): its chain byte names the chain whose contract checks it.
    pub onchain: bool,
    /// It consumes a priority request of its chain's queue.
    pub priority: bool,
    /// Its first chunks that need a work slot in a block circuit with fewer work slots than
    /// chunks (crates/circuit/DESIGN.md, "Work slots"): 0 for a Noop, 2 for the ops whose second
    /// chunk also updates the state (ForcedExit, OrderMatching), 1 otherwise.
    pub work_chunks: usize,
    /// Every field after the op code, in order.
    pub fields: &'static [Field],
}

impl OpLayout {
    pub const fn bytes(&self) -> usize {
        self.chunks * CHUNK_BYTES
    }
}

macro_rules! op_layout {
    ($module:ident, $code:expr, $name:expr, $chunks:expr, onchain: $onchain:expr, priority: $priority:expr,
     work: $work:expr, $first:ident: $first_len:expr $(, $field:ident: $len:expr)* $(,)?) => {
        #[doc = concat!("Fields of ", $name, ".")]
        pub mod $module {
            use super::Field;
            pub const $first: Field = Field::OP.then(stringify!($first), $first_len);
            op_layout!(@chain $first $(, $field: $len)*);
            /// Every field after the op code, in order.
            pub const FIELDS: &[Field] = &[$first $(, $field)*];
            pub const LAYOUT: super::OpLayout = super::OpLayout {
                code: $code,
                name: $name,
                chunks: $chunks,
                onchain: $onchain,
                priority: $priority,
                work_chunks: $work,
                fields: FIELDS,
            };
        }
    };
    (@chain $prev:ident, $field:ident: $len:expr $(, $rest:ident: $rest_len:expr)*) => {
        pub const $field: Field = $prev.then(stringify!($field), $len);
        op_layout!(@chain $field $(, $rest: $rest_len)*);
    };
    (@chain $prev:ident) => {};
}

op_layout!(deposit, 1, "deposit", 3, onchain: true, priority: true, work: 1,
    CHAIN: 1, ACCOUNT: 3, SUB: 1, L1_TOKEN: 2, L2_TOKEN: 2, AMOUNT: 16, OWNER: 32);
op_layout!(transfer_to_new, 2, "transfer_to_new", 3, onchain: false, priority: false, work: 1,
    FROM: 3, FROM_SUB: 1, TO: 3, TO_SUB: 1, TOKEN: 2, AMOUNT: 5, FEE: 2, TO_OWNER: 32);
op_layout!(withdraw, 3, "withdraw", 3, onchain: true, priority: false, work: 1,
    CHAIN: 1, ACCOUNT: 3, SUB: 1, L2_TOKEN: 2, L1_TOKEN: 2, AMOUNT: 16, FEE: 2, TO: 32);
op_layout!(transfer, 4, "transfer", 1, onchain: false, priority: false, work: 1,
    FROM: 3, TO: 3, FROM_SUB: 1, TO_SUB: 1, TOKEN: 2, AMOUNT: 5, FEE: 2);
op_layout!(full_exit, 5, "full_exit", 3, onchain: true, priority: true, work: 1,
    CHAIN: 1, ACCOUNT: 3, SUB: 1, OWNER: 32, L1_TOKEN: 2, L2_TOKEN: 2, AMOUNT: 16, L1_DECIMALS: 1);
op_layout!(change_pubkey, 6, "change_pubkey", 3, onchain: true, priority: false, work: 1,
    CHAIN: 1, ACCOUNT: 3, SUB: 1, NEW_PUBKEY_HASH: 20, OWNER: 20, NONCE: 4, FEE_TOKEN: 2, FEE: 2);
op_layout!(forced_exit, 7, "forced_exit", 4, onchain: true, priority: false, work: 2,
    CHAIN: 1, INITIATOR: 3, INITIATOR_SUB: 1, TARGET: 3, TARGET_SUB: 1, L2_TOKEN: 2, L1_TOKEN: 2,
    FEE_TOKEN: 2, FEE: 2, AMOUNT: 16, TARGET_OWNER: 32);
op_layout!(order_matching, 8, "order_matching", 2, onchain: false, priority: false, work: 2,
    MAKER: 3, TAKER: 3, MAKER_SUB: 1, TAKER_SUB_SELL: 1, MAKER_SLOT: 2, TAKER_SLOT: 2, BASE: 2,
    QUOTE: 2, BASE_FILL: 5, QUOTE_FILL: 5, MAKER_FEE_BPS: 1, TAKER_FEE_BPS: 1, MAKER_ORDER_AMOUNT: 5,
    TAKER_ORDER_AMOUNT: 5);

/// The Noop (padding) chunk.
pub const NOOP: OpLayout =
    OpLayout { code: 0, name: "noop", chunks: 1, onchain: false, priority: false, work_chunks: 0, fields: &[] };

/// Every op, indexed by its code.
pub const OPS: [OpLayout; 9] = [
    NOOP,
    deposit::LAYOUT,
    transfer_to_new::LAYOUT,
    withdraw::LAYOUT,
    transfer::LAYOUT,
    full_exit::LAYOUT,
    change_pubkey::LAYOUT,
    forced_exit::LAYOUT,
    order_matching::LAYOUT,
];

/// The layout of op code `code`, if it is one.
pub fn of(code: u8) -> Option<&'static OpLayout> {
    OPS.get(usize::from(code))
}

/// The chain byte of an on-chain op (every on-chain op has it right after the op code).
pub const CHAIN: Field = deposit::CHAIN;

/// The fields a contract zeroes before hashing a priority request into its queue: the
/// contract cannot know a deposit's account id, and the sequencer computes a full exit's amount.
pub fn priority_masked_field(code: u8) -> Option<Field> {
    match code {
        c if c == deposit::LAYOUT.code => Some(deposit::ACCOUNT),
        c if c == full_exit::LAYOUT.code => Some(full_exit::AMOUNT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for (code, l) in OPS.iter().enumerate() {
            assert_eq!(usize::from(l.code), code);
            // Contiguous from byte 1, within the op's chunks, and the last chunk is needed.
            let mut at = 1;
            for f in l.fields {
                assert_eq!(f.offset, at, "{}.{}", l.name, f.name);
                at = f.end();
            }
            assert!(at <= l.bytes(), "{} overflows its chunks", l.name);
            assert!(at > l.bytes() - CHUNK_BYTES || l.chunks == 1, "{} has a spare chunk", l.name);
            // Every on-chain op has its chain right after the op code.
            if l.onchain {
                assert_eq!(l.fields[0], Field { name: "CHAIN", offset: 1, len: 1 }, "{}", l.name);
            }
            assert!(!l.priority || l.onchain);
            // (The block circuit carries one chunk's flags to the next: at most two work chunks.)
            assert!(l.work_chunks <= l.chunks.min(2) && (l.work_chunks == 0) == (l.code == NOOP.code), "{}", l.name);
        }
        assert_eq!(of(9), None);
        // The layouts of protocol.md section 11 (spot checks of the widest ops).
        assert_eq!(forced_exit::TARGET_OWNER.range(), 34..66);
        assert_eq!(withdraw::TO.range(), 28..60);
        assert_eq!(full_exit::L1_DECIMALS.range(), 58..59);
        assert_eq!(order_matching::TAKER_ORDER_AMOUNT.range(), 34..39);
    }
}
