//! `cargo bench -p zkl-crypto --bench crypto`: Poseidon, EdDSA-Poseidon sign and verify.
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use zkl_crypto::{Fr, PrivateKey, poseidon};

fn bench_poseidon(c: &mut Criterion) {
    let (a, b) = (Fr::from(1u64), -Fr::from(7u64));
    c.bench_function("poseidon/hash2", |bench| bench.iter(|| poseidon::hash2(black_box(a), black_box(b))));
    let four = [a, b, a, b];
    c.bench_function("poseidon/hash4", |bench| bench.iter(|| poseidon::hash(black_box(&four)).unwrap()));
}

fn bench_eddsa(c: &mut Criterion) {
    let key = PrivateKey::from_bytes([7; 32]);
    let pk = key.public_key();
    let msg = Fr::from(123456789u64);
    let sig = key.sign(&msg);
    c.bench_function("eddsa/sign", |bench| bench.iter(|| key.sign(black_box(&msg))));
    c.bench_function("eddsa/verify", |bench| bench.iter(|| pk.verify(black_box(&msg), black_box(&sig)).unwrap()));
    c.bench_function("eddsa/pubkey_subgroup_check", |bench| {
        bench.iter(|| zkl_crypto::PublicKey::from_coords(black_box(pk.x()), black_box(pk.y())).unwrap())
    });
}

criterion_group!(benches, bench_poseidon, bench_eddsa);
criterion_main!(benches);
