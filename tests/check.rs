//! `kaudit-node check` on fixture trees: a node built in a temporary
//! directory (unit, the files `apply` writes, a log, a fake `/proc/PID`),
//! systemd's view given as a `UnitStatus`, and each probe driven into each
//! of its states. Then the renderers' formats, and the binary as a
//! monitoring system runs it.
//!
//! Writing the planned files sets owners, so the node tests need root, as
//! the golden cases do (`.ci/run` runs as root); as another user each test
//! fails unless KAUDIT_TEST_SKIP=root says to skip (tests/common).

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use kaudit_node::check::{self, State, Thresholds, probes, render};
use kaudit_node::config::{self, Format, Rotation, Settings};
use kaudit_node::effects;
use kaudit_node::observe;
use kaudit_node::plan::{self, Plan};
use kaudit_node::root::Root;
use kaudit_node::systemd::UnitStatus;

const UNIT: &str = "kube-apiserver.service";
const LOG: &str = "/var/log/kubernetes/audit/audit.log";
const DROPIN: &str = "/etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf";
const PID: u32 = 4242;

const VENDOR_UNIT: &str = "[Unit]\nDescription=Kubernetes API Server\n\n[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=10.240.0.10 \\\n  --audit-log-maxage=30 \\\n  --audit-log-path=/var/log/audit.log \\\n  --v=2\nRestart=on-failure\n";

fn event(id: &str) -> String {
    format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{id}\",\"stage\":\"ResponseComplete\"}}\n"
    )
}

/// A node where `kaudit-node apply` has run and the apiserver writes events.
struct Node {
    _dir: tempfile::TempDir,
    root: Root,
    settings: Settings,
    plan: Plan,
}

impl Node {
    fn new() -> Option<Node> {
        Self::with_config("")
    }

    fn with_config(toml: &str) -> Option<Node> {
        if !common::require_root("writing the planned files sets owners") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let settings = config::from_str(None, toml).unwrap();
        let put = |node: &str, text: &str| write(&root, node, text);
        put("/etc/systemd/system/kube-apiserver.service", VENDOR_UNIT);
        put("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        put("/etc/group", "root:x:0:\n");
        put(
            "/usr/local/bin/kube-apiserver",
            "#!/bin/sh\n[ \"$1\" = --version ] && echo \"Kubernetes v1.32.0\"\nexit 0\n",
        );
        std::fs::set_permissions(
            root.host_path(std::path::Path::new("/usr/local/bin/kube-apiserver")),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let plan = plan::plan(&settings, &observe::observe(&root, &settings).unwrap()).unwrap();
        kaudit_node::effects::write_plan(&root, &plan).unwrap();
        let n = Node {
            _dir: dir,
            root,
            settings,
            plan,
        };
        n.append_log(&event("a"));
        n.append_log(&event("b"));
        // The running apiserver: its argv and the log held open.
        n.write(
            &format!("/proc/{PID}/cmdline"),
            &format!("{}\0", n.plan.argv.join("\0")),
        );
        n.hold_log(&n.host(LOG));
        Some(n)
    }

    fn host(&self, node: &str) -> PathBuf {
        self.root.host_path(Path::new(node))
    }

    fn write(&self, node: &str, text: &str) {
        write(&self.root, node, text);
    }

    fn append_log(&self, text: &str) {
        use std::io::Write;
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.host(LOG))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// `/proc/PID/fd/3` → `target` (a host path for a held file, or a
    /// `… (deleted)` name as the kernel shows an unlinked one).
    fn hold_log(&self, target: &Path) {
        let fd = self.host(&format!("/proc/{PID}/fd"));
        let _ = fs::remove_dir_all(&fd);
        fs::create_dir_all(&fd).unwrap();
        symlink("/dev/null", fd.join("0")).unwrap();
        symlink(target, fd.join("3")).unwrap();
    }

    /// systemd's view of a healthy unit with the drop-in loaded.
    fn status(&self) -> UnitStatus {
        UnitStatus {
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            fragment_path: "/etc/systemd/system/kube-apiserver.service".into(),
            drop_in_paths: vec![DROPIN.into()],
            need_daemon_reload: false,
            main_pid: PID,
            n_restarts: 0,
            exec_start: vec![self.plan.argv.clone()],
        }
    }

    fn run_with(&self, st: Result<UnitStatus, String>, now: SystemTime) -> check::Verdict {
        check::check(
            &self.root,
            None,
            &self.settings,
            st,
            &Thresholds::default(),
            now,
        )
    }

    fn run(&self) -> check::Verdict {
        self.run_with(Ok(self.status()), SystemTime::now())
    }
}

fn write(root: &Root, node: &str, text: &str) {
    let p = root.host_path(Path::new(node));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn probe<'a>(r: &'a check::Verdict, name: &str) -> &'a check::Probe {
    r.probe(name)
        .unwrap_or_else(|| panic!("no probe {name} in {r:#?}"))
}

#[track_caller]
fn assert_probe(r: &check::Verdict, name: &str, state: State, reason: &str) {
    let p = probe(r, name);
    assert_eq!(p.state, state, "{name}: {}", p.reason);
    assert!(
        p.reason.contains(reason),
        "{name}: reason {:?} lacks {reason:?}",
        p.reason
    );
}

#[test]
fn healthy_node_is_ok_on_every_probe() {
    let Some(n) = Node::new() else { return };
    let r = n.run();
    for p in &r.probes {
        assert_eq!(p.state, State::Ok, "{}: {}", p.name, p.reason);
    }
    let names: Vec<&str> = r.probes.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "unit",
            "dropin",
            "flags",
            "policy",
            "log_open",
            "log_age",
            "log_tail",
            "log_fs",
            "drift",
            "trust",
            "apiserver",
            "rotation",
            "cis"
        ]
    );
    assert_eq!(r.state(), State::Ok);
    assert_probe(&r, "log_open", State::Ok, "same device and inode");
    assert_probe(&r, "log_tail", State::Ok, "is an audit event (json)");
}

