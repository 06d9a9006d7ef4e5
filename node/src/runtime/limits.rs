//! Memory and CPU limits of one instance, as the store enforces them.
//!
//! **Memory** (`resources.limits.memory`): the sum of all linear memories of
//! the instance (a component may have several) may not exceed the limit. A
//! growth past it traps at once, the way the kernel's OOM killer ends a
//! container instead of failing its allocation, and the instance ends as
//! [`ExitStatus::OomKilled`](super::ExitStatus::OomKilled).
//!
//! **CPU** (`resources.limits.cpu`): a token bucket in the spirit of the CFS
//! bandwidth controller. An instance with `m` millicores earns `m/1000`
//! seconds of CPU per second of wall time and may save up at most one
//! period's worth (`period * m / 1000`). Time is measured only while the
//! guest's own code runs: the store's call hook stops the clock whenever the
//! guest calls into the host (WASI calls, memory growth, the epoch check
//! itself), so a guest waiting on I/O or a timer is not charged. At every
//! epoch tick the time used is charged; a guest in debt is put to sleep until
//! it has earned the debt back. A single instance is single-threaded, so
//! limits of 1000 millicores or more do not throttle.

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

/// Table elements an instance may grow a table to. Tables hold references,
/// a few bytes each; the limit keeps a guest from using tables to escape
/// its memory limit.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The error a denied memory growth traps with.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} bytes exceeded: {} bytes requested",
            self.limit, self.requested
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

/// Tracks the linear memory of one instance against its limit, and records
/// whether the limit was hit.
#[derive(Debug, Default)]
pub(crate) struct MemoryLimiter {
    limit: Option<u64>,
    total: u64,
    /// The growth last allowed, taken back if the allocation then fails.
    last_growth: u64,
    exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: Option<u64>) -> MemoryLimiter {
        MemoryLimiter {
            limit,
            ..MemoryLimiter::default()
        }
    }

    /// Whether the instance ever asked for more memory than its limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let requested = self.total.saturating_add(growth);
        if let Some(limit) = self.limit
            && requested > limit
        {
            self.exceeded = true;
            return Err(MemoryLimitExceeded { limit, requested }.into());
        }
        self.total = requested;
        self.last_growth = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The engine could not provide memory the limit allowed (for example
        // a full pool slot); the guest sees `memory.grow` fail.
        tracing::debug!(error = %error, "memory growth failed below the limit");
        self.total = self.total.saturating_sub(self.last_growth);
        self.last_growth = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Measures the time the guest's own code runs, from the store's call hook.
#[derive(Debug, Default)]
pub(crate) struct CpuMeter {
    running_since: Option<Instant>,
    unbilled: Duration,
}

impl CpuMeter {
    /// The guest starts or resumes running its own code.
    pub(crate) fn enter_guest(&mut self, now: Instant) {
        self.running_since = Some(now);
    }

    /// The guest calls into the host or returns to it.
    pub(crate) fn leave_guest(&mut self, now: Instant) {
        if let Some(since) = self.running_since.take() {
            self.unbilled += now.saturating_duration_since(since);
        }
    }

    /// The guest time measured since the last call, which is then reset.
    pub(crate) fn take_unbilled(&mut self) -> Duration {
        std::mem::take(&mut self.unbilled)
    }
}

/// What the epoch callback does with a guest after charging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpuDecision {
    /// Yield to let other tasks run, then continue.
    Yield,
    /// The guest is over budget: sleep this long, then continue.
    Throttle(Duration),
}

/// The CPU budget of one instance: a token bucket of guest time.
#[derive(Debug)]
pub(crate) struct CpuBudget {
    millicores: u64,
    burst_nanos: i128,
    balance_nanos: i128,
    refilled_at: Instant,
}

impl CpuBudget {
    /// A budget of `millicores` per `period`, or `None` when the limit cannot
    /// bind (one core or more, or a zero period).
    pub(crate) fn new(millicores: u32, period: Duration, now: Instant) -> Option<CpuBudget> {
        if millicores >= 1000 || period.is_zero() {
            return None;
        }
        // A zero limit would never run; treat it as the smallest share.
        let millicores = u64::from(millicores.max(1));
        let burst_nanos = period.as_nanos() as i128 * i128::from(millicores) / 1000;
        Some(CpuBudget {
            millicores,
            burst_nanos,
            balance_nanos: burst_nanos,
            refilled_at: now,
        })
    }

