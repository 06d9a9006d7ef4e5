//! A container that never yields: after one line it computes forever without
//! sleeping or calling the host, so only the node's CPU limit (epoch
//! interruption) or a forced stop after the grace period can end it.

use std::hint::black_box;

fn main() {
    println!("spinning");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    loop {
        // A xorshift step; black_box keeps the loop from being optimised into
        // an empty one while still making no host calls.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state = black_box(state);
    }
}