#[test]
fn unit_stopped_or_unreachable() {
    let Some(n) = Node::new() else { return };
    let mut st = n.status();
    st.active_state = "inactive".into();
    st.sub_state = "dead".into();
    st.main_pid = 0;
    let r = n.run_with(Ok(st.clone()), SystemTime::now());
    assert_probe(
        &r,
        "unit",
        State::Critical,
        "kube-apiserver.service is inactive (dead)",
    );
    assert_probe(&r, "flags", State::Unknown, "no main process");
    assert_probe(&r, "log_open", State::Unknown, "no main process");
    assert_eq!(r.state(), State::Critical);

    st.active_state = "activating".into();
    let r = n.run_with(Ok(st.clone()), SystemTime::now());
    assert_probe(&r, "unit", State::Warning, "activating");

    st.load_state = "not-found".into();
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(&r, "unit", State::Critical, "systemd does not know");

    // No D-Bus: the unit probes are UNKNOWN, the file probes still run.
    let r = n.run_with(Err("cannot reach systemd".into()), SystemTime::now());
    assert_probe(&r, "unit", State::Unknown, "cannot reach systemd");
    assert_probe(&r, "dropin", State::Unknown, "cannot reach systemd");
    assert_probe(&r, "policy", State::Ok, "validates");
    assert_probe(&r, "log_tail", State::Ok, "audit event");
    assert_eq!(r.state(), State::Unknown);
}

#[test]
fn dropin_reverted_unloaded_or_overridden() {
    let Some(n) = Node::new() else { return };
    // `systemctl revert`: the file is gone and systemd runs the vendor line.
    fs::remove_file(n.host(DROPIN)).unwrap();
    let mut st = n.status();
    st.drop_in_paths.clear();
    st.exec_start = vec![vec!["/usr/local/bin/kube-apiserver".into(), "--v=2".into()]];
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(
        &r,
        "dropin",
        State::Critical,
        "is missing (removed by `systemctl revert`?)",
    );
    assert_probe(&r, "drift", State::Unknown, "no kaudit-node drop-in");

    // On disk but not loaded (no daemon-reload since).
    let Some(n) = Node::new() else { return };
    let mut st = n.status();
    st.drop_in_paths.clear();
    st.need_daemon_reload = true;
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(&r, "dropin", State::Critical, "systemd has not loaded");

    // A later drop-in overrides ExecStart: kaudit-node cannot plan the node,
    // and systemd's ExecStart is not the drop-in's. The check still runs.
    let over = "/etc/systemd/system/kube-apiserver.service.d/99-admin.conf";
    n.write(
        over,
        "[Service]\nExecStart=\nExecStart=/usr/local/bin/kube-apiserver --v=4\n",
    );
    let mut st = n.status();
    st.drop_in_paths.push(over.into());
    st.exec_start = vec![vec!["/usr/local/bin/kube-apiserver".into(), "--v=4".into()]];
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(
        &r,
        "dropin",
        State::Critical,
        "kaudit-node cannot plan this node",
    );
    assert_probe(
        &r,
        "dropin",
        State::Critical,
        "overridden by /etc/systemd/system/kube-apiserver.service.d/99-admin.conf",
    );
    // Without a plan, the drift probe reads the unit itself: the admin's
    // ExecStart is now the command line kaudit-node would wrap.
    assert_probe(
        &r,
        "drift",
        State::Warning,
        "the vendor command line (/etc/systemd/system/kube-apiserver.service.d/99-admin.conf:3) changed",
    );
    assert_probe(&r, "flags", State::Ok, "each effective once");

    // A foreign file with our name.
    n.write(DROPIN, "[Service]\nExecStart=\nExecStart=/bin/true\n");
    let r = n.run();
    assert_probe(
        &r,
        "dropin",
        State::Critical,
        "was not written by kaudit-node",
    );
}

#[test]
fn dropin_pending_reload_is_a_warning() {
    let Some(n) = Node::new() else { return };
    let mut st = n.status();
    st.need_daemon_reload = true;
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(&r, "dropin", State::Warning, "since the last daemon-reload");
}

