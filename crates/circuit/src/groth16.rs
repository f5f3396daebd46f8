//! Groth16 over BN254: deterministic development setup, keys cached on disk, prove and verify
//! wrappers, and constraint-count reports.
//!
//! # Development setup (not for production)
//!
//! [`dev_setup`] draws the toxic waste from ChaCha20 seeded with
//! `SHA-256("zklink-rs/groth16-dev-setup/v1" ‖ 0x00 ‖ name ‖ 0x00 ‖ shape_hash)`, so anyone can
//! regenerate (and forge proofs for) these keys: they exist for local chains and tests. A real
//! deployment replaces the `.pk`/`.vk` files with the output of a multi-party ceremony for the
//! same circuit shape (same constraint matrices, hence the same shape hash) and keeps the file
//! format below.
//!
//! # Key cache
//!
//! [`KeyCache::load_or_setup`] keeps `<dir>/<name>-<shape>.pk`, `.vk` (arkworks uncompressed
//! serialisation) and `.sha256` (the hex SHA-256 of both files, one per line). The shape hash
//! is the SHA-256 of the circuit's constraint matrices and variable counts, so a changed circuit
//! gets new keys. Loading recomputes both digests and refuses files that do not match.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ark_bn254::Bn254;
use ark_ff::{BigInteger, PrimeField, UniformRand};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, Matrix, OptimizationGoal, R1CS_PREDICATE_LABEL,
    SynthesisError, SynthesisMode,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::Fr;

/// Domain separator of the development setup seed.
pub const DEV_SETUP_DOMAIN: &[u8] = b"zklink-rs/groth16-dev-setup/v1";

/// Why keys could not be set up, stored, loaded, or a proof made.
#[derive(Debug, thiserror::Error)]
pub enum Groth16Error {
    #[error("constraint synthesis failed: {0}")]
    Synthesis(#[from] SynthesisError),
    #[error("key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file {path} does not match its recorded SHA-256 (delete the key files to regenerate them)")]
    DigestMismatch { path: PathBuf },
    #[error("key file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("the witness does not satisfy the circuit (first failing constraint: {0})")]
    Unsatisfied(String),
}

/// Sizes of a circuit, measured by synthesising it in setup mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConstraintReport {
    pub constraints: usize,
    /// Public inputs, not counting the constant 1.
    pub public_inputs: usize,
    pub witnesses: usize,
}

impl std::fmt::Display for ConstraintReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} constraints, {} public inputs, {} witness variables",
            self.constraints, self.public_inputs, self.witnesses
        )
    }
}

/// A circuit given by a closure, for measuring gadgets: `constraint_report(SynthFn(|cs| ...))`.
pub struct SynthFn<F>(pub F);

impl<F: FnOnce(ConstraintSystemRef<Fr>) -> Result<(), SynthesisError>> ConstraintSynthesizer<Fr> for SynthFn<F> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        (self.0)(cs)
    }
}

/// Synthesises `circuit` in setup mode (no witness needed) and counts its constraints.
pub fn constraint_report<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<ConstraintReport, SynthesisError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    Ok(ConstraintReport {
        constraints: cs.num_constraints(),
        public_inputs: cs.num_instance_variables() - 1,
        witnesses: cs.num_witness_variables(),
    })
}

/// Synthesises `circuit` with its witness and reports whether every constraint holds; on failure,
/// the name of the first failing constraint.
pub fn check_satisfied<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<Result<(), String>, SynthesisError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    if cs.is_satisfied()? { Ok(Ok(())) } else { Ok(Err(cs.which_is_unsatisfied()?.unwrap_or_default())) }
}

/// The shape hash: SHA-256 over the variable counts and every constraint matrix entry.
pub fn shape_hash<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<[u8; 32], SynthesisError> {
    Ok(shape(circuit)?.0)
}

/// A circuit's constraint matrices and sizes (its R1CS), built once when its keys are loaded, so
/// that a proof only generates the witness.
struct R1cs {
    /// A, B, C.
    matrices: Vec<Matrix<Fr>>,
    num_instance: usize,
    num_witness: usize,
    num_constraints: usize,
}

impl R1cs {
    /// The first constraint `(A·z)(B·z) = C·z` that `z` (instance then witness) breaks.
    fn first_unsatisfied(&self, z: &[Fr]) -> Option<usize> {
        let dot = |row: &[(Fr, usize)]| row.iter().map(|(c, i)| *c * z[*i]).sum::<Fr>();
        let [a, b, c] = &self.matrices[..] else { unreachable!("shape() keeps exactly A, B and C") };
        (0..self.num_constraints).into_par_iter().find_first(|&i| dot(&a[i]) * dot(&b[i]) != dot(&c[i]))
    }
}

