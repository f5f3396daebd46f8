//! The block circuit's Groth16 verifier on an EVM: the Solidity verifier generated from the
//! block circuit's verifying key (`zkl_contracts::verifier::groth16_verifier_solidity`) is
//! compiled with solc-js, deployed on anvil as ZkLink's verifier, and a real proof of a real
//! block (a deposit made through the contract) is accepted by `ZkLink.proveBlocks`; a proof for
//! another public input is rejected, by the verifier and by `proveBlocks`.
//!
//! Needs `node` with solc-js and anvil: `contracts/node_modules` (`npm ci` in `contracts/`), or
//! `ZKL_SOLC=<dir of the solc package>` and `ZKL_ANVIL=<anvil binary>`.

use alloy::primitives::{Address as EvmAddress, B256, Bytes, U256};
use alloy::providers::Provider;
use ark_ff::{BigInteger, Field, PrimeField};
use rand::SeedableRng;
use zkl_circuit::Fr;
use zkl_circuit::block::{BlockCircuit, BlockWitness};
use zkl_circuit::groth16::KeyCache;
use zkl_contracts::anvil::{Anvil, DEV_KEYS};
use zkl_contracts::bindings::{PoseidonT6, TestVerifier, ZkLink};
use zkl_contracts::block::{genesis_info, public_input};
use zkl_contracts::deploy::{ETH_TOKEN_ID, L2Block, provider, send, signer};
use zkl_contracts::verifier;
use zkl_state::testkit::{ETH, ONE, User, demo_registry, deposit};
use zkl_state::{BlockParams, State};
use zkl_types::Address;

const CAPACITY: usize = 4;
const FEE_SLOTS: usize = 2;

fn b256(x: &Fr) -> B256 {
    B256::from_slice(&x.into_bigint().to_bytes_be())
}