#[test]
fn flags_effective_duplicated_or_stale() {
    let Some(n) = Node::new() else { return };
    let cmdline = |n: &Node, argv: &[String]| {
        n.write(
            &format!("/proc/{PID}/cmdline"),
            &format!("{}\0", argv.join("\0")),
        );
    };
    // An earlier value the apiserver overrides: effective, but duplicated.
    let mut argv = n.plan.argv.clone();
    argv.insert(1, "--audit-log-maxage=7".into());
    cmdline(&n, &argv);
    let r = n.run();
    assert_probe(
        &r,
        "flags",
        State::Warning,
        "--audit-log-maxage is given 2 times (7, 30)",
    );
    assert_probe(
        &r,
        "cis",
        State::Warning,
        "--audit-log-maxage=7 comes first (kube-bench reads it",
    );

    // The running process predates a configuration change: a warning.
    let mut argv = n.plan.argv.clone();
    let i = argv
        .iter()
        .position(|a| a == "--audit-log-maxbackup=10")
        .unwrap();
    argv[i] = "--audit-log-maxbackup=3".into();
    cmdline(&n, &argv);
    let r = n.run();
    assert_probe(
        &r,
        "flags",
        State::Warning,
        "runs with --audit-log-maxbackup=3 where the configuration says 10",
    );
    assert_probe(
        &r,
        "cis",
        State::Warning,
        "CIS 1.2.18: --audit-log-maxbackup=3, want ≥ 10",
    );

    // The log path not effective: critical.
    let argv: Vec<String> = n
        .plan
        .argv
        .iter()
        .filter(|a| !a.starts_with("--audit-log-path"))
        .cloned()
        .collect();
    cmdline(&n, &argv);
    let r = n.run();
    assert_probe(&r, "flags", State::Critical, "--audit-log-path=(absent)");
    assert_probe(
        &r,
        "cis",
        State::Warning,
        "CIS 1.2.16: --audit-log-path is not set",
    );

    // Unreadable (a process that is gone, or hidepid).
    fs::remove_file(n.host(&format!("/proc/{PID}/cmdline"))).unwrap();
    let r = n.run();
    assert_probe(&r, "flags", State::Unknown, "/proc/4242/cmdline");
    assert_probe(&r, "cis", State::Unknown, "/proc/4242/cmdline");
}

#[test]
fn policy_missing_edited_invalid_or_newer_than_the_process() {
    let Some(n) = Node::new() else { return };
    let policy = "/etc/kubernetes/audit-policy.yaml";
    let valid = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";
    n.write(policy, valid);
    let r = n.run();
    assert_probe(
        &r,
        "policy",
        State::Warning,
        "differs from what `kaudit-node apply` installs",
    );

    n.write(
        policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verb: [get]\n",
    );
    let r = n.run();
    assert_probe(
        &r,
        "policy",
        State::Critical,
        "does not validate (line 5: unknown field \"verb\"",
    );

    fs::remove_file(n.host(policy)).unwrap();
    let r = n.run();
    assert_probe(
        &r,
        "policy",
        State::Critical,
        "is missing: the apiserver fails at its next start",
    );

    // Mode and owner as apply would not leave them.
    let Some(n) = Node::new() else { return };
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(n.host(policy), fs::Permissions::from_mode(0o644)).unwrap();
    let r = n.run();
    assert_probe(
        &r,
        "policy",
        State::Warning,
        "has mode and owner 0644 0:0, apply sets 0600 root:root",
    );

    // Changed after the process started (from /proc/PID/stat and btime).
    let Some(n) = Node::new() else { return };
    n.write("/proc/stat", "cpu 1 2 3\nbtime 1000\n");
    let fields: Vec<String> = (0..20)
        .map(|i| if i == 19 { "100".into() } else { "0".into() })
        .collect();
    n.write(
        &format!("/proc/{PID}/stat"),
        &format!("{PID} (kube-apiserver) S {}\n", fields.join(" ")),
    );
    let r = n.run();
    assert_probe(
        &r,
        "policy",
        State::Warning,
        "changed after the apiserver (PID 4242) started",
    );
}

