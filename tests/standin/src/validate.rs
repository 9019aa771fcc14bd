//! `AuditOptions.Validate()` of `k8s.io/apiserver/pkg/server/options/audit.go`
//! (docs/reference.md, Validation), with upstream's exact messages, and the `utilerrors`
//! aggregate that joins them into one line (`[a, b, …]`, as on a real v1.28.7).

use crate::flags::{AuditOptions, BatchOptions, LogOptions, TruncateOptions, WebhookOptions};
use crate::gostr::quote;

const ALLOWED_MODES: [&str; 3] = ["batch", "blocking", "blocking-strict"];
const ALLOWED_FORMATS: [&str; 2] = ["legacy", "json"];
const KNOWN_GROUP_VERSION: &str = "audit.k8s.io/v1";

/// Go's `%v` for a float32.
fn float_v(v: f32) -> String {
    format!("{v}")
}

fn validate_backend_mode(plugin: &str, mode: &str) -> Result<(), String> {
    if ALLOWED_MODES.contains(&mode) {
        return Ok(());
    }
    Err(format!(
        "invalid audit {plugin} mode {mode}, allowed modes are {}",
        quote(&ALLOWED_MODES.join(","))
    ))
}

fn validate_backend_batch_options(plugin: &str, o: &BatchOptions) -> Result<(), String> {
    validate_backend_mode(plugin, &o.mode)?;
    if o.mode != "batch" {
        // Upstream: "Don't validate the unused options."
        return Ok(());
    }
    if o.buffer_size <= 0 {
        return Err(format!(
            "invalid audit batch {plugin} buffer size {}, must be a positive number",
            o.buffer_size
        ));
    }
    if o.max_batch_size <= 0 {
        return Err(format!(
            "invalid audit batch {plugin} max batch size {}, must be a positive number",
            o.max_batch_size
        ));
    }
    if o.throttle_enable {
        if o.throttle_qps <= 0.0 {
            return Err(format!(
                "invalid audit batch {plugin} throttle QPS {}, must be a positive number",
                float_v(o.throttle_qps)
            ));
        }
        if o.throttle_burst <= 0 {
            return Err(format!(
                "invalid audit batch {plugin} throttle burst {}, must be a positive number",
                o.throttle_burst
            ));
        }
    }
    Ok(())
}

/// Checked even when truncation is disabled (`AuditTruncateOptions.Validate`).
fn validate_truncate(plugin: &str, o: &TruncateOptions) -> Result<(), String> {
    if o.max_event_size <= 0 {
        return Err(format!(
            "invalid audit truncate {plugin} max event size {}, must be a positive number",
            o.max_event_size
        ));
    }
    if o.max_batch_size < o.max_event_size {
        return Err(format!(
            "invalid audit truncate {plugin} max batch size {}, must be greater than max event size ({})",
            o.max_batch_size, o.max_event_size
        ));
    }
    Ok(())
}

/// `schema.ParseGroupVersion` then the known-versions check.
fn validate_group_version(gv: &str) -> Result<(), String> {
    if gv.matches('/').count() > 1 {
        return Err(format!("unexpected GroupVersion string: {gv}"));
    }
    if gv == KNOWN_GROUP_VERSION {
        return Ok(());
    }
    Err(format!(
        "invalid group version, allowed versions are [{}]",
        quote(KNOWN_GROUP_VERSION)
    ))
}

/// Whether the log backend is on: a non-empty path.
pub fn log_enabled(o: &LogOptions) -> bool {
    !o.path.is_empty()
}

/// Whether the webhook backend is on: a non-empty config file.
pub fn webhook_enabled(o: &WebhookOptions) -> bool {
    !o.config_file.is_empty()
}

fn validate_log(o: &LogOptions) -> Vec<String> {
    if !log_enabled(o) {
        return Vec::new();
    }
    let mut errs = Vec::new();
    errs.extend(validate_backend_batch_options("log", &o.batch).err());
    errs.extend(validate_truncate("log", &o.truncate).err());
    errs.extend(validate_group_version(&o.version).err());
    if !ALLOWED_FORMATS.contains(&o.format.as_str()) {
        errs.push(format!(
            "invalid audit log format {}, allowed formats are {}",
            o.format,
            quote(&ALLOWED_FORMATS.join(","))
        ));
    }
    if o.max_age < 0 {
        errs.push(format!(
            "--audit-log-maxage {} can't be a negative number",
            o.max_age
        ));
    }
    if o.max_backups < 0 {
        errs.push(format!(
            "--audit-log-maxbackup {} can't be a negative number",
            o.max_backups
        ));
    }
    if o.max_size < 0 {
        errs.push(format!(
            "--audit-log-maxsize {} can't be a negative number",
            o.max_size
        ));
    }
    errs
}

