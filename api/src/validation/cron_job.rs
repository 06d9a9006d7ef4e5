//! Validation of CronJobs: the schedule, the time zone, and the Job
//! template they stamp out.

use k8s_openapi::api::batch::v1::CronJob;

use super::batch::validate_job_spec;
use super::field::{Path, nonnegative, one_of};
use super::schedule::parse_schedule;
use crate::error::FieldError;

/// The CronJob controller appends an 11-character suffix to Job names,
/// which must stay within 63 characters.
const MAX_CRON_JOB_NAME: usize = 52;

pub fn cron_job(obj: &CronJob, old: Option<&CronJob>) -> Vec<FieldError> {
    let Some(spec) = obj.spec.as_ref() else {
        return vec![FieldError::required("spec")];
    };
    let path = Path::new("spec");
    let old_spec = old.and_then(|o| o.spec.as_ref());
    let mut errors = Vec::new();

    let schedule_path = path.child("schedule");
    if spec.schedule.is_empty() {
        errors.push(FieldError::required(&schedule_path));
    } else {
        // Kubernetes still accepts a TZ= prefix on CronJobs that already had one.
        let tz_allowed = old_spec.is_some_and(|o| o.schedule.contains("TZ"));
        let has_tz = spec.schedule.contains("TZ");
        let bare = if tz_allowed {
            strip_tz_prefix(&spec.schedule)
        } else {
            spec.schedule.as_str()
        };
        if let Err(e) = parse_schedule(bare) {
            errors.push(FieldError::invalid(&schedule_path, &spec.schedule, e));
        }
        if has_tz && !tz_allowed {
            errors.push(FieldError::invalid(
                &schedule_path,
                &spec.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if has_tz && spec.time_zone.is_some() {
            errors.push(FieldError::invalid(
                &schedule_path,
                &spec.schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
    nonnegative(
        &mut errors,
        &path.child("startingDeadlineSeconds"),
        spec.starting_deadline_seconds,
    );
    if old_spec.is_none_or(|o| o.time_zone != spec.time_zone) {
        errors.extend(validate_time_zone(
            spec.time_zone.as_deref(),
            &path.child("timeZone"),
        ));
    }
    one_of(
        &mut errors,
        &path.child("concurrencyPolicy"),
        spec.concurrency_policy.as_deref(),
        &["Allow", "Forbid", "Replace"],
    );
    nonnegative(
        &mut errors,
        &path.child("successfulJobsHistoryLimit"),
        spec.successful_jobs_history_limit.map(i64::from),
    );
    nonnegative(
        &mut errors,
        &path.child("failedJobsHistoryLimit"),
        spec.failed_jobs_history_limit.map(i64::from),
    );

    let job_spec_path = path.child("jobTemplate").child("spec");
    match &spec.job_template.spec {
        None => errors.push(FieldError::required(&job_spec_path)),
        Some(job_spec) => {
            errors.extend(validate_job_spec(job_spec, &job_spec_path));
            if job_spec.selector.is_some() {
                errors.push(FieldError::invalid(
                    job_spec_path.child("selector"),
                    "",
                    "`selector` will be auto-generated",
                ));
            }
            if job_spec.manual_selector == Some(true) {
                errors.push(FieldError::not_supported(
                    job_spec_path.child("manualSelector"),
                    "true",
                    &["nil", "false"],
                ));
            }
        }
    }

    let name = obj.metadata.name.as_deref().unwrap_or_default();
    if old.is_none() && name.len() > MAX_CRON_JOB_NAME {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be no more than {MAX_CRON_JOB_NAME} characters"),
        ));
    }
    errors
}

/// `TZ=Europe/Paris 0 9 * * *` -> `0 9 * * *`.
fn strip_tz_prefix(schedule: &str) -> &str {
    let trimmed = schedule.trim_start();
    if trimmed.starts_with("TZ=") || trimmed.starts_with("CRON_TZ=") {
        trimmed
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest)
    } else {
        schedule
    }
}

/// A time zone name shaped like an IANA one (`Area/Location`), following
/// the tz database's naming rules. wasmpod does not consult a zone database
/// here; an unknown but well-formed name fails when the controller runs it.
fn validate_time_zone(tz: Option<&str>, path: &Path) -> Vec<FieldError> {
    let Some(tz) = tz else { return Vec::new() };
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    let part_ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 14
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !tz.split('/').all(part_ok) {
        return vec![FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        )];
    }
    if tz.eq_ignore_ascii_case("local") {
        return vec![FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec, JobTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::validation::testing::{fields, template};

    fn cron(schedule: &str) -> CronJob {
        let mut t = template("report");
        if let Some(s) = t.spec.as_mut() {
            s.restart_policy = Some("OnFailure".into());
        }
        let mut c = CronJob {
            metadata: ObjectMeta {
                name: Some("report".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: schedule.into(),
                job_template: JobTemplateSpec {
                    metadata: None,
                    spec: Some(JobSpec {
                        template: t,
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        };
        crate::defaults::cron_job(&mut c);
        c
    }

    #[test]
    fn cron_job_schedule_must_parse() {
        assert_eq!(cron_job(&cron("*/5 * * * *"), None), Vec::new());
        assert_eq!(cron_job(&cron("@hourly"), None), Vec::new());
        let errs = cron_job(&cron("* * * *"), None);
        assert_eq!(fields(&errs), ["spec.schedule"]);
        assert!(errs[0].message.contains("expected exactly 5 fields"));
        assert_eq!(fields(&cron_job(&cron(""), None)), ["spec.schedule"]);
    }

    #[test]
    fn cron_job_rejects_tz_in_schedule() {
        let errs = cron_job(&cron("TZ=UTC 0 * * * *"), None);
        assert!(
            errs.iter()
                .any(|e| e.message.contains("use timeZone field instead")),
            "{errs:?}"
        );
        // A CronJob stored with a TZ prefix may keep it.
        let old = cron("TZ=UTC 0 * * * *");
        assert_eq!(cron_job(&old, Some(&old)), Vec::new());
    }

    #[test]
    fn cron_job_time_zone_must_look_like_iana() {
        let mut c = cron("0 * * * *");
        c.spec.get_or_insert_with(Default::default).time_zone = Some("Europe/Paris".into());
        assert_eq!(cron_job(&c, None), Vec::new());
        for bad in [
            "",
            "Local",
            "Europe//Paris",
            "../etc",
            "Area/ThisNameIsFarTooLong",
        ] {
            c.spec.get_or_insert_with(Default::default).time_zone = Some(bad.into());
            assert_eq!(fields(&cron_job(&c, None)), ["spec.timeZone"], "{bad}");
        }
    }

    #[test]
    fn cron_job_policy_template_and_name() {
        let mut c = cron("0 * * * *");
        c.spec
            .get_or_insert_with(Default::default)
            .concurrency_policy = Some("Sometimes".into());
        assert_eq!(fields(&cron_job(&c, None)), ["spec.concurrencyPolicy"]);
        let mut c = cron("0 * * * *");
        c.metadata.name = Some("x".repeat(53));
        assert_eq!(fields(&cron_job(&c, None)), ["metadata.name"]);
        let mut c = cron("0 * * * *");
        if let Some(js) = c.spec.as_mut().and_then(|s| s.job_template.spec.as_mut()) {
            js.template
                .spec
                .get_or_insert_with(Default::default)
                .restart_policy = Some("Always".into());
        }
        assert_eq!(
            fields(&cron_job(&c, None)),
            ["spec.jobTemplate.spec.template.spec.restartPolicy"]
        );
    }
}
