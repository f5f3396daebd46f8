//! The integration tests of `rpc-api`, as one binary (one link instead of 2): run one file's
//! tests with `cargo test -p zkl-rpc-api --test api_docs <file>::`.

mod api_doc;
mod service_docs;
