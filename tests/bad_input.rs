//! The bad-input corpus (`tests/bad-input/cases.toml`): every case must
//! fail with its exit code and a message naming the place, must never
//! print a secret it was given, and must leave the node byte-identical.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
    /// Node path → `UID:GID` (needs root).
    #[serde(default)]
    owners: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    /// Node path → the target of a symbolic link put there (replacing
    /// what is there).
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
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

fn corpus() -> Vec<Case> {
    let corpus: Corpus = toml::from_str(&fs::read_to_string(base().join("cases.toml")).unwrap())
        .expect("tests/bad-input/cases.toml");
    assert!(
        corpus.case.len() >= 50,
        "only {} bad inputs",
        corpus.case.len()
    );
    corpus.case
}

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

/// The checks on what kaudit-node printed, shared by both runs: the exit
/// code, the message, the `kaudit-node: error: ` prefix, and no secret.
fn check_output(c: &Case, out: &Output, config: &Path, failures: &mut Vec<String>) {
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
}

fn report(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_inputs_fail_clearly_and_change_nothing() {
    let base = base();
    let corpus = Corpus { case: corpus() };
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
        for rel in &c.remove {
            fs::remove_file(node.join(rel)).unwrap();
        }
        for (rel, target) in &c.symlinks {
            let p = node.join(rel);
            match fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => fs::remove_dir_all(&p).unwrap(),
                Ok(_) => fs::remove_file(&p).unwrap(),
                Err(_) => fs::create_dir_all(p.parent().unwrap()).unwrap(),
            }
            std::os::unix::fs::symlink(target, &p).unwrap();
        }
        for (rel, mode) in &c.modes {
            fs::set_permissions(
                node.join(rel),
                fs::Permissions::from_mode(u32::from_str_radix(mode, 8).unwrap()),
            )
            .unwrap();
        }
        for (rel, owner) in &c.owners {
            let (uid, gid) = owner.split_once(':').expect("owners are UID:GID");
            std::os::unix::fs::lchown(
                node.join(rel),
                Some(uid.parse().unwrap()),
                Some(gid.parse().unwrap()),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "[{}] chown {owner} {rel}: {e} (the corpus needs root)",
                    c.name
                )
            });
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
        check_output(c, &out, &config, &mut failures);
        if snapshot(tmp.path()) != before {
            failures.push(format!("[{}] the node changed", c.name));
        }
    }
    report(&failures, corpus.case.len());
}

// --- the same corpus through `apply`, on a live node ----------------------