fn validate_webhook(o: &WebhookOptions) -> Vec<String> {
    if !webhook_enabled(o) {
        return Vec::new();
    }
    let mut errs = Vec::new();
    errs.extend(validate_backend_batch_options("webhook", &o.batch).err());
    errs.extend(validate_truncate("webhook", &o.truncate).err());
    errs.extend(validate_group_version(&o.version).err());
    errs
}

/// `AuditOptions.Validate()`: log backend errors, then webhook backend errors.
pub fn validate(o: &AuditOptions) -> Vec<String> {
    let mut errs = validate_log(&o.log);
    errs.extend(validate_webhook(&o.webhook));
    errs
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as is, several as `[a, b]`,
/// duplicates dropped.
pub fn aggregate(errs: &[String]) -> String {
    if errs.is_empty() {
        return String::new();
    }
    if errs.len() == 1 {
        return errs[0].clone();
    }
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        return seen[0].to_string();
    }
    format!("[{}]", seen.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Release, parse};

    fn errs(a: &[&str]) -> String {
        let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        aggregate(&validate(
            &parse(&args, Release::new(1, 28)).unwrap().audit(),
        ))
    }

    const P: &str = "--audit-log-path=/var/log/audit.log";

    #[test]
    fn nothing_checked_without_a_backend() {
        assert_eq!(
            errs(&["--audit-log-mode=bogus", "--audit-log-format=bogus"]),
            ""
        );
        assert_eq!(errs(&["--audit-log-maxage=-1"]), "");
    }

    #[test]
    fn messages_recorded_from_real_apiservers() {
        assert_eq!(
            errs(&[P, "--audit-log-mode=bogus"]),
            "invalid audit log mode bogus, allowed modes are \"batch,blocking,blocking-strict\""
        );
        assert_eq!(
            errs(&[P, "--audit-log-maxsize=-1"]),
            "--audit-log-maxsize -1 can't be a negative number"
        );
        assert_eq!(
            errs(&[P, "--audit-log-maxage=-1"]),
            "--audit-log-maxage -1 can't be a negative number"
        );
        assert_eq!(
            errs(&[P, "--audit-log-maxbackup=-1"]),
            "--audit-log-maxbackup -1 can't be a negative number"
        );
        assert_eq!(
            errs(&[P, "--audit-log-format=bogus", "--audit-log-maxage=-1"]),
            "[invalid audit log format bogus, allowed formats are \"legacy,json\", --audit-log-maxage -1 can't be a negative number]"
        );
        assert_eq!(
            errs(&[P, "--audit-log-version=audit.k8s.io/v9"]),
            "invalid group version, allowed versions are [\"audit.k8s.io/v1\"]"
        );
        assert_eq!(
            errs(&[
                P,
                "--audit-log-mode=batch",
                "--audit-log-batch-buffer-size=0"
            ]),
            "invalid audit batch log buffer size 0, must be a positive number"
        );
    }

    #[test]
    fn batch_and_truncate_rules() {
        assert_eq!(
            errs(&[P, "--audit-log-batch-buffer-size=0"]),
            "",
            "only in batch mode"
        );
        assert_eq!(
            errs(&[P, "--audit-log-mode=batch", "--audit-log-batch-max-size=0"]),
            "invalid audit batch log max batch size 0, must be a positive number"
        );
        assert_eq!(
            errs(&[
                P,
                "--audit-log-mode=batch",
                "--audit-log-batch-throttle-enable"
            ]),
            "invalid audit batch log throttle QPS 0, must be a positive number"
        );
        assert_eq!(
            errs(&[
                P,
                "--audit-log-mode=batch",
                "--audit-log-batch-throttle-enable",
                "--audit-log-batch-throttle-qps=1.5"
            ]),
            "invalid audit batch log throttle burst 0, must be a positive number"
        );
        assert_eq!(
            errs(&[P, "--audit-log-truncate-max-event-size=0"]),
            "invalid audit truncate log max event size 0, must be a positive number"
        );
        assert_eq!(
            errs(&[P, "--audit-log-truncate-max-batch-size=10"]),
            "invalid audit truncate log max batch size 10, must be greater than max event size (102400)"
        );
    }

    #[test]
    fn webhook_backend() {
        assert_eq!(
            errs(&["--audit-webhook-config-file=/k", "--audit-webhook-mode=x"]),
            "invalid audit webhook mode x, allowed modes are \"batch,blocking,blocking-strict\""
        );
        assert_eq!(
            errs(&[
                "--audit-webhook-config-file=/k",
                "--audit-webhook-batch-throttle-burst=0"
            ]),
            "invalid audit batch webhook throttle burst 0, must be a positive number"
        );
    }

    #[test]
    fn aggregate_dedups() {
        assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
    }
}
