//! A tiny run of the gas benchmark (the full run is `zkl bench gas`, outside CI).

use zkl_contracts::bench::{GasBenchConfig, report_json, run_gas_bench};

#[tokio::test]
async fn gas_bench_smoke() {
    let cfg = GasBenchConfig {
        capacities: vec![4, 8],
        only: vec!["transfer".into(), "withdraw".into(), "deposit".into()],
        anvil_args: Vec::new(),
    };
    let report = run_gas_bench(&cfg).await.unwrap();
    assert_eq!(report.ops.len(), 3);
    let t = &report.ops["transfer"];
    assert_eq!(t.pubdata_bytes, 20);
    assert_eq!(t.blocks.len(), 2);
    assert_eq!(t.blocks[1].ops, 8);
    assert!(t.commit_gas_per_op > 0 && t.total_gas_per_op > t.commit_gas_per_op);
    assert_eq!(report.ops["withdraw"].blocks[1].ops, 2);
    let json: serde_json::Value = serde_json::from_str(&report_json(&report)).unwrap();
    assert!(json["ops"]["deposit"]["commit_gas_per_op"].as_u64().unwrap() > 0);
}
