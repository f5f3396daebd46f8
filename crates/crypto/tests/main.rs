//! The integration tests of `crypto`, as one binary (one link instead of 2): run one file's
//! tests with `cargo test -p zkl-crypto --test crypto <file>::`.

mod circom_vectors;
mod protocol_doc;