    /// Charges `used` guest time at `now`, and says whether the guest may
    /// continue or must sleep off its debt.
    pub(crate) fn charge(&mut self, used: Duration, now: Instant) -> CpuDecision {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = now;
        let earned = elapsed.as_nanos() as i128 * i128::from(self.millicores) / 1000;
        self.balance_nanos = (self.balance_nanos + earned).min(self.burst_nanos);
        self.balance_nanos -= used.as_nanos() as i128;
        if self.balance_nanos >= 0 {
            return CpuDecision::Yield;
        }
        let debt = self.balance_nanos.unsigned_abs();
        let sleep_nanos = debt.saturating_mul(1000) / u128::from(self.millicores);
        CpuDecision::Throttle(Duration::from_nanos(
            u64::try_from(sleep_nanos).unwrap_or(u64::MAX),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memory_growth_within_limit_is_allowed_and_counted() {
        let mut limiter = MemoryLimiter::new(Some(4 * MIB as u64));
        assert!(limiter.memory_growing(0, 2 * MIB, None).expect("allowed"));
        assert!(
            limiter
                .memory_growing(2 * MIB, 4 * MIB, None)
                .expect("allowed")
        );
        assert_eq!(limiter.total, 4 * MIB as u64);
        assert!(!limiter.exceeded());
    }

    #[test]
    fn memory_limit_is_shared_by_all_memories_of_an_instance() {
        let mut limiter = MemoryLimiter::new(Some(4 * MIB as u64));
        assert!(
            limiter
                .memory_growing(0, 3 * MIB, None)
                .expect("first memory")
        );
        let denied = limiter.memory_growing(0, 2 * MIB, None);
        let error = denied.expect_err("second memory exceeds the total");
        assert!(error.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert!(limiter.exceeded());
        assert_eq!(limiter.total, 3 * MIB as u64);
    }

    #[test]
    fn failed_growth_is_not_counted() {
        let mut limiter = MemoryLimiter::new(None);
        assert!(limiter.memory_growing(0, MIB, None).expect("allowed"));
        assert!(limiter.memory_growing(MIB, 3 * MIB, None).expect("allowed"));
        limiter
            .memory_grow_failed(wasmtime::Error::msg("pool slot full"))
            .expect("handled");
        assert_eq!(limiter.total, MIB as u64);
    }

    #[test]
    fn tables_cannot_grow_without_bound() {
        let mut limiter = MemoryLimiter::new(None);
        assert!(limiter.table_growing(0, 10, None).expect("small"));
        assert!(
            !limiter
                .table_growing(10, MAX_TABLE_ELEMENTS + 1, None)
                .expect("large")
        );
    }

    #[test]
    fn meter_counts_only_guest_time() {
        let start = Instant::now();
        let mut meter = CpuMeter::default();
        meter.enter_guest(start);
        meter.leave_guest(start + Duration::from_millis(3));
        // Time in the host (for example a sleep) is not counted.
        meter.enter_guest(start + Duration::from_millis(50));
        meter.leave_guest(start + Duration::from_millis(52));
        assert_eq!(meter.take_unbilled(), Duration::from_millis(5));
        assert_eq!(meter.take_unbilled(), Duration::ZERO);
    }

    #[test]
    fn full_core_or_more_is_not_limited() {
        let now = Instant::now();
        assert!(CpuBudget::new(1000, Duration::from_millis(100), now).is_none());
        assert!(CpuBudget::new(2500, Duration::from_millis(100), now).is_none());
        assert!(CpuBudget::new(500, Duration::from_millis(100), now).is_some());
    }

    #[test]
    fn busy_guest_gets_its_share_of_each_period() {
        // 100 millicores, 100 ms period: a guest that runs whenever allowed,
        // charged every 10 ms tick, runs 10% of the time.
        let tick = Duration::from_millis(10);
        let start = Instant::now();
        let mut budget = CpuBudget::new(100, Duration::from_millis(100), start).expect("limited");
        let mut now = start;
        let mut ran = Duration::ZERO;
        while now < start + Duration::from_secs(10) {
            now += tick;
            ran += tick;
            if let CpuDecision::Throttle(sleep) = budget.charge(tick, now) {
                now += sleep;
            }
        }
        let share = ran.as_secs_f64() / (now - start).as_secs_f64();
        assert!((0.09..=0.11).contains(&share), "share {share}");
    }

    #[test]
    fn idle_guest_saves_at_most_one_period() {
        let start = Instant::now();
        let mut budget = CpuBudget::new(200, Duration::from_millis(100), start).expect("limited");
        // After a long idle time, 20 ms may be spent at once, not more.
        let later = start + Duration::from_secs(60);
        assert_eq!(
            budget.charge(Duration::from_millis(20), later),
            CpuDecision::Yield
        );
        assert_eq!(
            budget.charge(Duration::from_millis(10), later),
            CpuDecision::Throttle(Duration::from_millis(50))
        );
    }
}
