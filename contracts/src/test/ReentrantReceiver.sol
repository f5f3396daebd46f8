// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// A withdrawal recipient that, when paid, calls `target` with `payload` once and records whether
/// that call succeeded (without reverting the payment), to test the guards of `executeBlocks`.
contract ReentrantReceiver {
    address public target;
    bytes public payload;
    bool public entered;
    bool public reentered;

    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    receive() external payable {
        if (target != address(0) && !entered) {
            entered = true;
            (bool ok,) = target.call(payload);
            reentered = ok;
        }
    }
}
