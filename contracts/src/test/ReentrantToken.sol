// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// ERC-20 whose `transferFrom` calls back into `target` with `payload` once (bubbling its revert),
/// to test the deposit reentrancy guard.
contract ReentrantToken {
    mapping(address => uint256) public balanceOf;
    address public target;
    bytes public payload;
    bool internal entered;

    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address, uint256) external pure returns (bool) {
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        if (target != address(0) && !entered) {
            entered = true;
            (bool ok, bytes memory ret) = target.call(payload);
            if (!ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
        return true;
    }
}