/// Synthesises `circuit` in setup mode: its shape hash and its R1CS.
fn shape<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<([u8; 32], R1cs), SynthesisError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    let mut h = Sha256::new();
    h.update(b"zklink-rs/circuit-shape/v1");
    for n in [cs.num_instance_variables(), cs.num_witness_variables(), cs.num_constraints()] {
        h.update((n as u64).to_le_bytes());
    }
    let mut all = cs.to_matrices()?;
    for (label, matrices) in &all {
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        for matrix in matrices {
            h.update((matrix.len() as u64).to_le_bytes());
            for row in matrix {
                h.update((row.len() as u64).to_le_bytes());
                for (coeff, index) in row {
                    h.update(coeff.into_bigint().to_bytes_le());
                    h.update((*index as u64).to_le_bytes());
                }
            }
        }
    }
    let matrices =
        all.remove(R1CS_PREDICATE_LABEL).filter(|m| m.len() == 3).ok_or(SynthesisError::PredicateNotFound)?;
    let r1cs = R1cs {
        matrices,
        num_instance: cs.num_instance_variables(),
        num_witness: cs.num_witness_variables(),
        num_constraints: cs.num_constraints(),
    };
    Ok((h.finalize().into(), r1cs))
}

/// The deterministic development RNG for a circuit (see the module documentation).
pub fn dev_rng(name: &str, shape: &[u8; 32]) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(DEV_SETUP_DOMAIN);
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(shape);
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// Runs the deterministic development setup.
pub fn dev_setup<C: ConstraintSynthesizer<Fr>>(
    name: &str,
    shape: &[u8; 32],
    circuit: C,
) -> Result<(ProvingKey<Bn254>, VerifyingKey<Bn254>), Groth16Error> {
    let mut rng = dev_rng(name, shape);
    Ok(Groth16::<Bn254>::circuit_specific_setup(circuit, &mut rng)?)
}

/// Where a proof's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProveTimings {
    /// Synthesis in witness-only mode (the circuit's gadgets computing every variable).
    pub witness: Duration,
    /// Checking the witness against every constraint with the cached matrices.
    pub check: Duration,
    /// The Groth16 prover: the QAP witness map (FFTs) and the multi-scalar multiplications.
    pub groth16: Duration,
}

/// Proving and verifying keys of one circuit.
pub struct Keys {
    pub name: String,
    pub shape: [u8; 32],
    pub pk: ProvingKey<Bn254>,
    pub vk: VerifyingKey<Bn254>,
    pub pvk: PreparedVerifyingKey<Bn254>,
    r1cs: R1cs,
}

/// A directory of cached keys (by default `target/zkl-keys`).
pub struct KeyCache {
    dir: PathBuf,
    progress: bool,
}

