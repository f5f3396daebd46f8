//! A byte encoding of [`BlockWitness`], so a node can hand a block's witness to a prover worker
//! on another machine. Field elements are 32 bytes little-endian (arkworks' compressed form,
//! checked below the modulus when read); integers are big-endian; vectors carry a u32 length.
//! The first byte is the format version.

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};

use crate::Fr;
use crate::block::AccountLeaf;
use crate::block::{AuWitness, BlockWitness, ChunkWitness, FeeSlotWitness, OrderWitness};
use crate::merkle::{ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH};

const VERSION: u8 = 3;
/// Upper bounds that keep a malformed length from allocating without limit.
const MAX_CHUNKS: u32 = 1 << 16;
const MAX_FEE_SLOTS: u32 = 1 << 12;

/// Why bytes are not a block witness.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("witness bytes end early")]
    Truncated,
    #[error("unknown witness format version {0}")]
    Version(u8),
    #[error("a field element is not canonical")]
    Field,
    #[error("{0} is out of range")]
    Range(&'static str),
    #[error("{0} trailing bytes after the witness")]
    Trailing(usize),
}

struct W(Vec<u8>);

impl W {
    fn fr(&mut self, x: &Fr) {
        x.serialize_compressed(&mut self.0).expect("writing to a Vec cannot fail");
    }
    fn u32(&mut self, x: u32) {
        self.0.extend_from_slice(&x.to_be_bytes());
    }
    fn u64(&mut self, x: u64) {
        self.0.extend_from_slice(&x.to_be_bytes());
    }
    fn u128(&mut self, x: u128) {
        self.0.extend_from_slice(&x.to_be_bytes());
    }
    fn path(&mut self, p: &[[Fr; 3]]) {
        for level in p {
            level.iter().for_each(|x| self.fr(x));
        }
    }
    fn au(&mut self, a: &AuWitness) {
        let l = &a.leaf;
        self.u32(l.nonce);
        for x in [&l.pubkey_hash, &l.owner_hi, &l.owner_lo, &l.balance_root, &l.order_root] {
            self.fr(x);
        }
        self.u128(a.balance);
        self.path(&a.balance_path);
        self.path(&a.account_path);
    }
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn fr(&mut self) -> Result<Fr, WireError> {
        Fr::deserialize_compressed(self.take(32)?).map_err(|_| WireError::Field)
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn u128(&mut self) -> Result<u128, WireError> {
        Ok(u128::from_be_bytes(self.take(16)?.try_into().expect("16 bytes")))
    }
    fn path(&mut self, depth: usize) -> Result<Vec<[Fr; 3]>, WireError> {
        (0..depth).map(|_| Ok([self.fr()?, self.fr()?, self.fr()?])).collect()
    }
    fn au(&mut self) -> Result<AuWitness, WireError> {
        let nonce = self.u32()?;
        let leaf = AccountLeaf {
            nonce,
            pubkey_hash: self.fr()?,
            owner_hi: self.fr()?,
            owner_lo: self.fr()?,
            balance_root: self.fr()?,
            order_root: self.fr()?,
        };
        Ok(AuWitness {
            leaf,
            balance: self.u128()?,
            balance_path: self.path(BALANCE_TREE_DEPTH)?,
            account_path: self.path(ACCOUNT_TREE_DEPTH)?,
        })
    }
    fn len(&mut self, max: u32, what: &'static str) -> Result<usize, WireError> {
        let n = self.u32()?;
        if n > max {
            return Err(WireError::Range(what));
        }
        Ok(n as usize)
    }
}

/// The witness's bytes.
pub fn encode(w: &BlockWitness) -> Vec<u8> {
    let mut o = W(vec![VERSION]);
    o.u32(w.block_number);
    o.u64(w.timestamp);
    o.fr(&w.old_root);
    o.fr(&w.new_root);
    o.u32(w.pubdata.len() as u32);
    o.0.extend_from_slice(&w.pubdata);
    o.u32(w.chunks.len() as u32);
    for c in &w.chunks {
        o.fr(&c.pubkey.0);
        o.fr(&c.pubkey.1);
        o.fr(&c.signature.0);
        o.fr(&c.signature.1);
        o.fr(&c.signature.2);
        c.au.iter().for_each(|a| o.au(a));
        o.u32(c.fee_slot as u32);
        o.u128(c.order.price);
        o.0.push(c.order.other_fee_bps);
    }
    match &w.routing {
        None => o.0.push(0),
        Some(positions) => {
            o.0.push(1);
            for p in positions {
                debug_assert!(p.is_none_or(|p| p < MAX_CHUNKS as usize), "work slot position {p:?}");
                o.u32(p.map_or(u32::MAX, |p| p as u32));
            }
        }
    }
    o.u32(w.fees.len() as u32);
    for f in &w.fees {
        o.u32(u32::from(f.token));
        o.u128(f.amount);
        o.au(&f.au);
    }
    o.fr(&w.public_input);
    o.0
}

/// Reads a witness written by [`encode`]; never panics on malformed bytes.
pub fn decode(bytes: &[u8]) -> Result<BlockWitness, WireError> {
    let mut r = R(bytes);
    let version = r.take(1)?[0];
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let block_number = r.u32()?;
    let timestamp = r.u64()?;
    let old_root = r.fr()?;
    let new_root = r.fr()?;
    let n = r.len(MAX_CHUNKS * 20, "pubdata length")?;
    let pubdata = r.take(n)?.to_vec();
    let n = r.len(MAX_CHUNKS, "chunk count")?;
    let mut chunks = Vec::with_capacity(n);
    for _ in 0..n {
        let pubkey = (r.fr()?, r.fr()?);
        let signature = (r.fr()?, r.fr()?, r.fr()?);
        let au = [r.au()?, r.au()?];
        let fee_slot = r.len(MAX_FEE_SLOTS, "fee slot")?;
        let order = OrderWitness { price: r.u128()?, other_fee_bps: r.take(1)?[0] };
        chunks.push(ChunkWitness { pubkey, signature, au, fee_slot, order });
    }
    let routing = match r.take(1)?[0] {
        0 => None,
        1 => Some(
            (0..chunks.len())
                .map(|_| match r.u32()? {
                    u32::MAX => Ok(None),
                    p if p < MAX_CHUNKS => Ok(Some(p as usize)),
                    _ => Err(WireError::Range("work slot position")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => return Err(WireError::Range("routing flag")),
    };
    let n = r.len(MAX_FEE_SLOTS, "fee slot count")?;
    let mut fees = Vec::with_capacity(n);
    for _ in 0..n {
        let token = u16::try_from(r.u32()?).map_err(|_| WireError::Range("fee token"))?;
        fees.push(FeeSlotWitness { token, amount: r.u128()?, au: r.au()? });
    }
    let public_input = r.fr()?;
    if !r.0.is_empty() {
        return Err(WireError::Trailing(r.0.len()));
    }
    Ok(BlockWitness { block_number, timestamp, old_root, new_root, pubdata, chunks, routing, fees, public_input })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_malformed_input() {
        let mut w = BlockWitness::blank(2, 2);
        w.block_number = 7;
        w.timestamp = 1_700_000_000;
        w.old_root = Fr::from(5u64);
        w.pubdata = (0..40).collect();
        w.chunks[1].fee_slot = 1;
        w.chunks[0].au[1].balance = u128::MAX;
        w.chunks[1].order = OrderWitness { price: 3 << 100, other_fee_bps: 255 };
        w.fees[1].token = 65_535;
        w.fees[0].au.account_path[3][2] = -Fr::from(1u64);
        let mut routed = w.clone();
        routed.routing = Some(vec![Some(1), None]);
        assert_eq!(decode(&encode(&routed)), Ok(routed));
        let bytes = encode(&w);
        assert_eq!(decode(&bytes), Ok(w));
        for cut in [0, 1, 10, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut]), Err(WireError::Truncated), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(WireError::Trailing(1)));
        let mut v = bytes.clone();
        v[0] = 1;
        assert_eq!(decode(&v), Err(WireError::Version(1)));
        // old_root set to the modulus' bytes (all 0xff is above it).
        let mut f = bytes.clone();
        f[13..45].fill(0xff);
        assert_eq!(decode(&f), Err(WireError::Field));
    }

    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut w = BlockWitness::blank_routed(3, 2, 2);
        w.pubdata = (0..60).collect();
        w.routing = Some(vec![Some(2), None]);
        encode(&w)
    }

    // Fuzzing (`PROPTEST_CASES=1000000 cargo test --release -p zkl-circuit --lib wire` for a long
    // run): arbitrary bytes and mutations of a valid encoding never panic, and whatever decodes
    // encodes back to the same bytes (one encoding per witness).
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(w) = decode(&bytes) {
                prop_assert_eq!(encode(&w), bytes);
            }
        }

        #[test]
        fn mutated_witnesses_decode_canonically_or_fail(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = sample();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            if let Ok(w) = decode(&bytes) {
                prop_assert_eq!(encode(&w), bytes);
            }
        }
    }
}
