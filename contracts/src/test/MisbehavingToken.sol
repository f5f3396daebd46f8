// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// An ERC-20 whose `transfer` misbehaves on demand, to check that a payout in it can fail (and
/// become a pending balance) but never make `executeBlocks` revert. `transferFrom` behaves.
contract MisbehavingToken {
    /// 0 = returns true, 1 = returns false, 2 = returns the word 2 (not a bool), 3 = returns
    /// nothing, 4 = reverts, 5 = returns true followed by 190,000 bytes. Modes 1, 2 and 4 move
    /// nothing.
    uint8 public mode;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        uint8 m = mode;
        if (m == 4) revert("no");
        if (m == 1 || m == 2) {
            // A refusal without moving anything: `false`, or a word that is no boolean.
            assembly {
                mstore(0, mul(m, sub(m, 1))) // 0 for mode 1, 2 for mode 2
                return(0, 32)
            }
        }
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        assembly {
            switch m
            case 3 { return(0, 0) }
            case 5 {
                mstore(0, 1)
                return(0, 190000)
            }
        }
        return true;
    }
}