#[test]
fn apiserver_binary_replaced_after_apply() {
    let Some(n) = Node::new() else { return };
    let r = n.run();
    assert_probe(
        &r,
        "apiserver",
        State::Ok,
        "/usr/local/bin/kube-apiserver v1.32.0, as recorded at apply",
    );
    // An upgrade replaces the file (a new inode) after the process started
    // (1000 s after boot at btime 1000, so long before now).
    let bin = "/usr/local/bin/kube-apiserver";
    fs::remove_file(n.host(bin)).unwrap();
    n.write(
        bin,
        "#!/bin/sh\n[ \"$1\" = --version ] && echo \"Kubernetes v1.33.1\"\nexit 0\n",
    );
    fs::set_permissions(
        n.host(bin),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    n.write("/proc/stat", "cpu 1 2 3\nbtime 1000\n");
    let fields: Vec<String> = (0..20)
        .map(|i| if i == 19 { "100".into() } else { "0".into() })
        .collect();
    n.write(
        &format!("/proc/{PID}/stat"),
        &format!("{PID} (kube-apiserver) S {}\n", fields.join(" ")),
    );
    let r = n.run();
    assert_probe(
        &r,
        "apiserver",
        State::Warning,
        "v1.32.0 was recorded, v1.33.1 is on disk now, and PID 4242 started before the change, so it still runs v1.32.0",
    );
    // Restarted since (a start time after the file's mtime): the record is stale.
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    n.write("/proc/stat", &format!("cpu 1 2 3\nbtime {boot}\n"));
    let r = n.run();
    assert_probe(
        &r,
        "apiserver",
        State::Warning,
        "the recorded identity no longer matches: v1.32.0 was recorded (/usr/local/bin/kube-apiserver), v1.33.1 is there now",
    );
}

#[test]
fn log_deleted_replaced_or_not_open() {
    let Some(n) = Node::new() else { return };
    // `rm` of the live log: the process writes to the unlinked inode.
    fs::remove_file(n.host(LOG)).unwrap();
    n.hold_log(Path::new(&format!("{LOG} (deleted)")));
    let r = n.run();
    assert_probe(
        &r,
        "log_open",
        State::Critical,
        "writes to a deleted or replaced file",
    );
    assert_probe(&r, "log_open", State::Critical, "(which no longer exists)");
    assert_probe(&r, "log_age", State::Critical, "does not exist");
    assert_probe(&r, "log_tail", State::Critical, "does not exist");

    // Replaced: the path is another file than the one held.
    let Some(n) = Node::new() else { return };
    let old = n.host("/var/log/kubernetes/audit/old.log");
    fs::rename(n.host(LOG), &old).unwrap();
    n.append_log(&event("c"));
    n.hold_log(&old);
    let r = n.run();
    assert_probe(&r, "log_open", State::Warning, "does not hold");
    n.hold_log(Path::new(LOG));
    let r = n.run();
    assert_probe(&r, "log_open", State::Critical, "deleted or replaced");

    // Not open at all (no event since the start).
    n.hold_log(Path::new("/dev/null"));
    let r = n.run();
    assert_probe(
        &r,
        "log_open",
        State::Warning,
        "does not hold /var/log/kubernetes/audit/audit.log open",
    );
}

#[test]
fn log_age_against_the_thresholds() {
    let Some(n) = Node::new() else { return };
    let mtime = fs::metadata(n.host(LOG)).unwrap().modified().unwrap();
    let at = |secs: u64| n.run_with(Ok(n.status()), mtime + Duration::from_secs(secs));
    assert_probe(
        &at(10),
        "log_age",
        State::Ok,
        "last written 10s ago (warning at 5m, critical at 15m)",
    );
    assert_probe(&at(301), "log_age", State::Warning, "last written 5m1s ago");
    assert_probe(
        &at(901),
        "log_age",
        State::Critical,
        "last written 15m1s ago",
    );
    let r = at(10);
    let m = &probe(&r, "log_age").metrics;
    assert_eq!(m[0].name, "log_age_seconds");
    assert_eq!(
        (m[0].warn.as_deref(), m[0].crit.as_deref()),
        (Some("300"), Some("900"))
    );
    assert_eq!(m[1].name, "log_bytes");
    assert_eq!(m[1].value, fs::metadata(n.host(LOG)).unwrap().len() as f64);
}

#[test]
fn log_age_is_information_for_a_policy_that_records_no_regular_traffic() {
    let Some(n) = Node::new() else { return };
    // Only pods/exec: the control plane's own requests are never recorded.
    n.write(
        "/etc/kubernetes/audit-policy.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"pods/exec\", \"pods/attach\"]\n- level: None\n",
    );
    let mtime = fs::metadata(n.host(LOG)).unwrap().modified().unwrap();
    let r = n.run_with(Ok(n.status()), mtime + Duration::from_secs(3600));
    assert_probe(
        &r,
        "log_age",
        State::Ok,
        "last written 60m ago; the policy records none of the control plane's regular traffic, so a quiet log is normal",
    );
    assert_eq!(probe(&r, "log_age").metrics[0].value, 3600.0);
}

#[test]
fn log_tail_reads_the_last_complete_line() {
    let Some(n) = Node::new() else { return };
    n.append_log("{\"kind\":\"Event\",\"apiVer");
    assert_probe(&n.run(), "log_tail", State::Ok, "audit event");

    n.append_log("sion\":\"v1\"}\nE1122 10:00:00.000000 1 run.go:74] \"command failed\"\n");
    assert_probe(
        &n.run(),
        "log_tail",
        State::Critical,
        "is not a json audit event: \"E1122",
    );

    n.append_log(&format!("{}{}", "\0".repeat(4096), event("after-truncate")));
    assert_probe(
        &n.run(),
        "log_tail",
        State::Critical,
        "starts with 4096 NUL bytes",
    );

    fs::write(n.host(LOG), "").unwrap();
    assert_probe(&n.run(), "log_tail", State::Warning, "is empty");

    // A 64 MiB sparse file with a real last line: only the end is read.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(n.host(LOG))
        .unwrap();
    f.set_len(64 << 20).unwrap();
    n.append_log(&format!("\n{}", event("last")));
    assert_probe(&n.run(), "log_tail", State::Ok, "audit event");
}

#[test]
fn log_tail_legacy_format() {
    let Some(n) = Node::with_config("[log]\nformat = \"legacy\"\n") else {
        return;
    };
    fs::write(n.host(LOG), "2026-11-22T10:00:00.123456Z AUDIT: id=\"5b1d\" stage=\"ResponseComplete\" ip=\"127.0.0.1\" method=\"list\" user=\"system:apiserver\"\n").unwrap();
    assert_probe(&n.run(), "log_tail", State::Ok, "audit event (legacy)");
    n.append_log(&event("json"));
    assert_probe(
        &n.run(),
        "log_tail",
        State::Critical,
        "is not a legacy audit event",
    );
}

#[test]
fn log_fs_thresholds() {
    let st = |avail: u64, inodes: u64| {
        Ok(probes::FsStat {
            total_bytes: 1000,
            avail_bytes: avail,
            total_inodes: 100,
            avail_inodes: inodes,
        })
    };
    let dir = Path::new("/var/log/kubernetes/audit");
    let p = probes::log_fs(dir, &st(500, 50), 10.0, 5.0);
    assert_eq!(p.state, State::Ok, "{}", p.reason);
    let p = probes::log_fs(dir, &st(80, 50), 10.0, 5.0);
    assert_eq!(p.state, State::Warning, "{}", p.reason);
    assert!(
        p.reason.starts_with("8.0% free (80 B of 1000 B)"),
        "{}",
        p.reason
    );
    let p = probes::log_fs(dir, &st(40, 50), 10.0, 5.0);
    assert_eq!(p.state, State::Critical, "{}", p.reason);
    let p = probes::log_fs(dir, &st(500, 3), 10.0, 5.0);
    assert_eq!(p.state, State::Critical, "inodes count too: {}", p.reason);
    assert!(p.reason.contains("3% of inodes free"), "{}", p.reason);
    let free = &p.metrics[0];
    assert_eq!(
        (
            free.name,
            free.warn.as_deref(),
            free.crit.as_deref(),
            free.max
        ),
        ("log_fs_free_bytes", Some("100:"), Some("50:"), Some(1000.0))
    );
    let p = probes::log_fs(dir, &Err("statvfs: EACCES".into()), 10.0, 5.0);
    assert_eq!(p.state, State::Unknown);

    // On a node: the real statvfs of the fixture's filesystem.
    let Some(n) = Node::new() else { return };
    let r = n.run();
    assert!(
        probe(&r, "log_fs")
            .reason
            .contains("on the filesystem of /var/log/kubernetes/audit")
    );
    // A missing log directory: the nearest existing one is measured.
    fs::remove_dir_all(n.host("/var/log/kubernetes/audit")).unwrap();
    assert!(
        probe(&n.run(), "log_fs")
            .reason
            .contains("on the filesystem of /var/log/kubernetes ")
    );
}

#[test]
fn drift_after_a_vendor_change() {
    let Some(n) = Node::new() else { return };
    n.write(
        "/etc/systemd/system/kube-apiserver.service",
        &VENDOR_UNIT.replace("--v=2", "--v=3"),
    );
    let r = n.run();
    assert_probe(
        &r,
        "drift",
        State::Warning,
        "the vendor command line (/etc/systemd/system/kube-apiserver.service:5) changed since `kaudit-node apply`",
    );
    // systemd still runs the drop-in's command line: not a drop-in problem.
    assert_probe(&r, "dropin", State::Ok, "is loaded");
    assert_eq!(r.state(), State::Warning);
    // Reformatting is not drift.
    n.write(
        "/etc/systemd/system/kube-apiserver.service",
        &VENDOR_UNIT.replace(" \\\n  --v=2", " --v=2"),
    );
    assert_probe(&n.run(), "drift", State::Ok, "");
}

#[test]
fn rotation_conflicts_with_the_apiserver() {
    let Some(n) = Node::new() else { return };
    n.write(
        "/etc/logrotate.conf",
        "weekly\nrotate 4\ninclude /etc/logrotate.d\ninclude /etc/logrotate.extra\n/var/log/wtmp {\n monthly\n}\n",
    );
    n.write("/etc/logrotate.d/rsyslog", "/var/log/syslog\n/var/log/messages\n{\n rotate 4\n postrotate\n  /usr/lib/rsyslog/rsyslog-rotate\n endscript\n}\n");
    assert_probe(&n.run(), "rotation", State::Ok, "no logrotate rule matches");

    // A generic rule for every log under /var/log/kubernetes.
    n.write(
        "/etc/logrotate.d/allvarlogs",
        "/var/log/kubernetes/*/*.log {\n  daily\n  copytruncate\n}\n",
    );
    let r = n.run();
    assert_probe(
        &r,
        "rotation",
        State::Critical,
        "/etc/logrotate.d/allvarlogs:1: \"/var/log/kubernetes/*/*.log\" matches the audit log; the apiserver owns rotation",
    );
    fs::remove_file(n.host("/etc/logrotate.d/allvarlogs")).unwrap();

    // One that only matches lumberjack's backups (kubernetes#108551).
    n.write(
        "/etc/logrotate.d/backups",
        "\"/var/log/kubernetes/audit/audit-*.log\" { rotate 1 }\n",
    );
    assert_probe(
        &n.run(),
        "rotation",
        State::Critical,
        "matches its backups (/var/log/kubernetes/audit/audit-<timestamp>.log[.gz])",
    );
    fs::remove_file(n.host("/etc/logrotate.d/backups")).unwrap();

    // Found through an include of another directory; braces expanded.
    n.write(
        "/etc/logrotate.extra/k8s",
        "/var/log/{pods,kubernetes/audit}/*.log {\n}\n",
    );
    assert_probe(
        &n.run(),
        "rotation",
        State::Critical,
        "/etc/logrotate.extra/k8s:1",
    );
    fs::remove_dir_all(n.host("/etc/logrotate.extra")).unwrap();

    // A package's backup copy is ignored, as logrotate ignores it.
    n.write(
        "/etc/logrotate.d/k8s.dpkg-old",
        "/var/log/kubernetes/audit/audit.log {\n}\n",
    );
    assert_probe(&n.run(), "rotation", State::Ok, "");

    // kaudit-node's own snippet left from logrotate mode is a conflict too.
    let s = config::from_str(None, "[log]\nrotation = \"logrotate\"\n").unwrap();
    let owner = plan::Owner {
        user: "root".into(),
        uid: 0,
        group: "root".into(),
        gid: 0,
    };
    n.write(
        "/etc/logrotate.d/kaudit-node",
        &plan::render_logrotate(&s, &owner),
    );
    assert_probe(
        &n.run(),
        "rotation",
        State::Critical,
        "/etc/logrotate.d/kaudit-node:",
    );
}

#[test]
fn rotation_owned_by_logrotate() {
    let Some(n) = Node::with_config("[log]\nrotation = \"logrotate\"\n") else {
        return;
    };
    let r = n.run();
    assert_probe(
        &r,
        "rotation",
        State::Ok,
        "only /etc/logrotate.d/kaudit-node rotates",
    );
    assert_probe(&r, "cis", State::Ok, "");
    // Backups are not lumberjack's in this mode: a rule for them is fine.
    n.write(
        "/etc/logrotate.d/other",
        "/var/log/kubernetes/audit/audit-*.log { }\n",
    );
    assert_probe(&n.run(), "rotation", State::Ok, "");
    n.write(
        "/etc/logrotate.d/other",
        "/var/log/kubernetes/audit/*.log { }\n",
    );
    assert_probe(
        &n.run(),
        "rotation",
        State::Critical,
        "/etc/logrotate.d/other:1: \"/var/log/kubernetes/audit/*.log\" matches the audit log; kaudit-node's snippet already rotates it",
    );
    fs::remove_file(n.host("/etc/logrotate.d/other")).unwrap();
    fs::remove_file(n.host("/etc/logrotate.d/kaudit-node")).unwrap();
    assert_probe(&n.run(), "rotation", State::Warning, "has no rule for");
}

#[test]
fn cis_on_the_effective_flags() {
    let argv =
        |a: &[&str]| -> probes::Argv { Some((1, Ok(a.iter().map(|s| s.to_string()).collect()))) };
    let ok = argv(&[
        "/usr/bin/kube-apiserver",
        "--audit-log-path=/var/log/a.log",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=10",
        "--audit-log-maxsize=100",
    ]);
    assert_eq!(probes::cis(&ok).state, State::Ok);
    let p = probes::cis(&argv(&[
        "x",
        "--audit-log-path",
        "/var/log/a.log",
        "--audit-log-maxage=29",
        "--audit-log-maxsize=99",
    ]));
    assert_eq!(p.state, State::Warning);
    for want in [
        "CIS 1.2.17: --audit-log-maxage=29, want ≥ 30",
        "CIS 1.2.18: --audit-log-maxbackup is not set",
        "CIS 1.2.19: --audit-log-maxsize=99, want ≥ 100",
    ] {
        assert!(p.reason.contains(want), "{want} not in {}", p.reason);
    }
    assert!(
        !p.reason.contains("1.2.16"),
        "the two-word form counts: {}",
        p.reason
    );
    assert_eq!(probes::cis(&None).state, State::Unknown);
}

#[test]
fn worst_state_order_and_exit_codes() {
    assert!(State::Critical > State::Warning);
    assert!(State::Warning > State::Unknown);
    assert!(State::Unknown > State::Ok);
    let codes: Vec<u8> = [State::Ok, State::Warning, State::Critical, State::Unknown]
        .iter()
        .map(|s| s.code())
        .collect();
    assert_eq!(codes, [0, 1, 2, 3]);
}

/// The renderers alone, on a verdict built by hand: pure, no node and no
/// root. The whole text of each format is pinned.
#[test]
fn renderers_of_a_built_verdict() {
    let mut age = check::Metric::new(
        "log_age_seconds",
        12.0,
        "s",
        "Seconds since the log was written.",
    );
    age.warn = Some("300".into());
    age.crit = Some("900".into());
    let mut log_age = check::Probe::new("log_age", State::Warning, "last written 12s ago");
    log_age.metrics.push(age);
    let r = check::Verdict {
        unit: UNIT.into(),
        log: PathBuf::from(LOG),
        probes: vec![
            check::Probe::new("unit", State::Ok, "active (running), main PID 7"),
            log_age,
        ],
    };
    assert_eq!(
        render::nagios(&r),
        "AUDIT WARNING - log_age: last written 12s ago | 'log_age_seconds'=12s;300;900\n\
         [OK] unit: active (running), main PID 7\n\
         [WARNING] log_age: last written 12s ago\n"
    );
    let j = render::json(&r);
    assert_eq!(j["state"], "warning");
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["probes"][1]["metrics"][0]["warn"], "300");
    let prom = render::prometheus(&r);
    assert!(
        prom.contains("kaudit_node_status{unit=\"kube-apiserver.service\"} 1\n"),
        "{prom}"
    );
    assert!(
        prom.contains("kaudit_node_log_age_seconds{unit=\"kube-apiserver.service\"} 12\n"),
        "{prom}"
    );
}

