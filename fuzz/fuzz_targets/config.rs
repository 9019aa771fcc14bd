//! The configuration parser: `config::from_str` on any text. It must never
//! panic; an error is EX_CONFIG and every line of it names the file and a
//! line inside it; valid settings hold only values kube-apiserver and
//! systemd accept, and their flags survive the trip through kaudit-node's
//! drop-in: quoted with `quote_word`, rendered after the vendor command
//! with `render_exec_start`, read back by the unit reader, and recognised
//! (and removed whole) by `strip_audit_flags`.

#![no_main]

mod common;

use std::path::Path;

use kaudit_node::config::{self, PolicySource, Settings, check_node_path};
use kaudit_node::error::ExitCode;
use kaudit_node::flags::audit_flags;
use kaudit_node::unit::{
    Command, is_known_audit_flag, parse_unit_file, quote_word, render_exec_start,
    validate_unit_name,
};
use libfuzzer_sys::fuzz_target;

use common::{check_quote, expand_literal};

const PATH: &str = "/etc/kaudit-node/config.toml";

fn check_settings(s: &Settings) {
    validate_unit_name(&s.unit).expect("the unit name is valid");
    let mut paths = vec![&s.policy_path, &s.log.path, &s.logrotate.path];
    if let PolicySource::File(p) = &s.policy {
        paths.push(p);
    }
    if let Some(w) = &s.webhook {
        paths.push(&w.config);
    }
    for p in paths {
        let text = p.to_str().expect("paths are UTF-8");
        check_node_path(text).unwrap_or_else(|why| panic!("{p:?}: {why}"));
    }
    assert_ne!(s.log.path, s.policy_path);
    assert_eq!(s.log.dir_mode & 0o7702, 0o700, "{:o}", s.log.dir_mode);
    assert_eq!(s.log.file_mode & 0o7713, 0o600, "{:o}", s.log.file_mode);
    let t = s.apply.verify_timeout.as_std();
    assert!(t.as_secs() >= 1 && t.as_secs() <= 3600, "{t:?}");
    for w in &s.warnings {
        assert!(!w.is_empty());
    }
    serde_json::to_string(s).expect("settings serialise");

    let flags = audit_flags(s);
    let mut quoted = Vec::new();
    for f in &flags {
        let arg = f.arg();
        assert!(
            is_known_audit_flag(&format!("--{}", f.name)),
            "unknown flag {arg}"
        );
        check_quote(&arg);
        quoted.push(quote_word(&arg).unwrap_or_else(|e| panic!("{arg:?}: {}", e.message)));
    }
    // Each flag once.
    for (i, f) in flags.iter().enumerate() {
        assert!(
            flags[..i].iter().all(|g| g.name != f.name),
            "{} twice",
            f.name
        );
    }

    // The drop-in's ExecStart=, read back as the unit reader reads it.
    for vendor in [
        "/usr/local/bin/kube-apiserver --v=2 --audit-log-path=/old",
        ":/usr/bin/kube-apiserver",
    ] {
        let vendor = Command::parse(vendor).expect("vendor command");
        let (vendor, _) = vendor.strip_audit_flags();
        let unit = format!(
            "[Service]\nExecStart=\nExecStart={}\n",
            render_exec_start(&vendor, &quoted)
        );
        let f = parse_unit_file(Path::new("/x.conf"), &unit)
            .unwrap_or_else(|e| panic!("{}\n{unit}", e.message));
        assert_eq!(f.entries.len(), 2, "{unit}");
        let got =
            Command::parse(&f.entries[1].value).unwrap_or_else(|e| panic!("{}\n{unit}", e.message));
        let n = vendor.words.len();
        assert_eq!(got.words.len(), n + flags.len(), "{unit}");
        for (w, f) in got.words[n..].iter().zip(&flags) {
            assert_eq!(
                expand_literal(&w.value, got.expands_env()),
                Some(f.arg()),
                "{unit}"
            );
        }
        // Re-read, kaudit-node's own flags are recognised and removed whole.
        let (left, removed) = got.strip_audit_flags();
        assert_eq!(left.words, vendor.words, "{unit}");
        assert_eq!(removed.len(), flags.len(), "{unit}");
        for (r, f) in removed.iter().zip(&flags) {
            assert_eq!(r.name, format!("--{}", f.name));
            let value = r
                .value
                .as_deref()
                .map(|v| expand_literal(v, got.expands_env()));
            assert_eq!(value, f.value.clone().map(Some), "{unit}");
        }
    }
}

/// `PATH:LINE:COL: …` or `PATH: …`; LINE within the text.
fn check_error_line(line: &str, text: &str) {
    let rest = line
        .strip_prefix(PATH)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or_else(|| panic!("error line does not name the file: {line:?}"));
    let lines = text.matches('\n').count() + 1;
    if let Some((l, _)) = rest.split_once(':')
        && let Ok(l) = l.parse::<usize>()
    {
        assert!(l >= 1 && l <= lines, "line {l} of {lines}: {line}");
    }
}

fuzz_target!(|data: &[u8]| {
    // `config::load` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labelled = config::from_str(Some(Path::new(PATH)), text);
    let embedded = config::from_str(None, text);
    match (labelled, embedded) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.source.as_deref(), Some(Path::new(PATH)));
            assert_eq!(b.source, None);
            assert_eq!(a.warnings.len(), b.warnings.len());
            let mut b2 = b.clone();
            b2.source = a.source.clone();
            b2.warnings = a.warnings.clone();
            assert_eq!(a, b2, "the label changed the settings");
            check_settings(&a);
        }
        (Err(a), Err(b)) => {
            for e in [&a, &b] {
                assert_eq!(e.code, ExitCode::Config, "{}", e.message);
                assert!(!e.message.is_empty());
            }
            assert_eq!(a.message.lines().count(), b.message.lines().count());
            for line in a.message.lines() {
                check_error_line(line, text);
            }
        }
        (a, b) => panic!(
            "the label changed the verdict: {:?} / {:?}",
            a.map(|_| ()).map_err(|e| e.message),
            b.map(|_| ()).map_err(|e| e.message)
        ),
    }
});
