// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// A withdrawal recipient that accepts ETH and answers with `size` bytes of return data, to
/// check that payouts never copy return data (each copy would grow the caller's memory, whose
/// cost is quadratic).
contract ReturnBomb {
    uint256 public immutable size;

    constructor(uint256 size_) {
        size = size_;
    }

    receive() external payable {
        _bomb();
    }

    fallback() external payable {
        _bomb();
    }

    function _bomb() internal view {
        uint256 n = size;
        assembly {
            return(0, n)
        }
    }
}
