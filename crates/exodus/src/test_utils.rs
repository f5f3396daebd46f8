//! For tests: the chains file of deployments made with `zkl_contracts::deploy` (anvil).

use zkl_contracts::deploy::Chain;

use crate::{ChainEntry, ChainsFile};

/// The chains file naming `chains` (their anvil endpoints and contracts).
pub fn chains_file<'a>(chains: impl IntoIterator<Item = &'a Chain>) -> ChainsFile {
    ChainsFile {
        chains: chains
            .into_iter()
            .map(|c| ChainEntry {
                l2_chain: c.config.l2_chain,
                rpc: c.anvil.endpoint(),
                zklink: *c.zklink.address(),
                data_availability: c.config.data_availability(),
            })
            .collect(),
    }
}
