//! A tiny run of the gas benchmark (the full run is `zkl bench gas`, outside CI).

use zkl_contracts::bench::{GasBenchConfig, report_json, run_gas_bench};

#[tokio::test]
async fn gas_bench_smoke() {
    let cfg = GasBenchConfig {
        capacities: vec![4, 8],
        batch: 2,
        only: vec!["transfer".into(), "withdraw".into(), "deposit".into()],
        anvil_args: Vec::new(),
    };
    let report = run_gas_bench(&cfg).await.unwrap();
    assert_eq!(report.ops.len(), 3);
    let t = &report.ops["transfer"];
    assert_eq!(t.pubdata_bytes, 20);
    assert_eq!(t.blocks.len(), 2);
    assert_eq!((t.blocks[1].ops, t.blocks[1].blocks), (8, 2));
    assert!(t.commit_gas_per_op > 0 && t.total_gas_per_op > t.commit_gas_per_op);
    assert!(t.blocks.iter().all(|b| b.prove_gas > 0 && b.finalize_gas > 0 && b.execute_gas > 0 && b.relay_gas > 0));
    // Amortisation: twice the capacity, less than the total gas per op.
    assert!(t.blocks[1].total_gas() / t.blocks[1].batch_ops() < t.blocks[0].total_gas() / t.blocks[0].batch_ops());
    assert_eq!(report.ops["withdraw"].blocks[1].ops, 2);
    let json: serde_json::Value = serde_json::from_str(&report_json(&report)).unwrap();
    assert!(json["ops"]["deposit"]["commit_gas_per_op"].as_u64().unwrap() > 0);
    assert!(json["ops"]["transfer"]["total_gas_per_op_by_capacity"]["4"].as_u64().unwrap() > 0);
}
