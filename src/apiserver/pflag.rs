//! How kube-apiserver reads a flag's name.
//!
//! Hand-written because it must follow kube-apiserver exactly: its flag set
//! uses `cliflag.WordSepNormalizeFunc` (`k8s.io/component-base/cli/flag`),
//! which turns every `_` in a long flag's name into `-` before lookup. So
//! `--audit_log_path=/x`, `--audit-log_path /x` and `--audit-log-path=/x`
//! are one flag, and the last occurrence wins across the spellings (seen on
//! a real v1.32: `--audit_log_maxage=abc` is reported as an invalid
//! `--audit-log-maxage`). The value is never normalised.

/// A long flag in one argv word, as pflag splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongFlag<'a> {
    /// The normalised name with its dashes: `--audit-log-path`.
    pub name: String,
    /// The part after the first `=`, if any.
    pub inline: Option<&'a str>,
}

/// Reads `word` as a long flag: `None` for anything else (positional
/// arguments, `-x` shorthands, the `--` terminator, `---x` and `--=x`,
/// which pflag rejects as bad syntax).
pub fn long_flag(word: &str) -> Option<LongFlag<'_>> {
    let body = word.strip_prefix("--")?;
    if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
        return None;
    }
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    Some(LongFlag {
        name: format!("--{}", name.replace('_', "-")),
        inline,
    })
}

/// The normalised name of the long flag in `word` (`--audit-log-path` for
/// `--audit_log_path=/x`), or `None`.
pub fn normalised_name(word: &str) -> Option<String> {
    long_flag(word).map(|f| f.name)
}

/// Whether `word` is a long flag whose normalised name starts with `--audit-`.
pub fn is_audit_flag_word(word: &str) -> bool {
    normalised_name(word).is_some_and(|n| n.starts_with("--audit-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_one_flag() {
        for w in [
            "--audit-log-path=/x",
            "--audit_log_path=/x",
            "--audit-log_path=/x",
            "--audit_log-path=/x",
        ] {
            let f = long_flag(w).unwrap();
            assert_eq!(f.name, "--audit-log-path", "{w}");
            assert_eq!(f.inline, Some("/x"), "{w}");
        }
        let f = long_flag("--audit_log_maxbackup").unwrap();
        assert_eq!((f.name.as_str(), f.inline), ("--audit-log-maxbackup", None));
    }

    #[test]
    fn values_are_kept_as_written() {
        let f = long_flag("--audit_log_path=/var/log/a_b.log").unwrap();
        assert_eq!(f.inline, Some("/var/log/a_b.log"));
    }

    #[test]
    fn not_long_flags() {
        for w in [
            "--",
            "-audit_log_path",
            "audit_log_path",
            "---x",
            "--=x",
            "-v=2",
            "",
        ] {
            assert_eq!(long_flag(w), None, "{w}");
        }
        assert!(is_audit_flag_word("--audit_policy_file=/p"));
        assert!(!is_audit_flag_word("--etcd_servers=x"));
        assert!(!is_audit_flag_word("--auditlog"));
    }
}