/// Runs the corpus through `kaudit-node apply` inside a running sandbox (a
/// real systemd in a systemd-nspawn container whose kube-apiserver.service
/// runs the TEST STAND-IN, as the vendor ships it or with audit logging
/// already applied): tests/system/badinput.sh boots it and sets
/// `KAUDIT_SANDBOX` (its directory) and `KAUDIT_SANDBOX_NODE`.
///
/// For every case, besides the output checks above: every file under the
/// managed paths is unchanged (content, mode, owner, inode: an atomic
/// rewrite with the same bytes would still show), the log directory's
/// entries are unchanged (names, modes, owners, inodes; not the log's
/// content, which the apiserver keeps appending to), the unit keeps its
/// main PID and invocation and stays active, and systemd was not reloaded.
#[test]
#[ignore = "needs a running sandbox: tests/system/badinput.sh runs it"]
fn bad_inputs_on_a_live_node_change_nothing() {
    let dir = std::env::var("KAUDIT_SANDBOX")
        .expect("KAUDIT_SANDBOX=DIR must name a running sandbox (tests/system/badinput.sh)");
    let sb = Sandbox { dir };
    let cases = corpus();
    // `applied` (kaudit-node's drop-in in place) or `vendor` (the unit as
    // shipped): the script runs the corpus on both.
    let applied = match std::env::var("KAUDIT_SANDBOX_NODE").as_deref() {
        Ok("applied") => true,
        Ok("vendor") => false,
        other => panic!("KAUDIT_SANDBOX_NODE must be applied or vendor, not {other:?}"),
    };
    let baseline = sb.state();
    assert!(
        baseline.contains("ActiveState=active")
            && baseline.contains("50-kaudit-node.conf") == applied,
        "the sandbox is not a running {} node:\n{baseline}",
        if applied { "applied" } else { "vendor" }
    );
    let mut failures = Vec::new();
    for c in &cases {
        let config = PathBuf::from(
            c.config_path
                .as_deref()
                .unwrap_or("/etc/kaudit-node/config.toml"),
        );
        // Originals of the files the case overwrites, to put back after.
        let mut originals = Vec::new();
        let mut created = Vec::new();
        // Removed files, and what a symbolic link replaces, are moved
        // aside and back: same inode, same mode.
        let mut moved = Vec::new();
        let mut links = Vec::new();
        sb.run(&["mkdir", "-p", ASIDE]);
        for rel in &c.remove {
            let (path, aside) = (format!("/{rel}"), format!("{ASIDE}/{}", moved.len()));
            sb.run(&["mv", &path, &aside]);
            moved.push((aside, path));
        }
        for (rel, target) in &c.symlinks {
            let (path, aside) = (format!("/{rel}"), format!("{ASIDE}/{}", moved.len()));
            if sb.exec(&["test", "-e", &path], None).status.success() {
                sb.run(&["mv", &path, &aside]);
                moved.push((aside, path.clone()));
            }
            created.extend(sb.link(&path, target));
            links.push(path);
        }
        for (rel, content) in &c.files {
            let path = format!("/{rel}");
            originals.push((path.clone(), sb.read(&path)));
            created.extend(sb.write(&path, content.as_bytes()));
        }
        let mut modes = Vec::new();
        for (rel, mode) in &c.modes {
            let path = format!("/{rel}");
            let was = sb.run(&["stat", "-c", "%a", &path]);
            modes.push((path.clone(), was.trim().to_string()));
            sb.run(&["chmod", mode, &path]);
        }
        let mut owners = Vec::new();
        for (rel, owner) in &c.owners {
            let path = format!("/{rel}");
            let was = sb.run(&["stat", "-c", "%u:%g", &path]);
            owners.push((path.clone(), was.trim().to_string()));
            sb.run(&["chown", "-h", owner, &path]);
        }
        if let Some(text) = &c.config {
            created.extend(sb.write(&config.display().to_string(), text.as_bytes()));
        }

        let before = sb.state();
        let mut args: Vec<String> = c
            .args
            .iter()
            .map(|a| {
                if a == "plan" {
                    "apply".into()
                } else {
                    a.clone()
                }
            })
            .collect();
        if c.config.is_some() || c.config_path.is_some() {
            args.extend(["--config".into(), config.display().to_string()]);
        }
        let mut argv = vec!["/usr/local/sbin/kaudit-node"];
        argv.extend(args.iter().map(String::as_str));
        let out = sb.exec(&argv, None);
        check_output(c, &out, &config, &mut failures);
        let after = sb.state();
        if after != before {
            failures.push(format!(
                "[{}] the node changed:\n{}",
                c.name,
                diff_lines(&before, &after)
            ));
        }

        // Put the node back as it was (in the reverse order), and prove it.
        for (path, owner) in owners {
            sb.run(&["chown", "-h", &owner, &path]);
        }
        for (path, mode) in modes {
            sb.run(&["chmod", &mode, &path]);
        }
        for (path, original) in originals {
            match original {
                Some(bytes) => {
                    sb.write(&path, &bytes);
                }
                None => {
                    sb.run(&["rm", "-f", &path]);
                }
            }
        }
        for path in links {
            sb.run(&["rm", &path]);
        }
        for (aside, path) in moved {
            sb.run(&["mv", &aside, &path]);
        }
        for dir in created {
            sb.run(&["rm", "-rf", &dir]);
        }
        // A case that changed the runtime (a restart) cannot be undone
        // here: the failures so far are reported and the run stops.
        let now = sb.state();
        if now != baseline {
            failures.push(format!(
                "[{}] the node differs from before the corpus; stopping:\n{}",
                c.name,
                diff_lines(&baseline, &now)
            ));
            break;
        }
    }
    eprintln!(
        "bad inputs through apply on a live {} node: {} cases, {} failures",
        if applied { "applied" } else { "vendor" },
        cases.len(),
        failures.len()
    );
    report(&failures, cases.len());
}