/// The formats a machine reads: locked by parsing them.
#[test]
fn renderers() {
    let Some(n) = Node::new() else { return };
    let r = n.run();
    let text = render::nagios(&r);
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    let (summary, perf) = first.split_once(" | ").unwrap();
    assert!(
        summary.starts_with("AUDIT OK - kube-apiserver.service: 13 probes OK; "),
        "{summary}"
    );
    let perf: Vec<&str> = perf.split(' ').collect();
    assert!(perf[0].starts_with("'restarts'=0"), "{perf:?}");
    let age = perf
        .iter()
        .find(|p| p.starts_with("'log_age_seconds'="))
        .unwrap();
    assert!(age.ends_with("s;300;900"), "{age}");
    let free = perf
        .iter()
        .find(|p| p.starts_with("'log_fs_free_bytes'="))
        .unwrap();
    let fields: Vec<&str> = free.split(';').collect();
    assert_eq!(fields.len(), 5, "{free}");
    assert!(
        fields[1].ends_with(':') && fields[2].ends_with(':') && fields[3] == "0",
        "{free}"
    );
    // One long-output line per probe.
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 13);
    assert!(rest.iter().all(|l| l.starts_with("[OK] ")), "{rest:?}");

    let j = render::json(&r);
    assert_eq!(j["state"], "ok");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["unit"], UNIT);
    assert_eq!(j["probes"].as_array().unwrap().len(), 13);
    assert_eq!(j["probes"][5]["name"], "log_age");
    assert_eq!(j["probes"][5]["metrics"][0]["name"], "log_age_seconds");
    assert!(j["probes"][0]["reason"].is_string());

    let prom = render::prometheus(&r);
    let mut names = Vec::new();
    for line in prom.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            names.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(rest.ends_with(" gauge"), "{line}");
            assert_eq!(rest.split(' ').next().unwrap(), names.last().unwrap());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("kaudit_node_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.ends_with("\"}"), "{line}");
    }
    for want in [
        "kaudit_node_status",
        "kaudit_node_probe_state",
        "kaudit_node_log_age_seconds",
        "kaudit_node_log_bytes",
        "kaudit_node_log_fs_free_bytes",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert_eq!(prom.matches("kaudit_node_probe_state{probe=").count(), 13);
    assert!(prom.contains("kaudit_node_status{unit=\"kube-apiserver.service\"} 0\n"));

    // Not OK: the summary names the worst probes first.
    let mut st = n.status();
    st.active_state = "failed".into();
    st.sub_state = "failed".into();
    st.need_daemon_reload = true;
    let r = n.run_with(Ok(st), SystemTime::now());
    let text = render::nagios(&r);
    assert!(
        text.starts_with("AUDIT CRITICAL - unit: kube-apiserver.service is failed (failed), main PID 4242 (also 1 warning) | "),
        "{text}"
    );
    assert!(
        text.contains("\n[WARNING] dropin: unit files changed on disk"),
        "{text}"
    );
}

