//! The project speaks only of itself: no tracked file may name a path of the
//! development machine, cite numbered sections of documents outside the
//! repository, or point at numbered issues. Upstream facts are cited by
//! upstream file, function or release tag, or by a heading of
//! `docs/reference.md`.
//!
//! Every file `git ls-files` lists is read, except the binary fuzz inputs under
//! `fuzz/corpus/` and files that are not valid UTF-8. The patterns are built
//! from pieces so that this file does not match them itself.

use std::path::Path;
use std::process::Command;

/// The machine's work directory, as a path component.
const WORK_DIR: &str = concat!("/wo", "rk/");
/// The section sign (U+00A7).
const SECTION: char = '\u{a7}';
/// An issue reference, before its number.
const ISSUE: &str = concat!("iss", "ue #");

/// Every tracked file, relative to the crate root. Panics if git cannot list them.
fn tracked_files(root: &Path) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `git ls-files` in {}: {e}", root.display()));
    assert!(
        out.status.success(),
        "`git ls-files` failed in {} ({}): {}",
        root.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(out.stdout).expect("`git ls-files` printed non-UTF-8 names");
    let files: Vec<String> = list
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        !files.is_empty(),
        "`git ls-files` listed no files in {}",
        root.display()
    );
    files
}

/// True if `pat` occurs in `line` and is followed by an ASCII digit.
fn followed_by_digit(line: &str, pat: &str) -> bool {
    line.match_indices(pat).any(|(i, m)| {
        line[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// True if the section sign occurs in `line`, then an optional space, then a digit.
fn section_number(line: &str) -> bool {
    line.match_indices(SECTION).any(|(i, m)| {
        let rest = &line[i + m.len()..];
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        rest.chars().next().is_some_and(|c| c.is_ascii_digit())
    })
}

/// What is wrong with `line`, if anything.
fn offence(line: &str) -> Option<&'static str> {
    if line.contains(WORK_DIR) {
        Some("a path of the development machine")
    } else if section_number(line) {
        Some("a numbered section of an outside document")
    } else if followed_by_digit(line, ISSUE) {
        Some("an issue number")
    } else {
        None
    }
}

#[test]
fn patterns_match_what_they_should() {
    assert!(offence(&format!("see {WORK_DIR}shared/x")).is_some());
    assert!(offence(&format!("reference {SECTION}4.9")).is_some());
    assert!(offence(&format!("({SECTION} 8)")).is_some());
    assert!(offence(&format!("the order ({ISSUE}3):")).is_some());
    assert!(offence("/proc/INIT_PID/root/etc and /root/snippet").is_none());
    assert!(
        offence(&format!(
            "{SECTION}N, {ISSUE}N, kubernetes/kubernetes#108551"
        ))
        .is_none()
    );
}

#[test]
fn tracked_files_speak_only_of_the_project() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = tracked_files(root);
    let mut found = Vec::new();
    let mut read = 0usize;
    for f in &files {
        if f.starts_with("fuzz/corpus/") {
            continue;
        }
        let bytes = match std::fs::read(root.join(f)) {
            Ok(b) => b,
            // Tracked but deleted in the work tree: nothing to check.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot read {f}: {e}"),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue; // binary
        };
        read += 1;
        for (n, line) in text.lines().enumerate() {
            if let Some(what) = offence(line) {
                found.push(format!("{f}:{}: {what}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        read > 0,
        "no tracked text file was read under {}",
        root.display()
    );
    assert!(
        found.is_empty(),
        "{} line(s) speak of things outside the project (cite upstream files, \
         functions or tags, or docs/reference.md headings instead):\n{}",
        found.len(),
        found.join("\n")
    );
}
