//! The query of a container log request, checked as Kubernetes checks
//! `PodLogOptions`: a bad value is an error naming its parameter.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

/// What a log request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// The UID of the pod, which names its directory on the node.
    pub pod_uid: String,
    /// Keep streaming new output until the container attempt has ended.
    pub follow: bool,
    /// The attempt before the current one.
    pub previous: bool,
    /// Prefix each line with the time it was written.
    pub timestamps: bool,
    /// Only the last this many lines.
    pub tail_lines: Option<u64>,
    /// Only lines written at or after this time (`sinceSeconds`/`sinceTime`).
    pub since: Option<Timestamp>,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Reads the query parameters; `now` anchors `sinceSeconds`. The error is
    /// the message of a 400 response.
    pub fn parse(query: &HashMap<String, String>, now: Timestamp) -> Result<LogOptions, String> {
        let pod_uid = query.get("podUID").cloned().unwrap_or_default();
        check_path_segment("podUID", &pod_uid)?;
        let tail_lines = match number("tailLines", query)? {
            Some(n) if n < 0 => return Err(at_least("tailLines", n, 0)),
            n => n.map(|n| n.unsigned_abs()),
        };
        let limit_bytes = match number("limitBytes", query)? {
            Some(n) if n < 1 => return Err(at_least("limitBytes", n, 1)),
            n => n.map(|n| n.unsigned_abs()),
        };
        let since_seconds = match number("sinceSeconds", query)? {
            Some(n) if n < 1 => return Err(at_least("sinceSeconds", n, 1)),
            n => n,
        };
        let since_time = match query.get("sinceTime").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<Timestamp>().map_err(|e| {
                format!("sinceTime: invalid value {v:?}: must be an RFC 3339 time: {e}")
            })?),
        };
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err("sinceSeconds, sinceTime: at most one of sinceTime or sinceSeconds may be specified".into());
            }
            (Some(seconds), None) => Some(
                now.checked_sub(SignedDuration::from_secs(seconds))
                    .unwrap_or(Timestamp::MIN),
            ),
            (None, time) => time,
        };
        Ok(LogOptions {
            pod_uid,
            follow: boolean("follow", query)?,
            previous: boolean("previous", query)?,
            timestamps: boolean("timestamps", query)?,
            tail_lines,
            since,
            limit_bytes,
        })
    }
}

/// Refuses names that would leave the directory they name a part of.
pub fn check_path_segment(param: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{param}: Required value"));
    }
    if value == "." || value == ".." || value.contains(['/', '\\', '\0']) {
        return Err(format!(
            "{param}: invalid value {value:?}: must not be a path"
        ));
    }
    Ok(())
}

/// A boolean as Go's `strconv.ParseBool` reads it; empty is false.
fn boolean(param: &str, query: &HashMap<String, String>) -> Result<bool, String> {
    match query.get(param).map(String::as_str) {
        None | Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some(other) => Err(format!(
            "{param}: invalid value {other:?}: must be true or false"
        )),
    }
}

fn number(param: &str, query: &HashMap<String, String>) -> Result<Option<i64>, String> {
    match query.get(param).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{param}: invalid value {v:?}: must be an integer")),
    }
}

fn at_least(param: &str, value: i64, min: i64) -> String {
    let what = if min == 0 {
        "must be greater than or equal to 0".to_string()
    } else {
        format!("must be greater than {}", min - 1)
    };
    format!("{param}: Invalid value: {value}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<LogOptions, String> {
        let mut map: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("podUID".into()).or_insert_with(|| "uid-1".into());
        LogOptions::parse(&map, Timestamp::new(1_000, 0).expect("a time"))
    }

    #[test]
    fn values_are_read() {
        let options = parse(&[
            ("follow", "true"),
            ("previous", "1"),
            ("timestamps", "false"),
            ("tailLines", "0"),
            ("limitBytes", "10"),
            ("sinceSeconds", "60"),
        ])
        .expect("valid");
        assert_eq!(
            options,
            LogOptions {
                pod_uid: "uid-1".into(),
                follow: true,
                previous: true,
                timestamps: false,
                tail_lines: Some(0),
                since: Some(Timestamp::new(940, 0).expect("a time")),
                limit_bytes: Some(10),
            }
        );
        let since = parse(&[("sinceTime", "2024-01-02T03:04:05+01:00")]).expect("valid");
        assert_eq!(
            since.since.map(|t| t.to_string()).as_deref(),
            Some("2024-01-02T02:04:05Z")
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, param) in [
            (&[("tailLines", "-1")][..], "tailLines"),
            (&[("tailLines", "ten")], "tailLines"),
            (&[("limitBytes", "0")], "limitBytes"),
            (&[("sinceSeconds", "0")], "sinceSeconds"),
            (&[("sinceTime", "yesterday")], "sinceTime"),
            (&[("follow", "yes")], "follow"),
            (
                &[("sinceSeconds", "5"), ("sinceTime", "2024-01-02T03:04:05Z")],
                "sinceSeconds",
            ),
            (&[("podUID", "../other")], "podUID"),
            (&[("podUID", "")], "podUID"),
        ] {
            let err = parse(query).expect_err("invalid");
            assert!(err.starts_with(param), "{query:?}: {err}");
        }
    }
}
