//! The light oracle's second round (protocol.md section 18): a signer attests a block final only
//! once every chain holds every other chain's sync hash of it, and never once a chain is in exodus.

use std::collections::HashMap;

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::block::final_digest;
use zkl_contracts::deploy::{Chain, ChainConfig, DEV_ORACLE_KEYS, ETH_TOKEN_ID, L2Block, send};
use zkl_l1::relayer::{OracleSigner, Relayer, Source};

fn config(evm: u64, l2_chain: u8) -> ChainConfig {
    ChainConfig {
        evm_chain_id: evm,
        l2_chain,
        chain_count: 2,
        data_availability_chain: 1,
        priority_expiration: 3600,
        priority_fee: 0,
        genesis_root: alloy::primitives::B256::repeat_byte(0xaa),
        fee_owner: alloy::primitives::Address::ZERO,
    }
}

#[tokio::test]
async fn finality_needs_every_chain_synced_and_no_exodus() {
    let a = Chain::deploy(config(7101, 1)).await.unwrap();
    let b = Chain::deploy(config(7102, 2)).await.unwrap();
    let sources: HashMap<u8, Source> = [&a, &b]
        .iter()
        .map(|c| {
            let source = Source {
                provider: c.provider.clone(),
                contract: *c.zklink.address(),
                confirmations: 1,
                start_block: 0,
            };
            (c.config.l2_chain, source)
        })
        .collect();
    let signers = DEV_ORACLE_KEYS.iter().map(|k| OracleSigner::new(k, sources.clone()).unwrap()).collect();
    let relayer = Relayer::new(signers, 2).unwrap();

    // Nothing committed: nothing to attest.
    assert!(relayer.collect_final(1).await.unwrap().is_none());
    let block = L2Block::new(1, 1, alloy::primitives::B256::repeat_byte(1), vec![], 64);
    let (sa, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let (sb, _) = b.commit(&b.genesis(), std::slice::from_ref(&block)).await.unwrap();
    assert!(relayer.collect_final(1).await.unwrap().is_none(), "no chain is synced yet");
    // Round one towards A only: B does not hold A's sync hash.
    let (h, sigs) = relayer.collect(2, 1, a.anvil.chain_id(), *a.zklink.address()).await.unwrap().unwrap();
    send(a.zklink.receiveSyncHash(2, 1, h, sigs)).await.unwrap();
    assert!(relayer.collect_final(1).await.unwrap().is_none(), "chain 2 is not synced");
    let (h, sigs) = relayer.collect(1, 1, b.anvil.chain_id(), *b.zklink.address()).await.unwrap().unwrap();
    send(b.zklink.receiveSyncHash(1, 1, h, sigs)).await.unwrap();

    // Both synced: the attestation is over the common sync hash and accepted by both contracts.
    let (h, sigs) = relayer.collect_final(1).await.unwrap().expect("final");
    assert_eq!(h, sa[0].syncHash);
    assert_eq!(sigs, a.sign_final(&sa[0]).unwrap());
    assert_eq!(a.zklink.finalDigest(1, h).call().await.unwrap(), final_digest(1, h));
    send(a.zklink.receiveFinalBlock(sa[0].clone(), sigs.clone())).await.unwrap();
    send(b.zklink.receiveFinalBlock(sb[0].clone(), sigs)).await.unwrap();

    // Once a chain is in exodus, an honest signer attests nothing more.
    let block2 = L2Block::new(2, 2, alloy::primitives::B256::repeat_byte(2), vec![], 64);
    let (sa2, _) = a.commit(&sa[0], std::slice::from_ref(&block2)).await.unwrap();
    let (sb2, _) = b.commit(&sb[0], std::slice::from_ref(&block2)).await.unwrap();
    send(a.zklink.receiveSyncHash(2, 2, sb2[0].syncHash, round_one(&a, 2, &sb2[0]))).await.unwrap();
    send(b.zklink.receiveSyncHash(1, 2, sa2[0].syncHash, round_one(&b, 1, &sa2[0]))).await.unwrap();
    let user = b.zklink_as(DEV_KEYS[1]).unwrap();
    send(user.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID).value(U256::ZERO)).await.unwrap();
    b.provider.anvil_increase_time(3601).await.unwrap();
    b.provider.evm_mine(None).await.unwrap();
    send(user.activateExodusMode()).await.unwrap();
    assert!(relayer.collect_final(2).await.unwrap().is_none(), "chain 2 is in exodus");
}

/// Round-one signatures of the harness oracle for `to`.
fn round_one(
    to: &Chain,
    src: u8,
    block: &zkl_contracts::bindings::ZkLink::StoredBlockInfo,
) -> Vec<alloy::primitives::Bytes> {
    to.sign_sync_hash(&DEV_ORACLE_KEYS[..2], src, block.blockNumber, block.syncHash).unwrap()
}
