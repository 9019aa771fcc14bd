//! Audit policy: presets, strict decoding, upstream validation, lints.
//!
//! [`validate`] reads a policy file's bytes and returns a [`Validation`] of
//! [`Diagnostic`]s, each with a line and column:
//!
//! 1. `yaml`: a position-aware YAML tree, with limits on size, depth and
//!    alias expansion (hostile input cannot exhaust memory or the stack);
//! 2. `decode`: strict decoding, where unknown and duplicate fields and
//!    wrong types are errors (upstream silently drops unknown fields, so a
//!    typo widens a rule), with "did you mean" suggestions;
//! 3. `validate`: upstream's own checks, the ones that make the
//!    apiserver refuse to start, with upstream's messages;
//! 4. `lint`: policies the apiserver accepts but that do not do what
//!    they say (warnings; errors under `--strict`).
//!
//! [`Preset`] holds the embedded policies the tool can install.

mod decode;
pub mod eval;
mod lint;
mod preset;
pub mod probe;
mod validate;
mod yaml;

pub use preset::Preset;
pub use yaml::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_NODES};

use serde::Serialize;
use std::fmt::Write as _;
use yaml::Pos;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The apiserver would refuse the policy, or silently change its
    /// meaning (unknown and duplicate fields).
    Error,
    /// The apiserver accepts it, but it does not do what it says.
    Warning,
}

/// One finding, located in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Field path as upstream prints it (`rules[0].verbs`, `omitStages[1]`,
    /// `rules[2].resources[0].group`); empty for the document itself.
    pub field: String,
    /// Index of the rule the diagnostic is in, if any.
    pub rule: Option<usize>,
    pub message: String,
    /// A fix, as text ("did you mean \"verbs\"?").
    pub suggestion: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        pos: Pos,
        field: impl Into<String>,
        rule: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            line: pos.line,
            column: pos.column,
            field: field.into(),
            rule,
            message: message.into(),
            suggestion: None,
        }
    }

    pub(crate) fn error(
        pos: Pos,
        field: impl Into<String>,
        rule: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, pos, field, rule, message)
    }

    pub(crate) fn warning(
        pos: Pos,
        field: impl Into<String>,
        rule: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, pos, field, rule, message)
    }

    /// `LINE:COL: SEVERITY: FIELD: MESSAGE (SUGGESTION)`, without the file.
    fn render(&self, strict: bool) -> String {
        let severity = match (self.severity, strict) {
            (Severity::Error, _) | (Severity::Warning, true) => "error",
            (Severity::Warning, false) => "warning",
        };
        let mut s = format!("{}:{}: {severity}: ", self.line, self.column);
        if !self.field.is_empty() {
            let _ = write!(s, "{}: ", self.field);
        }
        s.push_str(&self.message);
        if let Some(sugg) = &self.suggestion {
            let _ = write!(s, " ({sugg})");
        }
        s
    }
}

/// The outcome of validating one policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// The label the file was validated under (its path, or a preset name).
    pub file: String,
    /// Sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Number of rules found (0 when the file could not be decoded).
    pub rules: usize,
}

impl Validation {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// No errors, and under `strict` no warnings either.
    pub fn is_ok(&self, strict: bool) -> bool {
        self.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning && !strict)
    }

    /// One line per diagnostic,
    /// `FILE:LINE:COL: error: rules[0]: unknown field "verb" (did you mean "verbs"?)`;
    /// under `strict`, warnings print as `error:`.
    pub fn render_text(&self, strict: bool) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            let _ = writeln!(out, "{}:{}", self.file, d.render(strict));
        }
        out
    }
}

/// `s` as a quoted, escaped string for messages, cut after 64 characters:
/// values come from the file, which may hold a 4 MiB scalar.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &s[..cut])),
        None => format!("{s:?}"),
    }
}

/// Validates a policy file's bytes. Never panics, whatever the input.
/// What a policy lets kaudit-node prove about the audit pipeline: a probe
/// for each way the apiserver may treat a request without credentials, and
/// whether it records the control plane's regular traffic at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub unauthenticated: Result<probe::Probe, String>,
    pub anonymous: Result<probe::Probe, String>,
    pub records_regular_traffic: bool,
}

impl Proof {
    pub fn probe(&self, caller: probe::Caller) -> &Result<probe::Probe, String> {
        match caller {
            probe::Caller::Unauthenticated => &self.unauthenticated,
            probe::Caller::Anonymous => &self.anonymous,
        }
    }
}

/// A policy decoded for evaluation (diagnostics dropped: `validate` reports them).
fn decoded(bytes: &[u8]) -> Option<decode::Policy> {
    let root = yaml::parse(bytes).ok()??;
    decode::decode(&root, &mut Vec::new())
}

