//! Golden cases: `tests/cases/NAME/` holds an input node (`root/`), an
//! optional `config.toml` and `case.toml` (modes and owners git cannot
//! store), and the expected results:
//!
//! - `expected/output.txt`: the exit code, stdout and stderr of
//!   `kaudit-node plan --root root/ [--config config.toml]`, run as a user
//!   runs it;
//! - `expected/files/`: every file the plan writes, compared as a whole
//!   tree (a missing, extra or different file fails, with a unified diff).
//!
//! Then, for every case that plans, the planned files are written into the
//! copy of the node and the case must be converged on a second plan, the
//! unit with the drop-in must pass real `systemd-analyze verify`, and a
//! rendered logrotate snippet must pass real `logrotate -d`.
//!
//! `KAUDIT_BLESS=1 cargo test --test cases` rewrites `expected/` from the
//! actual results: review the diff before committing.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};

use std::path::{Path, PathBuf};
use std::process::Command;

use kaudit_node::config;
use kaudit_node::observe;
use kaudit_node::plan::{self, Kind};
use kaudit_node::root::Root;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(
                    rel,
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// `case.toml`: `[modes] "etc/x" = "0600"` and `[owners] "etc/x" = "996:994"`.
fn fixups(case: &Path, root: &Path) {
    let Ok(text) = fs::read_to_string(case.join("case.toml")) else {
        return;
    };
    let t: toml::Table = toml::from_str(&text).unwrap();
    if let Some(modes) = t.get("modes").and_then(|v| v.as_table()) {
        for (p, m) in modes {
            let m = u32::from_str_radix(m.as_str().unwrap(), 8).unwrap();
            fs::set_permissions(root.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
    }
    if let Some(owners) = t.get("owners").and_then(|v| v.as_table()) {
        for (p, o) in owners {
            let (u, g) = o.as_str().unwrap().split_once(':').unwrap();
            if common::require_root("the case sets owners") {
                chown(
                    root.join(p),
                    Some(u.parse().unwrap()),
                    Some(g.parse().unwrap()),
                )
                .unwrap();
            }
        }
    }
}

fn diff(name: &str, expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header(&format!("expected/{name}"), &format!("actual/{name}"))
        .to_string()
}

/// The recorded identity of the fixture's binary (device, inode, size,
/// mtime) differs on every checkout: masked, so the version and the
/// binary's path are still compared.
fn mask_identity(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.find(" dev=") {
            Some(i) if line.contains(kaudit_node::apiserver::identity::HEADER_KEY) => {
                let end = line.trim_end_matches('\n');
                let rest = &end[i..];
                let tail = rest.find(" (").map(|j| &rest[j..]).unwrap_or("");
                format!(
                    "{} dev=N ino=N size=N mtime=N{tail}{}",
                    &line[..i],
                    &line[end.len()..]
                )
            }
            _ => line.to_string(),
        })
        .collect()
}

fn run_case(case: &Path, bless: bool) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("root");
    copy_tree(&case.join("root"), &node);
    fixups(case, &node);
    let has_config = case.join("config.toml").exists();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaudit-node"));
    cmd.current_dir(case).arg("plan").arg("--root").arg(&node);
    if has_config {
        cmd.args(["--config", "config.toml"]);
    }
    let out = cmd
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let text = |b: &[u8]| {
        mask_identity(&String::from_utf8_lossy(b).replace(node.to_str().unwrap(), "$ROOT"))
    };
    let actual = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr)
    );

    let mut files = BTreeMap::new();
    let settings = match has_config {
        true => config::load(&case.join("config.toml"), true),
        false => config::load(&node.join("etc/kaudit-node/config.toml"), false),
    };
    let root = Root::new(&node);
    let planned =
        settings.and_then(|s| observe::observe(&root, &s).and_then(|o| plan::plan(&s, &o)));
    if let Ok(p) = &planned {
        for e in p
            .changes()
            .filter(|e| e.kind == Kind::File && !e.content.is_empty())
        {
            let rel = e.path.strip_prefix("/").unwrap().display().to_string();
            files.insert(
                rel,
                mask_identity(&String::from_utf8(e.content.clone()).unwrap()),
            );
        }
    }

    let exp = case.join("expected");
    if bless {
        let _ = fs::remove_dir_all(&exp);
        fs::create_dir_all(&exp).unwrap();
        fs::write(exp.join("output.txt"), &actual).unwrap();
        for (rel, content) in &files {
            let p = exp.join("files").join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
    }
    let mut failures = Vec::new();
    let expected = fs::read_to_string(exp.join("output.txt")).unwrap_or_default();
    if expected != actual {
        failures.push(diff("output.txt", &expected, &actual));
    }
    let expected_files = read_tree(&exp.join("files"));
    if expected_files != files {
        for k in expected_files
            .keys()
            .chain(files.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (e, a) = (
                expected_files.get(k).cloned().unwrap_or_default(),
                files.get(k).cloned().unwrap_or_default(),
            );
            if e != a {
                failures.push(diff(&format!("files/{k}"), &e, &a));
            }
        }
    }

    if let Ok(p) = planned {
        if common::require_root("writing the planned files sets owners") {
            kaudit_node::effects::write_plan(&root, &p).map_err(|e| e.message)?;
            let s2 = match has_config {
                true => config::load(&case.join("config.toml"), true),
                false => config::load(&node.join("etc/kaudit-node/config.toml"), false),
            }
            .unwrap();
            let p2 =
                plan::plan(&s2, &observe::observe(&root, &s2).unwrap()).map_err(|e| e.message)?;
            if !p2.is_converged() {
                failures.push(format!(
                    "not converged after writing the plan:\n{}",
                    kaudit_node::report::plan_text(&p2)
                ));
            }
        } else {
            eprintln!(
                "note: not root: the convergence and systemd-analyze checks of {} need root to set owners",
                case.display()
            );
        }
        // Real systemd: the unit with our drop-in must load. Minimal
        // targets stand in for the distribution's, for default dependencies.
        for t in ["sysinit", "basic", "shutdown", "multi-user", "network"] {
            let unit = node.join(format!("usr/lib/systemd/system/{t}.target"));
            if !unit.exists() && !node.join(format!("lib/systemd/system/{t}.target")).exists() {
                fs::create_dir_all(unit.parent().unwrap()).unwrap();
                fs::write(&unit, format!("[Unit]\nDescription={t}\n")).unwrap();
            }
        }
        let v = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .env_remove("SYSTEMD_LOG_LEVEL")
            .arg(format!("--root={}", node.display()))
            .arg(&p.unit)
            .output()
            .map_err(|e| format!("systemd-analyze: {e} (install systemd)"))?;
        if !v.status.success() || !v.stderr.is_empty() {
            failures.push(format!(
                "systemd-analyze verify failed ({}):\n{}{}",
                v.status,
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            ));
        }
        if let Some(e) = p.entries.iter().find(|e| e.purpose == "logrotate snippet") {
            let state = tmp.path().join("logrotate.state");
            let l = Command::new("logrotate")
                .arg("-d")
                .arg("-s")
                .arg(&state)
                .arg(root.host_path(&e.path))
                .output()
                .map_err(|e| format!("logrotate: {e} (install logrotate)"))?;
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&l.stdout),
                String::from_utf8_lossy(&l.stderr)
            );
            if !l.status.success() || all.contains("error") {
                failures.push(format!("logrotate -d rejected the snippet:\n{all}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("KAUDIT_BLESS").is_some();
    let mut dirs: Vec<PathBuf> = fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("root").is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 10,
        "expected at least 10 cases, found {}",
        dirs.len()
    );
    let mut failed = Vec::new();
    for d in &dirs {
        if let Err(e) = run_case(d, bless) {
            failed.push(format!(
                "=== case {}\n{e}",
                d.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        dirs.len(),
        failed.join("\n")
    );
}
