//! Where the settler's proofs come from: the `zkl prover` workers through the node's prover queue,
//! or the contracts' test circuit (for `TestVerifier` deployments).

use std::sync::Arc;

use alloy::primitives::{B256, U256};
use zkl_contracts::block::public_input;
use zkl_node::storage::{Storage, StorageError};

/// Why a proof could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored proof of block {block} is malformed: {msg}")]
    Malformed { block: u32, msg: String },
    #[error("cannot prove block {block}: {msg}")]
    Prove { block: u32, msg: String },
    #[error("no proof of block {0}")]
    Missing(u32),
    #[error("test circuit keys: {0}")]
    Keys(String),
}

/// Where proofs come from. The proof is the verifier's `uint256[8]` encoding of a Groth16 proof
/// whose public input is the block commitment's low 253 bits.
pub trait ProofSource: Send + Sync {
    /// The proof of `block`, or `None` while it is not available yet (asked again later).
    fn proof(&self, block: u32, commitment: B256) -> Result<Option<[U256; 8]>, ProofError>;
}

/// Proofs published by `zkl prover` workers through the node's prover queue (table `PROOFS`,
/// arkworks' compressed encoding, checked against the block's public input when submitted).
pub struct QueueProofSource {
    pub storage: Arc<Storage>,
}

impl ProofSource for QueueProofSource {
    fn proof(&self, block: u32, _commitment: B256) -> Result<Option<[U256; 8]>, ProofError> {
        use ark_serialize::CanonicalDeserialize;
        let Some(bytes) = self.storage.proof(block)? else {
            return Ok(None);
        };
        let proof = ark_groth16::Proof::<ark_bn254::Bn254>::deserialize_compressed(bytes.as_slice())
            .map_err(|e| ProofError::Malformed { block, msg: e.to_string() })?;
        Ok(Some(zkl_contracts::verifier::encode_proof(&proof)))
    }
}

/// Proofs of `zkl_contracts::verifier::test_circuit`, which the `TestVerifier` deployments check:
/// real Groth16 proofs whose public input is the block commitment (the circuit does not check the
/// block's rules; the block circuit replaces it).
pub struct TestCircuitProofSource {
    pk: ark_groth16::ProvingKey<ark_bn254::Bn254>,
}

impl TestCircuitProofSource {
    pub fn new() -> Result<Self, ProofError> {
        let pk = zkl_contracts::verifier::test_circuit::proving_key().map_err(|e| ProofError::Keys(e.to_string()))?;
        Ok(Self { pk })
    }
}

impl ProofSource for TestCircuitProofSource {
    fn proof(&self, block: u32, commitment: B256) -> Result<Option<[U256; 8]>, ProofError> {
        let proof = zkl_contracts::verifier::test_circuit::prove(&self.pk, public_input(commitment), block.into())
            .map_err(|e| ProofError::Prove { block, msg: e.to_string() })?;
        Ok(Some(zkl_contracts::verifier::encode_proof(&proof)))
    }
}