fn compile(source: &str, name: &str) -> Vec<u8> {
    zkl_contracts::solc::compile(source, name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_proof_verifies_in_zklink_prove_blocks() {
    // Keys (cached under target/zkl-keys; about a minute the first time) and the verifier.
    let keys = KeyCache::new(KeyCache::default_dir(), false)
        .load_or_setup("block-c4-f2", BlockCircuit::blank(CAPACITY, FEE_SLOTS))
        .unwrap();
    let solidity = verifier::groth16_verifier_solidity(&keys.vk, "BlockVerifier").unwrap();
    let bytecode = compile(&solidity, "BlockVerifier");

    // Chain 1 of two, with ZkLink verifying through the block verifier; the L2 genesis root is
    // the state machine's.
    let mut state = State::new(demo_registry(), User::new(999).address);
    state.set_block_params(BlockParams { capacity: CAPACITY, max_fee_tokens: FEE_SLOTS, max_onchain_ops: CAPACITY });
    let genesis_root = state.root();
    let anvil = Anvil::spawn(31337).unwrap();
    let p = provider(&anvil, DEV_KEYS[0]).unwrap();
    let governor = signer(DEV_KEYS[0]).unwrap().address();
    let tx = alloy::network::TransactionBuilder::with_deploy_code(
        alloy::rpc::types::TransactionRequest::default().from(governor),
        Bytes::from(bytecode),
    );
    let receipt = p.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    let block_verifier = receipt.contract_address.expect("verifier deployed");
    let poseidon = *PoseidonT6::deploy(p.clone()).await.unwrap().address();
    let params = ZkLink::InitParams {
        governor,
        capacities: vec![CAPACITY as u32],
        verifiers: vec![block_verifier],
        exitVerifier: block_verifier,
        poseidon,
        chainId: 1,
        chainCount: 2,
        dataAvailabilityChain: 1,
        priorityExpirationPeriod: 3 * 24 * 3600,
        priorityFee: 0,
        genesisRoot: b256(&genesis_root),
        feeOwner: EvmAddress::ZERO,
    };
    let zklink = ZkLink::deploy(p.clone(), params).await.unwrap();
    send(zklink.setValidator(governor, true)).await.unwrap();
    send(zklink.registerToken(ETH_TOKEN_ID, EvmAddress::ZERO, 18, 0)).await.unwrap();

    // A user deposits 1 ETH through the contract; the state machine executes the request.
    let user = signer(DEV_KEYS[1]).unwrap().address();
    let owner = Address::from_evm(user.0.0);
    let as_user = ZkLink::new(*zklink.address(), provider(&anvil, DEV_KEYS[1]).unwrap());
    send(as_user.depositETH(B256::from(owner.0), 0, ETH).value(U256::from(ONE))).await.unwrap();
    let pre = state.clone();
    state.execute_priority(&deposit(1, 0, owner, ETH, ETH, ONE)).unwrap();
    let now =
        p.get_block(alloy::eips::BlockNumberOrTag::Latest.into()).await.unwrap().expect("latest").header.timestamp;
    let block = state.seal_block(now);

    // Commit it, prove it with the block circuit, and prove it on chain.
    let l2 = L2Block::new(block.number, block.timestamp, b256(&block.commitment.new_root), block.ops.clone(), CAPACITY);
    let genesis = genesis_info(b256(&genesis_root));
    let stored = l2.stored_info(&genesis, 1).unwrap();
    assert_eq!(stored.commitment, B256::from(block.commitment_hash));
    assert_eq!(public_input(stored.commitment), block.public_input);
    send(zklink.commitBlocks(genesis, vec![l2.commit_info(1, true).unwrap()])).await.unwrap();

    let w = BlockWitness::build(&pre, &block, &[None], FEE_SLOTS).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let proof = keys.prove(BlockCircuit { witness: w }, &mut rng).unwrap();
    assert!(keys.verify(&[block.public_input], &proof).unwrap());
    let words = verifier::encode_proof(&proof);
    let input = U256::from_be_slice(&block.public_input.into_bigint().to_bytes_be());
    let wrong = U256::from_be_slice(&(block.public_input + Fr::ONE).into_bigint().to_bytes_be());
    let v = TestVerifier::new(block_verifier, p.clone());
    assert!(v.verifyProof(words, input).call().await.unwrap(), "the verifier rejects a valid block proof");
    assert!(!v.verifyProof(words, wrong).call().await.unwrap(), "the verifier accepts a wrong public input");

    // proveBlocks: a tampered proof is rejected.
    let mut tampered = words;
    tampered[0] = words[6];
    tampered[1] = words[7];
    assert!(zklink.proveBlocks(vec![stored.clone()], vec![tampered], CAPACITY as u32).call().await.is_err());

    // Block 2, another deposit. The DA chain takes its own on-chain hash from the commit
    // without recomputing it (protocol.md section 13): a wrong one is committed, but the block's
    // real proof does not verify for it, alone or batched with block 1's.
    send(as_user.depositETH(B256::from(owner.0), 0, ETH).value(U256::from(ONE))).await.unwrap();
    let pre2 = state.clone();
    state.execute_priority(&deposit(1, 1, owner, ETH, ETH, ONE)).unwrap();
    let block2 = state.seal_block(now + 1);
    let l2b =
        L2Block::new(block2.number, block2.timestamp, b256(&block2.commitment.new_root), block2.ops.clone(), CAPACITY);
    let mut info2 = l2b.commit_info(1, true).unwrap();
    info2.onchainHashes[0] = B256::repeat_byte(7);
    let mut hashes = l2b.onchain_hashes().unwrap().map(|h| h.0);
    hashes[0] = [7; 32];
    let preimage = zkl_types::block::commitment_preimage(
        block2.number,
        block2.timestamp,
        &stored.stateRoot.0,
        &l2b.new_root.0,
        &zkl_types::block::pubdata_hash(&l2b.pubdata().unwrap()),
        &hashes,
    );
    let wrong_commitment = B256::from_slice(&<sha2::Sha256 as sha2::Digest>::digest(preimage));
    let stored2_wrong = l2b.stored_info_with(&stored, 1, wrong_commitment);
    send(zklink.commitBlocks(stored.clone(), vec![info2])).await.unwrap();
    let w2 = BlockWitness::build(&pre2, &block2, &[None], FEE_SLOTS).unwrap();
    let words2 = verifier::encode_proof(&keys.prove(BlockCircuit { witness: w2 }, &mut rng).unwrap());
    let both = |second: &ZkLink::StoredBlockInfo| vec![stored.clone(), second.clone()];
    assert!(zklink.proveBlocks(both(&stored2_wrong), vec![words, words2], CAPACITY as u32).call().await.is_err());
    send(zklink.revertBlocks(vec![stored2_wrong])).await.unwrap();

    // Committed honestly, both real proofs verify in one batched check.
    let stored2 = l2b.stored_info(&stored, 1).unwrap();
    assert_eq!(public_input(stored2.commitment), block2.public_input);
    send(zklink.commitBlocks(stored.clone(), vec![l2b.commit_info(1, true).unwrap()])).await.unwrap();
    assert!(
        zklink.proveBlocks(both(&stored2), vec![words2, words], CAPACITY as u32).call().await.is_err(),
        "proofs swapped"
    );
    let receipt = send(zklink.proveBlocks(both(&stored2), vec![words, words2], CAPACITY as u32)).await.unwrap();
    println!("proveBlocks of 2 real block proofs: {} gas", receipt.gas_used);
    assert_eq!(zklink.blockCounters().call().await.unwrap().proven, 2);
}
