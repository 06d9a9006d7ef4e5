//! CronJob schedules as Kubernetes reads them (robfig/cron's standard
//! parser): five fields (minute, hour, day of month, month, day of week
//! with Sunday = 0) or a descriptor (`@hourly`, `@every 90m`, ...).
//!
//! Parsing yields a `cron::Schedule` (which counts Sunday as 1 and wants a
//! seconds field) so the CronJob controller computes run times from the
//! same interpretation validation accepted.

use std::str::FromStr;
use std::time::Duration;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum CronSchedule {
    /// A calendar schedule (from five fields or a calendar descriptor).
    Calendar(Box<cron::Schedule>),
    /// `@every <duration>`: a fixed interval (at least one second).
    Every(Duration),
}

/// Why a schedule does not parse; the message is what Kubernetes reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

struct FieldSpec {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Added to every number when rewriting for the `cron` crate.
    shift: u32,
}

const MINUTE: FieldSpec = FieldSpec {
    min: 0,
    max: 59,
    names: &[],
    shift: 0,
};
const HOUR: FieldSpec = FieldSpec {
    min: 0,
    max: 23,
    names: &[],
    shift: 0,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    min: 1,
    max: 31,
    names: &[],
    shift: 0,
};
const MONTH: FieldSpec = FieldSpec {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    shift: 0,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    shift: 1,
};

/// Parses a schedule the way `cron.ParseStandard` does.
pub fn parse_schedule(spec: &str) -> Result<CronSchedule, ScheduleError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(ScheduleError("empty spec string".into()));
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return parse_descriptor(descriptor, spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ScheduleError(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        )));
    }
    let specs = [&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK];
    let mut rewritten = vec!["0".to_string()];
    for (field, spec) in fields.iter().zip(specs) {
        rewritten.push(rewrite_field(field, spec)?);
    }
    calendar(&rewritten.join(" "))
}

fn calendar(expression: &str) -> Result<CronSchedule, ScheduleError> {
    cron::Schedule::from_str(expression)
        .map(|s| CronSchedule::Calendar(Box::new(s)))
        .map_err(|e| ScheduleError(e.to_string()))
}

fn parse_descriptor(descriptor: &str, spec: &str) -> Result<CronSchedule, ScheduleError> {
    let expression = match descriptor {
        "yearly" | "annually" => "0 0 0 1 1 *",
        "monthly" => "0 0 0 1 * *",
        "weekly" => "0 0 0 * * 1",
        "daily" | "midnight" => "0 0 0 * * *",
        "hourly" => "0 0 * * * *",
        _ => {
            let Some(duration) = descriptor.strip_prefix("every ") else {
                return Err(ScheduleError(format!("unrecognized descriptor: {spec}")));
            };
            let d = parse_go_duration(duration)
                .map_err(|e| ScheduleError(format!("failed to parse duration {spec}: {e}")))?;
            // robfig/cron runs sub-second intervals once a second.
            return Ok(CronSchedule::Every(d.max(Duration::from_secs(1))));
        }
    };
    calendar(expression)
}

/// Checks one field (robfig's `getRange` rules) and rewrites it for the
/// `cron` crate: `?` becomes `*`, numbers shift by `spec.shift`, empty
/// list items are dropped.
fn rewrite_field(field: &str, spec: &FieldSpec) -> Result<String, ScheduleError> {
    let mut parts = Vec::new();
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        let (range, step) = match expr.split('/').collect::<Vec<_>>().as_slice() {
            [range] => (*range, None),
            [range, step] => (*range, Some(*step)),
            _ => return Err(ScheduleError(format!("too many slashes: {expr}"))),
        };
        let step = step.map(parse_int).transpose()?;
        let bounds: Vec<&str> = range.split('-').collect();
        let (start, end, rewritten_range) = if range == "*" || range == "?" {
            (spec.min, spec.max, "*".to_string())
        } else {
            let start = parse_int_or_name(bounds[0], spec.names)?;
            let end = match bounds.as_slice() {
                [_] if step.is_some() => spec.max,
                [_] => start,
                [_, end] => parse_int_or_name(end, spec.names)?,
                _ => return Err(ScheduleError(format!("too many hyphens: {expr}"))),
            };
            let text = if bounds.len() == 2 {
                format!("{}-{}", start + spec.shift, end + spec.shift)
            } else {
                (start + spec.shift).to_string()
            };
            (start, end, text)
        };
        if start < spec.min {
            return Err(ScheduleError(format!(
                "beginning of range ({start}) below minimum ({}): {expr}",
                spec.min
            )));
        }
        if end > spec.max {
            return Err(ScheduleError(format!(
                "end of range ({end}) above maximum ({}): {expr}",
                spec.max
            )));
        }
        if start > end {
            return Err(ScheduleError(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            )));
        }
        match step {
            Some(0) => {
                return Err(ScheduleError(format!(
                    "step of range should be a positive number: {expr}"
                )));
            }
            Some(n) => parts.push(format!("{rewritten_range}/{n}")),
            None => parts.push(rewritten_range),
        }
    }
    if parts.is_empty() {
        return Err(ScheduleError(format!(
            "failed to parse int from {field}: empty field"
        )));
    }
    Ok(parts.join(","))
}

