//! What `events` prints: a line an event, the `--by` table, the summary.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::cli::ByField;
use crate::events::event::{Event, NO_USER};
use crate::events::source::Skipped;

/// One event as a line of space-separated fields, each `-` when absent,
/// so that `awk '{print $2}'` is always the user:
///
/// `TIME USER[(as:IMPERSONATED)] VERB RESOURCE NAMESPACE/NAME CODE LATENCY`
pub fn text_line(e: &Event, out: &mut Vec<u8>) {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace(' ', "_")
        }
    };
    let mut user = dash(e.username());
    if let Some(i) = &e.impersonated_user {
        user.push_str(&format!("(as:{})", dash(&i.username)));
    }
    let object = match (e.namespace(), e.name()) {
        ("", "") => "-".to_string(),
        ("", n) => n.to_string(),
        (ns, "") => format!("{ns}/"),
        (ns, n) => format!("{ns}/{n}"),
    };
    let code = e.code().map_or("-".to_string(), |c| c.to_string());
    let line = format!(
        "{} {} {} {} {} {} {}\n",
        dash(&e.stage_timestamp),
        user,
        dash(&e.verb),
        dash(&e.resource_label()),
        object,
        code,
        latency(&e.request_received, &e.stage_timestamp),
    );
    out.extend_from_slice(line.as_bytes());
}

/// From the request's arrival to this stage: `850us`, `12.3ms`, `2.01s`.
fn latency(received: &str, stage: &str) -> String {
    let (Ok(a), Ok(b)) = (
        received.parse::<jiff::Timestamp>(),
        stage.parse::<jiff::Timestamp>(),
    ) else {
        return "-".into();
    };
    let us = b.duration_since(a).as_micros();
    match us {
        i128::MIN..0 => "-".into(),
        0..1_000 => format!("{us}us"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// The value of `field` that `--by` counts.
pub fn by_value(field: ByField, e: &Event) -> String {
    let or_none = |s: &str| if s.is_empty() { NO_USER } else { s }.to_string();
    match field {
        ByField::User => e.username().to_string(),
        ByField::Verb => or_none(&e.verb),
        ByField::Resource => or_none(&e.resource_label()),
        ByField::Code => e.code().map_or(NO_USER.to_string(), |c| c.to_string()),
        ByField::Namespace => or_none(e.namespace()),
        ByField::SourceIp => or_none(e.source_ips.first().map_or("", |s| s)),
    }
}

pub fn by_name(field: ByField) -> &'static str {
    match field {
        ByField::User => "user",
        ByField::Verb => "verb",
        ByField::Resource => "resource",
        ByField::Code => "code",
        ByField::Namespace => "namespace",
        ByField::SourceIp => "source-ip",
    }
}

/// The rows, largest count first, then by value.
pub fn sorted(tally: &HashMap<String, u64>) -> Vec<(&str, u64)> {
    let mut rows: Vec<(&str, u64)> = tally.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    rows
}

/// The `--by` table: `COUNT  FIELD`, counts right-aligned.
pub fn by_table(field: ByField, tally: &HashMap<String, u64>) -> String {
    let rows = sorted(tally);
    let width = rows
        .iter()
        .map(|(_, n)| n.to_string().len())
        .max()
        .unwrap_or(0)
        .max("COUNT".len());
    let mut t = format!("{:>width$}  {}\n", "COUNT", by_name(field).to_uppercase());
    for (v, n) in rows {
        t.push_str(&format!("{n:>width$}  {v}\n"));
    }
    t
}

/// What a run read, matched and skipped.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub kind: &'static str,
    pub matched: u64,
    pub files: Vec<PathBuf>,
    pub skipped: Skipped,
    pub unreadable: Vec<Unreadable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Row>>,
}

#[derive(Debug, serde::Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: String,
    #[serde(skip)]
    pub denied: bool,
}

impl Unreadable {
    pub fn new(path: &std::path::Path, e: &std::io::Error) -> Unreadable {
        Unreadable {
            path: path.to_path_buf(),
            error: e.to_string(),
            denied: e.kind() == std::io::ErrorKind::PermissionDenied,
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub value: String,
    pub count: u64,
}

pub const SUMMARY_KIND: &str = "kaudit-node.Summary";

/// The skip counts for standard error, or `None` when nothing was skipped.
pub fn skipped_note(s: &Skipped) -> Option<String> {
    if *s == Skipped::default() {
        return None;
    }
    let mut parts = Vec::new();
    if s.torn > 0 {
        parts.push(format!("{} torn", s.torn));
    }
    if s.invalid > 0 {
        parts.push(format!("{} not audit events", s.invalid));
    }
    let mut t = format!(
        "skipped {} line{}",
        s.lines(),
        if s.lines() == 1 { "" } else { "s" }
    );
    if !parts.is_empty() {
        t.push_str(&format!(" ({})", parts.join(", ")));
    }
    if s.nul_runs > 0 {
        t.push_str(&format!(
            "; cut {} run{} of NUL bytes",
            s.nul_runs,
            if s.nul_runs == 1 { "" } else { "s" }
        ));
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_line() {
        let l = br#"{"kind":"Event","verb":"list","user":{"username":"alice"},"impersonatedUser":{"username":"bob"},"objectRef":{"resource":"pods","namespace":"dev"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-02T05:05:28.028281Z","stageTimestamp":"2026-12-02T05:05:28.040966Z"}"#;
        let mut out = Vec::new();
        text_line(&Event::parse(l).unwrap(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-02T05:05:28.040966Z alice(as:bob) list pods dev/ 200 12.7ms\n"
        );
        assert_eq!(
            latency("2026-12-02T05:05:28Z", "2026-12-02T05:05:30.5Z"),
            "2.50s"
        );
        assert_eq!(latency("x", "2026-12-02T05:05:30.5Z"), "-");
    }

    #[test]
    fn the_table_sorts_by_count_then_value() {
        let t: HashMap<String, u64> = [("b", 2), ("a", 2), ("c", 10)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            by_table(ByField::User, &t),
            "COUNT  USER\n   10  c\n    2  a\n    2  b\n"
        );
    }

    #[test]
    fn the_skip_note() {
        assert_eq!(skipped_note(&Skipped::default()), None);
        let s = Skipped {
            torn: 1,
            nul_runs: 2,
            invalid: 1,
        };
        assert_eq!(
            skipped_note(&s).unwrap(),
            "skipped 2 lines (1 torn, 1 not audit events); cut 2 runs of NUL bytes"
        );
    }
}
