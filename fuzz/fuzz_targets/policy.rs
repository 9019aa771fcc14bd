//! The policy decoder: `policy::validate` on any bytes. It must never
//! panic, be deterministic, locate every diagnostic inside the file (sorted,
//! 1-based), keep messages short whatever the input holds, and never pass
//! a policy the apiserver would refuse for having no rules.

#![no_main]

use kaudit_node::policy::{Severity, validate};
use libfuzzer_sys::fuzz_target;

/// Longest rendered diagnostic accepted: values from the file are cut at
/// 64 characters in messages, so a long line means unbounded input leaks
/// into the output.
const MAX_LINE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let r = validate("policy.yaml", data);
    assert_eq!(r.file, "policy.yaml");
    // Lines are counted however the file breaks them (LF, CR LF, CR).
    let breaks = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let mut prev = (1, 1);
    for d in &r.diagnostics {
        assert!(d.line >= 1 && d.column >= 1, "{d:?}");
        assert!(d.line <= breaks + 2, "{d:?} beyond {breaks} line breaks");
        assert!(
            (d.line, d.column) >= prev,
            "not sorted: {:?}",
            r.diagnostics
        );
        prev = (d.line, d.column);
        assert!(!d.message.is_empty(), "{d:?}");
    }
    if r.errors().next().is_none() {
        // Lints name rules of the policy that was decoded. (Errors may
        // name a rule of a list a duplicate `rules:` key then replaced.)
        for d in &r.diagnostics {
            if let Some(rule) = d.rule {
                assert!(rule < r.rules, "{d:?} names rule {rule} of {}", r.rules);
            }
        }
        // The apiserver refuses a policy without rules.
        assert!(r.rules >= 1, "accepted with no rules: {:?}", r.diagnostics);
    }
    assert_eq!(
        r.errors().count() + r.warnings().count(),
        r.diagnostics.len()
    );
    assert_eq!(
        r.is_ok(false),
        r.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
    assert_eq!(r.is_ok(true), r.diagnostics.is_empty());
    for strict in [false, true] {
        let text = r.render_text(strict);
        assert_eq!(text.lines().count(), r.diagnostics.len(), "{text}");
        for line in text.lines() {
            assert!(line.starts_with("policy.yaml:"), "{line}");
            assert!(line.len() <= MAX_LINE, "{} bytes: {line}", line.len());
        }
    }
    serde_json::to_string(&r).expect("the report serialises");
    // Deterministic (no hash-order effects).
    assert_eq!(validate("policy.yaml", data), r);
});
