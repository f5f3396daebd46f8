//! alloy bindings generated from the committed artifacts (ABI + creation bytecode).

#![allow(clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ZkLink,
    "../../contracts/out/ZkLink.json"
);

alloy::sol!(
    #[sol(rpc)]
    PoseidonT6,
    "../../contracts/out/PoseidonT6.json"
);

alloy::sol!(
    #[sol(rpc)]
    TestVerifier,
    "../../contracts/out/TestVerifier.json"
);

alloy::sol!(
    #[sol(rpc)]
    TestERC20,
    "../../contracts/out/TestERC20.json"
);

alloy::sol!(
    #[sol(rpc)]
    RejectingReceiver,
    "../../contracts/out/RejectingReceiver.json"
);

alloy::sol!(
    #[sol(rpc)]
    ReentrantToken,
    "../../contracts/out/ReentrantToken.json"
);

alloy::sol!(
    #[sol(rpc)]
    ReturnBomb,
    "../../contracts/out/ReturnBomb.json"
);

alloy::sol!(
    #[sol(rpc)]
    ReentrantReceiver,
    "../../contracts/out/ReentrantReceiver.json"
);

alloy::sol!(
    #[sol(rpc)]
    MisbehavingToken,
    "../../contracts/out/MisbehavingToken.json"
);