fn parse_int_or_name(s: &str, names: &[&str]) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, weekday names from 0 (Sunday).
        let base = if names.len() == 12 { 1 } else { 0 };
        return Ok(u32::try_from(i).unwrap_or(0) + base);
    }
    parse_int(s)
}

fn parse_int(s: &str) -> Result<u32, ScheduleError> {
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Err(ScheduleError(format!(
            "negative number ({n}) not allowed: {s}"
        ))),
        Ok(n) => u32::try_from(n).map_err(|_| {
            ScheduleError(format!("failed to parse int from {s}: value out of range"))
        }),
        Err(_) => Err(ScheduleError(format!(
            "failed to parse int from {s}: invalid syntax"
        ))),
    }
}

/// Go's `time.ParseDuration`: `1h30m`, `1.5h`, `90s`, `300ms`.
fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{s}\"");
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(invalid());
    }
    let negative = s.starts_with('-');
    let mut rest = body;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '.')
            .map(char::len_utf8)
            .sum();
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            other => {
                return Err(format!(
                    "time: unknown unit \"{other}\" in duration \"{s}\""
                ));
            }
        };
        total_nanos += value * scale;
        rest = next;
    }
    if negative || total_nanos < 0.0 {
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_nanos(total_nanos.min(u64::MAX as f64) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        match parse_schedule(spec) {
            Ok(s) => panic!("{spec} parsed as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn cron_source(spec: &str) -> String {
        match parse_schedule(spec) {
            Ok(CronSchedule::Calendar(s)) => s.source().to_string(),
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn five_fields_are_required() {
        assert_eq!(
            err("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            err("0 * * * * *"),
            "expected exactly 5 fields, found 6: [0 * * * * *]"
        );
        assert_eq!(err(""), "empty spec string");
    }

    #[test]
    fn ranges_are_checked_like_robfig() {
        assert_eq!(
            err("60 * * * *"),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            err("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: invalid syntax"
        );
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
    }

    #[test]
    fn day_of_week_counts_sunday_as_zero() {
        assert_eq!(cron_source("0 9 * * 1-5"), "0 0 9 * * 2-6");
        assert_eq!(cron_source("*/15 * ? * sun"), "0 */15 * * * 1");
        assert_eq!(cron_source("0 0 1,15 jan-mar *"), "0 0 0 1,15 1-3 *");
        assert_eq!(cron_source("30 2 * * 0"), "0 30 2 * * 1");
    }

    #[test]
    fn descriptors_are_understood() {
        for d in [
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
        ] {
            assert!(
                matches!(parse_schedule(d), Ok(CronSchedule::Calendar(_))),
                "{d}"
            );
        }
        assert!(
            matches!(parse_schedule("@every 1h30m"), Ok(CronSchedule::Every(d)) if d == Duration::from_secs(5400))
        );
        assert!(
            matches!(parse_schedule("@every 100ms"), Ok(CronSchedule::Every(d)) if d == Duration::from_secs(1))
        );
        assert!(
            err("@every soon")
                .starts_with("failed to parse duration @every soon: time: invalid duration")
        );
        assert!(err("@every 5").contains("missing unit"));
    }

    #[test]
    fn parsed_schedules_mean_the_same_days() {
        use cron::TimeUnitSpec;
        let Ok(CronSchedule::Calendar(s)) = parse_schedule("0 0 * * 0,6") else {
            panic!("weekend schedule")
        };
        // The cron crate numbers Sunday 1 and Saturday 7.
        let days: Vec<u32> = s.days_of_week().iter().collect();
        assert_eq!(days, [1, 7]);
    }
}
