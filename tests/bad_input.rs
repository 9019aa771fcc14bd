//! The bad-input corpus (`tests/bad-input/cases.toml`): every case must
//! fail with its exit code and a message naming the place, must never
//! print a secret it was given, and must leave the node byte-identical.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    config: Option<String>,
    config_path: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    modes: BTreeMap<String, String>,
    #[serde(default = "default_args")]
    args: Vec<String>,
    exit: i32,
    message: String,
}

fn default_args() -> Vec<String> {
    vec!["plan".into()]
}

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Path → (mode, size, content) of every entry under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let content = if md.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.insert(p.clone(), (md.mode(), content));
            if md.is_dir() {
                walk(&p, out);
            }
        }
    }
    walk(dir, &mut out);
    out
}

#[test]
fn bad_inputs_fail_clearly_and_change_nothing() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let corpus: Corpus =
        toml::from_str(&fs::read_to_string(base.join("cases.toml")).unwrap()).unwrap();
    assert!(
        corpus.case.len() >= 40,
        "only {} bad inputs",
        corpus.case.len()
    );
    let mut failures = Vec::new();
    for c in &corpus.case {
        let tmp = tempfile::tempdir().unwrap();
        let node = tmp.path().join("node");
        copy_tree(&base.join("node"), &node);
        for (rel, content) in &c.files {
            let p = node.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
        }
        for (rel, mode) in &c.modes {
            fs::set_permissions(
                node.join(rel),
                fs::Permissions::from_mode(u32::from_str_radix(mode, 8).unwrap()),
            )
            .unwrap();
        }
        let config = match (&c.config, &c.config_path) {
            (_, Some(p)) => PathBuf::from(p),
            (Some(text), None) => {
                let p = tmp.path().join("config.toml");
                fs::write(&p, text).unwrap();
                p
            }
            (None, None) => tmp.path().join("absent.toml"),
        };
        let before = snapshot(tmp.path());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaudit-node"));
        cmd.args(&c.args).arg("--root").arg(&node);
        if c.config.is_some() || c.config_path.is_some() {
            cmd.arg("--config").arg(&config);
        }
        let out = cmd
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let want = c.message.replace("$CONFIG", &config.display().to_string());
        let code = out.status.code().unwrap_or(-1);
        if code != c.exit || !stderr.contains(&want) {
            failures.push(format!(
                "[{}] exit {code} (want {}), stderr:\n{stderr}want to contain:\n{want}\n",
                c.name, c.exit
            ));
        }
        if !stderr.starts_with("kaudit-node: error: ") {
            failures.push(format!(
                "[{}] stderr does not start with \"kaudit-node: error: \":\n{stderr}",
                c.name
            ));
        }
        // The corpus's webhook credentials must never be echoed.
        if format!("{stderr}{}", String::from_utf8_lossy(&out.stdout)).contains("s3cr3t-t0ken") {
            failures.push(format!("[{}] printed a secret", c.name));
        }
        if snapshot(tmp.path()) != before {
            failures.push(format!("[{}] the node changed", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.case.len(),
        failures.join("\n")
    );
}
