//! The command line as a user runs it: help, version, usage errors and the
//! small `policy` commands.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaudit-node"));
    c.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version() {
    let o = run(&["--help"], None);
    assert_eq!(o.status.code(), Some(0));
    for sub in ["apply", "remove", "plan", "check", "policy"] {
        assert!(text(&o.stdout).contains(sub), "--help lacks {sub}");
    }
    let o = run(&["apply", "--help"], None);
    assert!(text(&o.stdout).contains("--detailed-exitcodes"));
    let o = run(&["--version"], None);
    assert_eq!(
        text(&o.stdout).trim(),
        format!("kaudit-node {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_ex_usage_except_for_check() {
    let o = run(&["plan", "--bogus"], None);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--bogus"));
    let o = run(&["apply", "--dry-run", "--no-restart"], None);
    assert_eq!(
        o.status.code(),
        Some(64),
        "conflicting options: {}",
        text(&o.stderr)
    );
    // A monitoring plugin's usage error is UNKNOWN.
    assert_eq!(run(&["check", "--bogus"], None).status.code(), Some(3));
    assert_eq!(run(&["check", "--warn-age"], None).status.code(), Some(3));
    assert_eq!(
        run(&["-v", "check", "--bogus"], None).status.code(),
        Some(3)
    );
    // The subcommand is clap's, not the first word that is no option: here
    // `check` is the value of --config, and the command is `plan`.
    assert_eq!(
        run(&["plan", "--config", "check", "--bogus"], None)
            .status
            .code(),
        Some(64)
    );
    assert_eq!(run(&["chek"], None).status.code(), Some(64));
}

#[test]
fn policy_commands() {
    let o = run(&["policy", "list"], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout).lines().count(), 3);
    for preset in ["metadata", "recommended", "cis"] {
        let shown = run(&["policy", "show", preset], None);
        assert_eq!(shown.status.code(), Some(0));
        // What `show` prints validates, strictly, from standard input.
        let v = run(
            &["policy", "validate", "--strict", "-"],
            Some(&shown.stdout),
        );
        assert_eq!(v.status.code(), Some(0), "{preset}: {}", text(&v.stderr));
    }
    let o = run(&["policy", "show", "paranoid"], None);
    assert_eq!(o.status.code(), Some(64));
    let bad =
        b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verb: [get]\n";
    let o = run(&["policy", "validate", "-"], Some(bad));
    assert_eq!(o.status.code(), Some(65));
    assert!(
        text(&o.stderr).contains(
            "(stdin):5:3: error: rules[0]: unknown field \"verb\" (did you mean \"verbs\"?)"
        ),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["policy", "validate", "/nonexistent/policy.yaml"], None);
    assert_eq!(o.status.code(), Some(66));
    let o = run(&["policy", "validate", "--format", "json", "-"], Some(bad));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["field"], "rules[0]");
}

#[test]
fn json_on_early_errors_of_plan_apply_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    for cmd in [&["plan"][..], &["apply", "--dry-run"], &["remove"]] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(["--config", missing.to_str().unwrap(), "--format", "json"]);
        let out = run(&args, None);
        let code = out.status.code().unwrap();
        assert_ne!(code, 0, "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON object ({e}): {}",
                text(&out.stdout)
            )
        });
        assert_eq!(v["exit_code"], code, "{args:?}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("absent.toml"),
            "{args:?}: {v}"
        );
        assert!(
            text(&out.stderr).starts_with("kaudit-node: error: "),
            "{args:?}"
        );
    }
}

/// The exit codes in `--help` and in kaudit-node(8) are the `ExitCode`
/// enum's, every one of them, and nothing else.
#[test]
fn exit_codes_in_help_and_man_page_match_the_enum() {
    use kaudit_node::error::ExitCode;
    let sysexits: std::collections::BTreeSet<i32> = [
        ExitCode::Ok,
        ExitCode::Changes,
        ExitCode::Usage,
        ExitCode::DataErr,
        ExitCode::NoInput,
        ExitCode::Unavailable,
        ExitCode::Software,
        ExitCode::IoErr,
        ExitCode::TempFail,
        ExitCode::NoPerm,
        ExitCode::Config,
    ]
    .iter()
    .map(|c| c.code())
    .collect();
    // --help: "Exit codes: 0 success (...), 2 plan: ..., 64 usage, ...".
    let help = text(&run(&["--help"], None).stdout);
    let line = help
        .split("Exit codes: ")
        .nth(1)
        .expect("--help lists the exit codes")
        .split("\napply --detailed-exitcodes")
        .next()
        .unwrap()
        .replace('\n', " ");
    let mut in_help = std::collections::BTreeSet::new();
    for part in line.split(", ") {
        if let Some(n) = part
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<i32>().ok())
            && part
                .split_whitespace()
                .nth(1)
                .is_some_and(|w| !w.starts_with(char::is_numeric))
        {
            in_help.insert(n);
        }
    }
    assert_eq!(in_help, sysexits, "--help: {line}");
    assert!(help.contains(
        "apply --detailed-exitcodes: 0 no change, 2 changed, 4 failed, 6 failed with changes"
    ));
    assert!(help.contains("check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"));
    // kaudit-node(8): the EXIT STATUS section's `.B N` entries.
    let man = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/man/kaudit-node.8.extra"
    ))
    .unwrap();
    let section = man
        .split(".SH EXIT STATUS")
        .nth(1)
        .unwrap()
        .split("\n.SH ")
        .next()
        .unwrap();
    let in_man: std::collections::BTreeSet<i32> = section
        .lines()
        .filter_map(|l| l.strip_prefix(".B ")?.trim().parse().ok())
        .collect();
    let mut want = sysexits.clone();
    want.extend([1, 3, 4, 6]); // check's WARNING and UNKNOWN; --detailed-exitcodes' failures
    assert_eq!(in_man, want, "kaudit-node(8) EXIT STATUS");
    assert!(section.contains("0 no change, 2 changed, 4 failed, 6 failed with changes"));
}

#[test]
fn a_missing_root_is_its_own_error() {
    for cmd in ["plan", "apply"] {
        let out = run(&[cmd, "--root", "/does/not/exist"], None);
        assert_eq!(out.status.code(), Some(66), "{cmd}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(
                "kaudit-node: error: --root /does/not/exist: No such file or directory"
            ),
            "{cmd}: {err}"
        );
    }
}
