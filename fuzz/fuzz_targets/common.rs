//! Invariants shared by the fuzz targets: how a command line, a quoted word
//! and kaudit-node's rendered `ExecStart=` must behave, whatever the input.

#![allow(dead_code)]

use std::path::Path;

use kaudit_node::error::ExitCode;
use kaudit_node::unit::{Command, Word, parse_unit_file, quote_word, render_exec_start};

/// systemd's separators (`WHITESPACE` in systemd and in the unit reader).
pub const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// What systemd makes of a word that `quote_word` emitted, after unquoting:
/// `%%` → `%` (specifier expansion) and, when the command expands
/// variables, `$$` → `$` (at exec time). A lone `%`, or a lone `$` in a
/// command that expands variables, would be expanded by systemd: `None`.
pub fn expand_literal(v: &str, expands_env: bool) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match c {
            '%' => {
                if it.next() != Some('%') {
                    return None;
                }
                out.push('%');
            }
            '$' if expands_env => {
                if it.next() != Some('$') {
                    return None;
                }
                out.push('$');
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

/// `quote_word(v)`: refused exactly when `v` has a control character;
/// otherwise one word that systemd turns back into `v`, alone or between
/// other words, that is never a separator nor a comment at a line start.
pub fn check_quote(v: &str) {
    let q = match quote_word(v) {
        Err(e) => {
            assert!(
                v.chars().any(char::is_control),
                "quote_word refused {v:?} without a control character: {}",
                e.message
            );
            assert_eq!(e.code, ExitCode::Config);
            return;
        }
        Ok(q) => q,
    };
    assert!(
        !v.chars().any(char::is_control),
        "quote_word accepted the control character in {v:?}: {q}"
    );
    assert!(!q.is_empty(), "{v:?} quoted as nothing");
    assert!(
        !q.starts_with(['#', ';']),
        "{v:?} quoted as {q}, a comment or separator"
    );
    assert!(!q.contains(['\n', '\r']), "{v:?} quoted as {q:?}");
    for (line, idx, n) in [
        (format!("/bin/x {q}"), 1, 2),
        (format!("/bin/x a {q} b"), 2, 4),
    ] {
        let c = Command::parse(&line)
            .unwrap_or_else(|e| panic!("{v:?} quoted as {q}: {line} fails: {}", e.message));
        assert_eq!(c.words.len(), n, "{v:?} quoted as {q}: {line}");
        assert_eq!(
            expand_literal(&c.words[idx].value, true).as_deref(),
            Some(v),
            "{v:?} quoted as {q}: {line}"
        );
    }
    // Without variable expansion (`:` prefix) render_exec_start undoubles `$`.
    let line = format!(":/bin/x {}", q.replace("$$", "$"));
    let c = Command::parse(&line)
        .unwrap_or_else(|e| panic!("{v:?} quoted as {q}: {line} fails: {}", e.message));
    assert_eq!(c.words.len(), 2, "{line}");
    assert_eq!(
        expand_literal(&c.words[1].value, false).as_deref(),
        Some(v),
        "{line}"
    );
}

/// A parsed command's words, compared to another's: same values, and raw
/// texts that are equal but for what re-emission at the end of a line
/// rewrites: a trailing lone backslash doubled (`\` → `\\`), a trailing
/// backslash and blank spelled `\\\x20` (the same two characters).
fn assert_same_words(a: &[Word], b: &[Word], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: word counts differ");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.value, y.value, "{what}");
        let blank_rewritten = y
            .raw
            .strip_suffix([' ', '\t', '\r'])
            .and_then(|r| r.strip_suffix('\\'))
            .is_some_and(|r| x.raw.starts_with(r) && x.raw[r.len()..].starts_with("\\\\\\x"));
        assert!(
            x.raw == y.raw || *x.raw == format!("{}\\", y.raw) || blank_rewritten,
            "{what}: raw {:?} became {:?}",
            y.raw,
            x.raw
        );
    }
}

/// Parses `text` as a unit file that must hold exactly one
/// `[Service] ExecStart=`, and returns that command.
fn reread_exec_start(text: &str) -> Command {
    let f = parse_unit_file(
        Path::new("/etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf"),
        text,
    )
    .unwrap_or_else(|e| panic!("rendered drop-in does not parse: {}\n{text}", e.message));
    assert!(f.warnings.is_empty(), "{:?}\n{text}", f.warnings);
    assert_eq!(f.entries.len(), 1, "{text}");
    let e = &f.entries[0];
    assert_eq!(
        (e.section.as_str(), e.key.as_str()),
        ("Service", "ExecStart")
    );
    Command::parse(&e.value).unwrap_or_else(|err| {
        panic!(
            "rendered ExecStart= does not parse back: {}\n{text}",
            err.message
        )
    })
}

/// `Command::parse(raw)` and everything built on a parsed command:
/// re-emission (`raw_text`), the drop-in's `ExecStart=`
/// (`render_exec_start`, read back through the unit file parser), and
/// stripping `--audit-*` flags. `extra` are values to append (any string;
/// the quotable ones are appended).
pub fn check_command(raw: &str, extra: &[&str]) {
    let c = match Command::parse(raw) {
        Err(e) => {
            assert_eq!(e.code, ExitCode::DataErr, "{}", e.message);
            assert!(!e.message.is_empty());
            return;
        }
        Ok(c) => c,
    };
    assert!(!c.words.is_empty());
    assert!(!c.executable().is_empty());
    assert!(!c.executable_name().contains('/'));
    let argv = c.argv_values();
    if c.separate_argv0() {
        assert!(c.words.len() >= 2, "@ without argv[0]: {raw:?}");
    }
    assert_eq!(argv.len(), c.words.len() - usize::from(c.separate_argv0()));
    for w in &c.words {
        assert!(!w.raw.is_empty());
        assert!(raw.contains(&w.raw), "raw word {:?} not in {raw:?}", w.raw);
    }
    for r in c.env_references() {
        assert!(r.word_index >= 1 && r.word_index < c.words.len());
        assert!(c.expands_env());
    }

    // Re-emitted on one line, the same words.
    let text = c.raw_text();
    let back = Command::parse(&text).unwrap_or_else(|e| {
        panic!(
            "re-emitted {raw:?} as {text:?}, which does not parse: {}",
            e.message
        )
    });
    assert_eq!(back.prefixes, c.prefixes, "{raw:?} → {text:?}");
    assert_eq!(back.argv_values(), argv, "{raw:?} → {text:?}");
    assert_same_words(&back.words, &c.words, &format!("{raw:?} → {text:?}"));

    // Stripping the audit flags: a subsequence of the words, the prefix
    // and argv[0] untouched, no audit flag in any pflag spelling left
    // before `--`, and
    // what is left re-emits to the same words.
    let (s, removed) = c.strip_audit_flags();
    assert_eq!(s.prefixes, c.prefixes);
    let first = c.first_arg_index().min(c.words.len());
    assert_eq!(s.words[..first], c.words[..first]);
    let mut positional = false;
    for w in &s.words[first..] {
        // Any spelling kube-apiserver reads as an audit flag (`_` as `-`).
        assert!(
            positional || !kaudit_node::apiserver::pflag::is_audit_flag_word(&w.value),
            "{:?} left in {raw:?}",
            w.value
        );
        positional |= w.value == "--";
    }
    let mut taken = 0;
    let mut last_index = None;
    for r in &removed {
        assert!(r.name.starts_with("--audit-"), "{r:?}");
        assert!(r.word_index >= first && r.word_index < c.words.len());
        assert!(last_index < Some(r.word_index), "{removed:?}");
        last_index = Some(r.word_index);
        let w = &c.words[r.word_index];
        taken += if r.raw == w.raw {
            1
        } else {
            let next = &c.words[r.word_index + 1];
            assert_eq!(r.raw, format!("{} {}", w.raw, next.raw));
            assert_eq!(r.value.as_deref(), Some(next.value.as_str()));
            2
        };
    }
    assert_eq!(s.words.len() + taken, c.words.len(), "{raw:?}");
    let stripped = s.raw_text();
    let back = Command::parse(&stripped)
        .unwrap_or_else(|e| panic!("stripped {raw:?} to {stripped:?}: {}", e.message));
    assert_eq!(back.argv_values(), s.argv_values());
    assert_same_words(&back.words, &s.words, &stripped);
    let (again, more) = s.strip_audit_flags();
    assert!(
        more.is_empty(),
        "stripping twice removes {more:?} from {raw:?}"
    );
    assert_eq!(again, s);

    // kaudit-node's drop-in: the vendor words then the appended ones, as a
    // unit file line, read back to the same argv. Only for a value a unit
    // file can hold (one line, stripped, as the unit parser returns it).
    if raw.contains(['\n', '\r']) || raw.trim_matches(WHITESPACE) != raw {
        return;
    }
    let appended: Vec<(&str, String)> = extra
        .iter()
        .filter_map(|v| quote_word(v).ok().map(|q| (*v, q)))
        .collect();
    let quoted: Vec<String> = appended.iter().map(|(_, q)| q.clone()).collect();
    for base in [&c, &s] {
        let rendered = render_exec_start(base, &quoted);
        let unit = format!("[Service]\nExecStart={rendered}\n");
        let got = reread_exec_start(&unit);
        assert_eq!(got.prefixes, base.prefixes, "{unit}");
        let n = base.words.len();
        assert_eq!(got.words.len(), n + appended.len(), "{unit}");
        assert_same_words(&got.words[..n], &base.words, &unit);
        for (w, (v, _)) in got.words[n..].iter().zip(&appended) {
            assert_eq!(
                expand_literal(&w.value, base.expands_env()).as_deref(),
                Some(*v),
                "{unit}"
            );
        }
    }
}