/// Whether the policy records any of the control plane's regular traffic
/// (when it records none, a quiet log is normal); `None` when it does not
/// decode.
pub fn records_regular_traffic(bytes: &[u8]) -> Option<bool> {
    decoded(bytes).map(|p| probe::records_regular_traffic(&p))
}

/// The probes of a policy (which `validate` accepts), with `marker` in
/// their object names; `None` when it does not decode.
pub fn proof(bytes: &[u8], marker: &str) -> Option<Proof> {
    let policy = decoded(bytes)?;
    Some(Proof {
        unauthenticated: probe::find(&policy, probe::Caller::Unauthenticated, marker),
        anonymous: probe::find(&policy, probe::Caller::Anonymous, marker),
        records_regular_traffic: probe::records_regular_traffic(&policy),
    })
}

pub fn validate(file_label: &str, bytes: &[u8]) -> Validation {
    let mut diagnostics = Vec::new();
    let mut rules = 0;
    match yaml::parse(bytes) {
        Err(e) => diagnostics.push(Diagnostic::error(e.pos, "", None, e.message)),
        Ok(None) => {
            let mut d = Diagnostic::error(
                Pos::START,
                "",
                None,
                "empty policy: the file holds no YAML document, and the apiserver refuses it (loaded illegal policy with 0 rules)",
            );
            d.suggestion = Some(
                "the smallest useful policy is apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: Metadata}]"
                    .to_string(),
            );
            diagnostics.push(d);
        }
        Ok(Some(root)) => {
            if let Some(mut policy) = decode::decode(&root, &mut diagnostics) {
                validate::validate(&mut policy, &mut diagnostics);
                lint::lint(&policy, &mut diagnostics);
                rules = policy.rules.len();
            }
        }
    }
    // Stable: diagnostics at one position keep their order (errors first).
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Validation {
        file: file_label.to_string(),
        diagnostics,
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_text_format_and_strict() {
        let src = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verb: [get]\n  users: [a]\n";
        let r = validate("p.yaml", src.as_bytes());
        assert_eq!(
            r.render_text(false),
            "p.yaml:3:1: warning: rules: no catch-all rule at the end: requests that match no rule are not logged at all \
             (end the rules with a rule that has only a level, e.g. - level: Metadata)\n\
             p.yaml:5:3: error: rules[0]: unknown field \"verb\" (did you mean \"verbs\"?)\n"
        );
        assert!(r.render_text(true).lines().all(|l| l.contains(": error: ")));
        assert!(!r.is_ok(false));
    }

    #[test]
    fn is_ok_depends_on_strict() {
        let src =
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [a]\n";
        let r = validate("p.yaml", src.as_bytes());
        assert_eq!(r.errors().count(), 0);
        assert_eq!(r.warnings().count(), 1);
        assert!(r.is_ok(false));
        assert!(!r.is_ok(true));
        assert_eq!(r.rules, 1);
    }

    #[test]
    fn diagnostics_serialize() {
        let r = validate("p.yaml", b"");
        let json = serde_json::to_value(&r.diagnostics[0]).unwrap();
        assert_eq!(json["severity"], "error");
        assert_eq!(json["line"], 1);
        assert_eq!(json["column"], 1);
        assert_eq!(json["rule"], serde_json::Value::Null);
    }

    #[test]
    fn quoted_values_are_bounded() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "é".repeat(1000);
        assert_eq!(quote(&long), format!("\"{}…\"", "é".repeat(64)));
        // A huge scalar does not make a huge message.
        let src = format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: {}\n",
            "x".repeat(100_000)
        );
        let r = validate("p.yaml", src.as_bytes());
        assert!(
            r.render_text(false).len() < 500,
            "{}",
            r.render_text(false).len()
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs: &[&[u8]] = &[
            b"",
            b"\xef\xbb\xbf",
            b"[",
            b"- - -",
            b"{a: b}",
            b"rules: {a: b}",
            b"rules: [[]]",
            b"rules: [{resources: [[]], nonResourceURLs: [\"\xc3\xa9*\", \"\xc3\xa9\"]}]",
            b"? [a]\n: b\n",
            b"&a a: *a",
            b"a: *nope",
            b"%YAML 1.2\n---\na: b\n",
            b"!!map {a: b}",
            b"rules: !!seq [!!map {level: !!str None}]",
            b"\t",
            b"\x00",
        ];
        for input in inputs {
            let r = validate("x", input);
            assert!(!r.diagnostics.is_empty(), "{input:?}");
        }
    }
}