#[test]
fn prometheus_file_is_replaced_atomically() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("kaudit-node.prom");
    effects::write_host_file_atomic(&p, b"a 1\n", 0o644).unwrap();
    effects::write_host_file_atomic(&p, b"b 2\n", 0o644).unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), "b 2\n");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    let names: Vec<String> = fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kaudit-node.prom"], "no temporary file left");
    assert!(effects::write_host_file_atomic(&d.path().join("missing/x.prom"), b"", 0o644).is_err());
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaudit-node"));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        // No systemd at this address: the unit probes are UNKNOWN.
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/kaudit-test-bus",
        );
    c
}

/// The binary as a monitoring system runs it: exit codes, stdout, the
/// Prometheus file.
#[test]
fn cli_exit_codes_and_outputs() {
    let d = tempfile::tempdir().unwrap();
    let prom = d.path().join("out.prom");
    // A node with nothing (an empty root, no system bus here): not a node
    // kaudit-node manages, so one UNKNOWN line, as the README says.
    let out = bin()
        .args(["check", "--root"])
        .arg(d.path())
        .arg("--prometheus")
        .arg(&prom)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.starts_with("AUDIT UNKNOWN - unit: kube-apiserver.service: no such unit file"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('[')).count(),
        1,
        "{stdout}"
    );
    let text = fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("kaudit_node_status{unit=\"kube-apiserver.service\"} 3\n"),
        "{text}"
    );

    let out = bin()
        .args(["check", "--format", "json", "--root"])
        .arg(d.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["probes"].as_array().unwrap().len(), 1);

    // Usage errors and a bad configuration are UNKNOWN (3), never clap's 2.
    let out = bin().args(["check", "--warn-age", "5x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit \"x\""));
    let out = bin().args(["-v", "check", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = bin()
        .args(["check", "--warn-age", "20m", "--crit-age", "10m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("AUDIT UNKNOWN - config: --warn-age must not be longer than --crit-age")
    );
    let cfg = d.path().join("bad.toml");
    fs::write(&cfg, "[log]\nmode = \"bogus\"\n").unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("log.mode: invalid value \"bogus\""));
    // A Prometheus file that cannot be written: UNKNOWN, said on stderr.
    let out = bin()
        .args(["check", "--root"])
        .arg(d.path())
        .arg("--prometheus")
        .arg(d.path().join("no/such/dir.prom"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the Prometheus file"));
    // --help documents the exit codes.
    let out = bin().args(["check", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // (Words, not lines: clap wraps to the terminal's width.)
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
            && help.contains("CRITICAL > WARNING > UNKNOWN > OK"),
        "{help}"
    );
}

/// Formats and thresholds of the probes that take no node.
#[test]
fn probe_helpers() {
    assert_eq!(probes::human(Duration::from_secs(45)), "45s");
    assert_eq!(probes::human(Duration::from_secs(300)), "5m");
    assert_eq!(probes::human(Duration::from_secs(5400)), "90m");
    assert_eq!(probes::human(Duration::from_secs(7200)), "2h0m");
    assert_eq!(probes::human(Duration::from_millis(1500)), "1.5s");
    assert!(probes::is_backup_name(
        Path::new(LOG),
        "audit-2026-12-02T05-05-50.092.log"
    ));
    assert!(probes::is_backup_name(
        Path::new(LOG),
        "audit-2026-12-02T05-05-50.092.log.gz"
    ));
    assert!(!probes::is_backup_name(Path::new(LOG), "audit.log.1"));
    assert!(!probes::is_backup_name(
        Path::new(LOG),
        "audit-2026-12-02T05-05-50.log"
    ));
    let p = probes::log_tail(
        Path::new(LOG),
        &Err("Permission denied".into()),
        Format::Json,
    );
    assert_eq!(p.state, State::Unknown);
    let p = probes::rotation(
        Rotation::Apiserver,
        Path::new(LOG),
        Path::new("/x"),
        &Err("EACCES".into()),
        &[],
    );
    assert_eq!(p.state, State::Unknown);
}

/// A logrotate pattern fights the apiserver's rotation when it can match
/// some backup name `audit-<timestamp>.log[.gz]`, or a backup that is there.
#[test]
fn rotation_conflicts_by_pattern() {
    let rule = |pat: &str| {
        Ok(vec![kaudit_node::check::logrotate::Rule {
            file: PathBuf::from("/etc/logrotate.d/other"),
            line: 1,
            patterns: vec![format!("/var/log/kubernetes/audit/{pat}")],
            ours: false,
        }])
    };
    let state = |pat: &str, present: &[String]| {
        probes::rotation(
            Rotation::Apiserver,
            Path::new(LOG),
            Path::new("/etc/logrotate.d/kaudit-node"),
            &rule(pat),
            present,
        )
        .state
    };
    for flagged in [
        "audit-2025*.log",
        "audit-*",
        "*.log",
        "audit-[0-9]*.log",
        "*",
        "audit-????-*.log.gz",
        "{other,audit}-*.log",
    ] {
        assert_eq!(state(flagged, &[]), State::Critical, "{flagged}");
    }
    for fine in [
        "other-*.log",
        "audit.log.1",
        "audit-*.txt",
        "audit-2026-13*.log.1",
    ] {
        assert_eq!(state(fine, &[]), State::Ok, "{fine}");
    }
    // A pattern no backup name matches is still checked against the files there.
    let there = ["/var/log/kubernetes/audit/audit-2026-12-02T05-05-50.092.log".to_string()];
    assert_eq!(
        state("audit-2026-12-02T05-05-50.092.lo[g]", &there),
        State::Critical
    );
    let r = probes::rotation(
        Rotation::Apiserver,
        Path::new(LOG),
        Path::new("/etc/logrotate.d/kaudit-node"),
        &rule("audit-2025*.log"),
        &[],
    );
    assert!(
        r.reason
            .contains("matches its backups (/var/log/kubernetes/audit/audit-<timestamp>.log[.gz])"),
        "{}",
        r.reason
    );
}

/// The shipped units load in a real systemd: `systemd-analyze verify` on a
/// root holding them and a stand-in `/usr/sbin/kaudit-node`.
#[test]
fn units_pass_systemd_analyze_verify() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    let dest = root.join("etc/systemd/system");
    fs::create_dir_all(&dest).unwrap();
    for u in ["kaudit-node-check.service", "kaudit-node-check.timer"] {
        fs::copy(units.join(u), dest.join(u)).unwrap();
    }
    let exe = root.join("usr/sbin/kaudit-node");
    fs::create_dir_all(exe.parent().unwrap()).unwrap();
    fs::write(&exe, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    // Minimal targets stand in for the distribution's default dependencies.
    for t in [
        "sysinit.target",
        "basic.target",
        "shutdown.target",
        "timers.target",
        "time-set.target",
        "time-sync.target",
        "multi-user.target",
    ] {
        let p = root.join("usr/lib/systemd/system").join(t);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("[Unit]\nDescription={t}\n")).unwrap();
    }
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(["kaudit-node-check.service", "kaudit-node-check.timer"])
        .env_remove("SYSTEMD_LOG_LEVEL")
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("systemd-analyze: {e} (install systemd)"),
    };
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let service = fs::read_to_string(units.join("kaudit-node-check.service")).unwrap();
    for line in [
        "Type=oneshot",
        "ProtectSystem=strict",
        "ReadWritePaths=-/var/lib/prometheus/node-exporter",
        "Documentation=man:kaudit-node(8)",
        "ExecStart=/usr/sbin/kaudit-node check --prometheus /var/lib/prometheus/node-exporter/kaudit-node.prom",
    ] {
        assert!(service.lines().any(|l| l == line), "{line} missing");
    }
    let timer = fs::read_to_string(units.join("kaudit-node-check.timer")).unwrap();
    assert!(timer.contains("\nOnCalendar=minutely\nAccuracySec=1s\n"));
}

#[test]
fn a_node_kaudit_node_does_not_manage_is_one_unknown() {
    let Some(n) = Node::new() else { return };
    // A static-pod node: no unit, no drop-in, kubeadm's manifest.
    fs::remove_file(n.host("/etc/systemd/system/kube-apiserver.service")).unwrap();
    fs::remove_file(n.host(DROPIN)).unwrap();
    n.write(
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        "apiVersion: v1\nkind: Pod\n",
    );
    let mut st = n.status();
    st.load_state = "not-found".into();
    st.active_state = "inactive".into();
    st.main_pid = 0;
    st.drop_in_paths.clear();
    // With systemd's "not-found", and without a system bus, where the unit
    // file's absence decides.
    for status in [Ok(st.clone()), Err("no system bus".to_string())] {
        let r = n.run_with(status, SystemTime::now());
        assert_eq!(r.probes.len(), 1, "{r:#?}");
        assert_probe(
            &r,
            "unit",
            State::Unknown,
            "this node runs kube-apiserver as a static pod",
        );
        assert_eq!(r.state(), State::Unknown);
    }

    // The unit vanished from a node kaudit-node manages: every probe runs.
    n.write(DROPIN, "# kaudit-node\n");
    let r = n.run_with(Ok(st), SystemTime::now());
    assert_probe(
        &r,
        "unit",
        State::Critical,
        "systemd does not know kube-apiserver.service",
    );
    assert!(r.probes.len() > 1);
    assert_eq!(r.state(), State::Critical);
}
