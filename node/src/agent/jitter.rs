//! Jittered periods for the node's heartbeats, as the kubelet's
//! `wait.JitterUntil(..., 0.04, ...)`: each wait is the interval plus up to
//! 4% more, so many nodes started together (a fleet after an outage, or a
//! process of hollow nodes) drift apart instead of writing in lockstep.

use std::hash::BuildHasher;
use std::time::Duration;

/// The kubelet's jitter factor for node status and Lease renewal.
pub const JITTER_FACTOR: f64 = 0.04;

/// `interval` plus a random share of up to `JITTER_FACTOR` of it.
pub fn jittered(interval: Duration) -> Duration {
    interval + interval.mul_f64(JITTER_FACTOR * unit_random())
}

/// A uniformly distributed number in `[0, 1)`. Each `RandomState` is
/// seeded afresh, which is random enough to spread timers.
pub fn unit_random() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().hash_one(0u8);
    // The top 53 bits fill an f64 mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_four_percent_and_varies() {
        let base = Duration::from_secs(10);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(waits.iter().all(|w| *w >= base && *w <= base.mul_f64(1.04)));
        let distinct: std::collections::HashSet<Duration> = waits.iter().copied().collect();
        assert!(distinct.len() > 100, "waits should differ: {distinct:?}");
    }
}
