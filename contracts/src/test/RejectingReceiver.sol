// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// Rejects ETH until `open` is set, to exercise the pending-balance fallback of withdrawals.
contract RejectingReceiver {
    bool public open;

    function setOpen(bool open_) external {
        open = open_;
    }

    receive() external payable {
        require(open, "closed");
    }
}