fn spinner(enabled: bool, msg: String) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
        pb.set_style(style);
    }
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Groth16Error + '_ {
    move |source| Groth16Error::Io { path: path.to_path_buf(), source }
}

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl KeyCache {
    /// A cache in `dir`; `progress` draws a spinner on stderr (hidden when stderr is not a terminal).
    pub fn new(dir: impl Into<PathBuf>, progress: bool) -> Self {
        Self { dir: dir.into(), progress }
    }

    /// `<workspace>/target/zkl-keys` (or `$CARGO_TARGET_DIR/zkl-keys`).
    pub fn default_dir() -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        target.join("zkl-keys")
    }

    /// The file stem of a circuit's keys.
    pub fn stem(&self, name: &str, shape: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{name}-{}", &hex::encode(shape)[..16]))
    }

    /// Loads the keys of `circuit` (a clone is synthesised to compute the shape), or runs the
    /// development setup and stores them.
    pub fn load_or_setup<C: ConstraintSynthesizer<Fr> + Clone>(
        &self,
        name: &str,
        circuit: C,
    ) -> Result<Keys, Groth16Error> {
        let pb = spinner(self.progress, format!("{name}: synthesising circuit"));
        let (shape, r1cs) = shape(circuit.clone())?;
        let stem = self.stem(name, &shape);
        let (pk, vk) = if stem.with_extension("sha256").exists() {
            pb.set_message(format!("{name}: loading keys {}", stem.display()));
            self.load(&stem)?
        } else {
            pb.set_message(format!("{name}: generating development keys (deterministic setup)"));
            let (pk, vk) = dev_setup(name, &shape, circuit)?;
            pb.set_message(format!("{name}: writing keys {}", stem.display()));
            self.store(&stem, &pk, &vk)?;
            (pk, vk)
        };
        pb.finish_and_clear();
        let pvk = Groth16::<Bn254>::process_vk(&vk)?;
        Ok(Keys { name: name.to_string(), shape, pk, vk, pvk, r1cs })
    }

    fn store(&self, stem: &Path, pk: &ProvingKey<Bn254>, vk: &VerifyingKey<Bn254>) -> Result<(), Groth16Error> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let mut pk_bytes = Vec::new();
        let mut vk_bytes = Vec::new();
        let malformed = |path: &Path, e: ark_serialize::SerializationError| Groth16Error::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let (pk_path, vk_path, sum_path) = paths(stem);
        pk.serialize_uncompressed(&mut pk_bytes).map_err(|e| malformed(&pk_path, e))?;
        vk.serialize_uncompressed(&mut vk_bytes).map_err(|e| malformed(&vk_path, e))?;
        write_atomic(&pk_path, &pk_bytes)?;
        write_atomic(&vk_path, &vk_bytes)?;
        // The digest file is written last: its presence marks a complete entry.
        let sums = format!("{}\n{}\n", hex_digest(&pk_bytes), hex_digest(&vk_bytes));
        write_atomic(&sum_path, sums.as_bytes())
    }

    fn load(&self, stem: &Path) -> Result<(ProvingKey<Bn254>, VerifyingKey<Bn254>), Groth16Error> {
        let (pk_path, vk_path, sum_path) = paths(stem);
        let sums = fs::read_to_string(&sum_path).map_err(io_err(&sum_path))?;
        let mut lines = sums.lines();
        let (Some(pk_sum), Some(vk_sum)) = (lines.next(), lines.next()) else {
            return Err(Groth16Error::Malformed { path: sum_path, reason: "expected two digests".into() });
        };
        let pk_bytes = fs::read(&pk_path).map_err(io_err(&pk_path))?;
        if hex_digest(&pk_bytes) != pk_sum.trim() {
            return Err(Groth16Error::DigestMismatch { path: pk_path });
        }
        let vk_bytes = fs::read(&vk_path).map_err(io_err(&vk_path))?;
        if hex_digest(&vk_bytes) != vk_sum.trim() {
            return Err(Groth16Error::DigestMismatch { path: vk_path });
        }
        // The digests match what this cache wrote, so the (slow) subgroup checks are skipped.
        let pk = ProvingKey::deserialize_with_mode(&pk_bytes[..], Compress::No, Validate::No)
            .map_err(|e| Groth16Error::Malformed { path: pk_path, reason: e.to_string() })?;
        let vk = VerifyingKey::deserialize_with_mode(&vk_bytes[..], Compress::No, Validate::No)
            .map_err(|e| Groth16Error::Malformed { path: vk_path, reason: e.to_string() })?;
        Ok((pk, vk))
    }
}

fn paths(stem: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (stem.with_extension("pk"), stem.with_extension("vk"), stem.with_extension("sha256"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Groth16Error> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

impl Keys {
    /// Proves `circuit`: one synthesis that only generates the witness (the constraint matrices
    /// were built when the keys were loaded), checked against every constraint first, so an
    /// unsatisfied witness is reported instead of producing a proof that fails verification
    /// ([`check_satisfied`] names the failing constraint).
    pub fn prove<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Result<Proof<Bn254>, Groth16Error> {
        self.prove_timed(circuit, rng).map(|(proof, _)| proof)
    }

    /// [`Self::prove`], with where the time went.
    pub fn prove_timed<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Result<(Proof<Bn254>, ProveTimings), Groth16Error> {
        let started = std::time::Instant::now();
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Prove { construct_matrices: false, generate_lc_assignments: false });
        circuit.generate_constraints(cs.clone())?;
        let r1cs = &self.r1cs;
        if (cs.num_instance_variables(), cs.num_witness_variables()) != (r1cs.num_instance, r1cs.num_witness) {
            return Err(Groth16Error::Unsatisfied(format!(
                "the circuit has {} inputs and {} witnesses, the keys of {} {} and {}",
                cs.num_instance_variables(),
                cs.num_witness_variables(),
                self.name,
                r1cs.num_instance,
                r1cs.num_witness
            )));
        }
        let mut full_assignment = cs.instance_assignment()?;
        full_assignment.extend(cs.witness_assignment()?);
        drop(cs);
        let witness = started.elapsed();
        if let Some(i) = r1cs.first_unsatisfied(&full_assignment) {
            return Err(Groth16Error::Unsatisfied(format!("R1CS row {i} of {}", r1cs.num_constraints)));
        }
        let check = started.elapsed() - witness;
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        let proof = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
            &self.pk,
            r,
            s,
            &r1cs.matrices,
            r1cs.num_instance,
            r1cs.num_constraints,
            &full_assignment,
        )?;
        let groth16 = started.elapsed() - witness - check;
        Ok((proof, ProveTimings { witness, check, groth16 }))
    }

    /// Verifies a proof against public inputs.
    pub fn verify(&self, public_inputs: &[Fr], proof: &Proof<Bn254>) -> Result<bool, Groth16Error> {
        Ok(Groth16::<Bn254>::verify_with_processed_vk(&self.pvk, public_inputs, proof)?)
    }
}
