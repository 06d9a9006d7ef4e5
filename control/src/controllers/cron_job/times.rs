//! When a CronJob's schedule fires: the latest run time in a window and the
//! next one, in the CronJob's time zone, at minute resolution as
//! Kubernetes' cron parser works (`@every` at second resolution).

use std::time::Duration;

use cron::TimeUnitSpec;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use wasmpod_api::validation::schedule::CronSchedule;

/// How far the calendar is searched (a little over four years, so
/// February 29th is found).
const HORIZON_MINUTES: i64 = 366 * 4 * 24 * 60 + 24 * 60;

/// Whether the minute starting at `t` is a run time of `schedule` in `tz`.
fn fires(schedule: &cron::Schedule, tz: &TimeZone, t: Timestamp) -> bool {
    let local = t.to_zoned(tz.clone());
    let ordinal = |v: i8| u32::try_from(v).unwrap_or(u32::MAX);
    schedule.minutes().includes(ordinal(local.minute()))
        && schedule.hours().includes(ordinal(local.hour()))
        && schedule.days_of_month().includes(ordinal(local.day()))
        && schedule.months().includes(ordinal(local.month()))
        // The cron crate counts Sunday as 1.
        && schedule
            .days_of_week()
            .includes(ordinal(local.weekday().to_sunday_one_offset()))
}

fn floor_minute(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s - s.rem_euclid(60)).unwrap_or(t)
}

/// The latest run time in `(after, now]`, if any.
pub fn latest(
    schedule: &CronSchedule,
    tz: &TimeZone,
    after: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    if now <= after {
        return None;
    }
    match schedule {
        CronSchedule::Every(interval) => {
            let step = SignedDuration::try_from(*interval).ok()?;
            let steps = now.duration_since(after).as_secs() / step.as_secs().max(1);
            (steps > 0).then(|| after + step * i32::try_from(steps).unwrap_or(i32::MAX))
        }
        CronSchedule::Calendar(schedule) => {
            let mut t = floor_minute(now);
            for _ in 0..HORIZON_MINUTES {
                if t <= after {
                    return None;
                }
                if fires(schedule, tz, t) {
                    return Some(t);
                }
                t -= SignedDuration::from_mins(1);
            }
            None
        }
    }
}

/// The first run time after `now`, counting `@every` from `last`.
pub fn next(
    schedule: &CronSchedule,
    tz: &TimeZone,
    last: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    match schedule {
        CronSchedule::Every(interval) => {
            let step = SignedDuration::try_from(*interval).ok()?;
            let base = latest(schedule, tz, last, now).unwrap_or(last);
            Some(base + step)
        }
        CronSchedule::Calendar(schedule) => {
            let mut t = floor_minute(now) + SignedDuration::from_mins(1);
            for _ in 0..HORIZON_MINUTES {
                if fires(schedule, tz, t) {
                    return Some(t);
                }
                t += SignedDuration::from_mins(1);
            }
            None
        }
    }
}

/// The wait from `now` until `at` (zero if it passed).
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}
