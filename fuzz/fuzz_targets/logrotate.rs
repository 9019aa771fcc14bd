//! What `kaudit-node check` reads of logrotate's configuration: the rule
//! reader (`check::logrotate::parse`) and the glob(3) matcher
//! (`glob`) it uses to find a rule that rotates the audit log. The
//! check runs every minute from a monitoring agent, so it must neither
//! panic nor hang on any file under `/etc/logrotate.d`.
//!
//! The input is a configuration file; when it holds a NUL byte, what
//! follows the first one (its first 255 bytes: check matches only the log
//! path and its backups' names) is also matched as a path against each
//! pattern. Matching costs alternatives × pattern × path steps.

#![no_main]

use kaudit_node::check::logrotate;
use kaudit_node::glob::{self, MAX_PATTERN};
use libfuzzer_sys::fuzz_target;

const LOG: &str = "/var/log/kubernetes/audit/audit.log";
const BACKUP: &str = "/var/log/kubernetes/audit/audit-2026-01-01T00-00-00.000.log";

fn has_syntax(p: &str) -> bool {
    p.contains(['*', '?', '[', '\\', '{'])
}

fn check_pattern(pat: &str, paths: &[&str]) {
    let alternatives = glob::expand_braces(pat);
    assert!(
        (1..=256).contains(&alternatives.len()),
        "{}",
        alternatives.len()
    );
    for a in &alternatives {
        // Expanding a group never makes a pattern longer.
        assert!(a.len() <= pat.len(), "{a:?} from {pat:?}");
    }
    if !pat.contains('{') {
        assert_eq!(alternatives, [pat]);
    }
    for path in paths {
        let hit = glob::matches(pat, path);
        if !has_syntax(pat) || pat.len() > MAX_PATTERN {
            // A plain pattern is compared as it is.
            assert_eq!(hit, pat == *path, "{pat:?} {path:?}");
        }
        if hit && !pat.contains('/') {
            // Wildcards never match `/`.
            assert!(!path.contains('/'), "{pat:?} {path:?}");
        }
    }
    if !has_syntax(pat) {
        assert!(glob::matches(pat, pat));
    }
}

fuzz_target!(|data: &[u8]| {
    let (conf, path) = match data.iter().position(|b| *b == 0) {
        Some(i) => {
            let path = &data[i + 1..];
            (
                &data[..i],
                Some(String::from_utf8_lossy(&path[..path.len().min(255)])),
            )
        }
        None => (data, None),
    };
    // read_rules reads files the same way.
    let text = String::from_utf8_lossy(conf);
    let parsed = logrotate::parse(&text);
    let lines = text.lines().count();
    let mut last = 0;
    for (line, patterns) in &parsed.rules {
        assert!((1..=lines).contains(line), "line {line} of {lines}");
        assert!(*line > last, "rules in order: {line} after {last}");
        last = *line;
        for p in patterns {
            assert!(!p.contains('\n'), "{p:?}");
        }
    }
    let mut paths = vec![LOG, BACKUP];
    if let Some(p) = path.as_deref() {
        paths.push(p);
    }
    for (_, patterns) in &parsed.rules {
        for pat in patterns {
            check_pattern(pat, &paths);
        }
    }
    // The whole text as one pattern, too: the matcher on its own.
    if let Some(p) = path.as_deref() {
        check_pattern(&text, &[p]);
    }
});
