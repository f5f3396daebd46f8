//! Criterion benches of the state machine: one block of signed transfers and one of signed
//! order matchings over a pre-funded state (smaller than `zkl bench state`, same code path),
//! plus the tree's building blocks.

use criterion::{Criterion, criterion_group, criterion_main};
use zkl_crypto::Fr;
use zkl_state::QuadTree;
use zkl_state::benchmark::{BenchConfig, run};
use zkl_state::tree::{empty_sub_tree, hash_node};

fn blocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.sample_size(10);
    let config = BenchConfig { accounts: 2_000, blocks: 1, block_size: 200, keys: 100 };
    g.bench_function("transfers_and_orders_200_each_2k_accounts", |b| b.iter(|| run(&config, &|_| {})));
    g.finish();
}

fn tree(c: &mut Criterion) {
    let x = [Fr::from(1u64), Fr::from(2u64), Fr::from(3u64), Fr::from(4u64)];
    c.bench_function("tree/hash_node", |b| b.iter(|| hash_node(std::hint::black_box(&x))));
    c.bench_function("tree/balance_leaf_update_and_root", |b| {
        let mut t = QuadTree::new(11, empty_sub_tree());
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            t.set(i % 1000, Fr::from(i));
            t.commit()
        })
    });
}

criterion_group!(benches, tree, blocks);
criterion_main!(benches);
