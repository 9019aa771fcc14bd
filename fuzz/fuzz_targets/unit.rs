//! The unit/ExecStart reader: `unit::parse_unit_file`, `Command::parse`,
//! the re-emission round trip (`raw_text`, `render_exec_start`,
//! `quote_word`) and `strip_audit_flags`.
//!
//! The input is a unit file. Every entry's value (not only `ExecStart=`:
//! the fuzzer need not find the key to reach the command parser) and the
//! whole input are also parsed as a command line, with the entry values
//! appended to it as kaudit-node appends its flags; every value is quoted
//! with `quote_word` and must come back unchanged.

#![no_main]

mod common;

use std::path::Path;

use kaudit_node::error::ExitCode;
use kaudit_node::unit::parse_unit_file;
use libfuzzer_sys::fuzz_target;

use common::{WHITESPACE, check_command, check_quote};

const PATH: &str = "/etc/systemd/system/kube-apiserver.service";

/// Physical lines as systemd counts them: LF, CR LF and a lone CR end one.
fn physical_line_count(text: &str) -> usize {
    let b = text.as_bytes();
    let mut n = 0;
    let mut i = 0;
    let mut open = false;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                n += 1;
                open = false;
            }
            b'\r' => {
                n += 1;
                open = false;
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            _ => open = true,
        }
        i += 1;
    }
    n + usize::from(open)
}

fuzz_target!(|data: &[u8]| {
    // Unit files that are not UTF-8 are refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = match parse_unit_file(Path::new(PATH), text) {
        Err(e) => {
            assert_eq!(e.code, ExitCode::DataErr);
            assert!(e.message.starts_with(&format!("{PATH}:")), "{}", e.message);
            assert!(
                e.message.contains("invalid section header"),
                "{}",
                e.message
            );
            None
        }
        Ok(f) => Some(f),
    };
    let mut extra: Vec<&str> = Vec::new();
    if let Some(f) = &f {
        assert_eq!(f.path, Path::new(PATH));
        let lines = physical_line_count(text);
        let mut last = 0;
        for e in &f.entries {
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            assert!(e.line > last, "entries out of order: {:?}", f.entries);
            last = e.line;
            for s in [&e.section, &e.key, &e.value] {
                assert!(!s.contains(['\n', '\r']), "{e:?}");
            }
            assert!(!e.key.starts_with(['#', ';', '[']), "{e:?}");
            assert!(!e.key.contains('='), "{e:?}");
            assert_eq!(e.key.trim_matches(WHITESPACE), e.key, "{e:?}");
            assert_eq!(e.value.trim_matches(WHITESPACE), e.value, "{e:?}");
            assert_eq!(f.section(&e.section).filter(|x| *x == e).count(), 1);
        }
        for w in &f.warnings {
            assert!(w.starts_with(&format!("{PATH}:")), "{w}");
        }
        // Bounded, so that a file of many entries stays fast to check.
        extra.extend(f.entries.iter().take(4).map(|e| e.value.as_str()));
        for e in f.entries.iter().take(16) {
            check_command(&e.value, &extra);
            check_quote(&e.value);
        }
    }
    check_command(text, &extra);
    check_quote(text);
});
