//! The agent's clock: monotonic time for deadlines, and wall-clock time
//! derived from it, so both move together (also under a paused tokio
//! clock in tests) and a step of the lifecycle sees one consistent `now`.

use tokio::time::Instant;
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::lifecycle::Now;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Now,
}

impl Clock {
    /// A clock anchored at the current system time.
    pub fn system() -> Self {
        Self::anchored_at(Timestamp::now())
    }

    /// A clock whose current wall-clock time is `wall`.
    pub fn anchored_at(wall: Timestamp) -> Self {
        Self {
            anchor: Now {
                mono: Instant::now(),
                wall,
            },
        }
    }

    pub fn now(&self) -> Now {
        let mono = Instant::now();
        Now {
            mono,
            wall: self.anchor.wall_at(mono),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}