/// Lines only in `a` (-) or only in `b` (+).
fn diff_lines(a: &str, b: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in a.iter().filter(|l| !b.contains(l)) {
        out += &format!("- {l}\n");
    }
    for l in b.iter().filter(|l| !a.contains(l)) {
        out += &format!("+ {l}\n");
    }
    out
}

/// Where the live run keeps the files a case removes (outside the
/// managed paths, on the container's own filesystem).
const ASIDE: &str = "/var/tmp/kaudit-test-removed";

struct Sandbox {
    dir: String,
}

/// The node's managed paths and the unit's runtime state, as text: one
/// line per entry, contents hashed, so that a difference names the file.
const STATE: &str = r#"
set -e
managed="/etc/systemd/system /etc/kubernetes /etc/kaudit-node /etc/logrotate.d /run/systemd/system"
find $managed /var/log/kubernetes -xdev -printf '%p %y %m %u:%g inode=%i %l\n' 2>/dev/null | sort
find $managed -xdev -type f -exec sha256sum {} + 2>/dev/null | sort
systemctl show -p MainPID -p InvocationID -p ActiveState -p NRestarts -p FragmentPath -p DropInPaths kube-apiserver.service
echo "daemon-reloads=$(journalctl _PID=1 --no-pager -o cat | grep -c '^Reloading' || true)"
"#;

impl Sandbox {
    fn exec(&self, argv: &[&str], stdin: Option<&[u8]>) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/system/sandbox.sh");
        let mut cmd = Command::new(script);
        cmd.arg("exec").arg(&self.dir).args(argv);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("tests/system/sandbox.sh");
        if let Some(bytes) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed.
    fn run(&self, argv: &[&str]) -> String {
        let out = self.exec(argv, None);
        assert!(
            out.status.success(),
            "{argv:?} in the sandbox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn state(&self) -> String {
        self.run(&["sh", "-c", STATE])
    }

    /// A file's bytes, or None when it does not exist.
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let out = self.exec(
            &[
                "sh",
                "-c",
                r#"if [ -e "$1" ]; then exec cat "$1"; else exit 3; fi"#,
                "sh",
                path,
            ],
            None,
        );
        match out.status.code() {
            Some(0) => Some(out.stdout),
            Some(3) => None,
            _ => panic!(
                "reading {path} in the sandbox: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Writes a file, creating its directory; returns the topmost directory
    /// it had to create, for the cleanup.
    fn write(&self, path: &str, bytes: &[u8]) -> Option<String> {
        self.make(path, r#"cat >"$1""#, &[], Some(bytes))
    }

    /// Puts a symbolic link to `target` at `path`, like [`Self::write`].
    fn link(&self, path: &str, target: &str) -> Option<String> {
        self.make(path, r#"ln -s "$2" "$1""#, &[target], None)
    }

    /// Runs `make` (a shell command on `$1` = `path`, `$2`… = `args`)
    /// after creating the directory of `path`; returns the topmost
    /// directory it created.
    fn make(&self, path: &str, make: &str, args: &[&str], stdin: Option<&[u8]>) -> Option<String> {
        let script = format!(
            r#"d=$(dirname "$1") top=
            while [ ! -e "$d" ]; do top=$d; d=$(dirname "$d"); done
            mkdir -p "$(dirname "$1")" && {make} && printf '%s' "$top""#
        );
        let mut argv = vec!["sh", "-c", &script, "sh", path];
        argv.extend(args);
        let out = self.exec(&argv, stdin);
        assert!(
            out.status.success(),
            "making {path} in the sandbox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let top = String::from_utf8(out.stdout).unwrap();
        (!top.is_empty()).then_some(top)
    }
}
