//! The executor's control flow (`apply::execute`, for apply's plans and
//! remove's) against a recording fake of
//! the systemd seam: every point a failure can reach (`Reached`: written,
//! reloaded, restarted) and a failing rollback, with the calls made, the
//! files left on disk and the report. The fake scripts systemd's answers;
//! it proves the order of the calls and what is undone, never that systemd
//! behaves so. The real systemd is the proof: tests/system/faults.sh and
//! apply.sh run the same paths in the sandbox.
//!
//! The files are written under a temporary root with their owners, so these
//! tests need root (tests/common: they fail otherwise, unless skipped by
//! `KAUDIT_TEST_SKIP=root`).

mod common;

use std::collections::VecDeque;
use std::fs;
use std::path::Path;
use std::time::Duration;

use kaudit_node::apply::{self, Options, Report};
use kaudit_node::config::{self, Settings};
use kaudit_node::error::{Error, Result};
use kaudit_node::observe;
use kaudit_node::plan::{self, Plan};
use kaudit_node::root::Root;
use kaudit_node::systemd::{JobResult, Systemd, UnitStatus};

const UNIT: &str = "kube-apiserver.service";
const UNIT_PATH: &str = "/etc/systemd/system/kube-apiserver.service";
const DROPIN: &str = "/etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf";
const POLICY: &str = "/etc/kubernetes/audit-policy.yaml";
const OLD_PID: u32 = 100;
const NEW_PID: u32 = 200;

const VENDOR_UNIT: &str = "[Unit]\nDescription=Kubernetes API Server\n\n[Service]\n\
    ExecStart=/usr/local/bin/kube-apiserver --advertise-address=10.240.0.10 --v=2\n\
    Restart=on-failure\n";

/// systemd's answers, scripted, and every call, recorded.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    /// `status` answers in order; the last one repeats.
    statuses: VecDeque<std::result::Result<UnitStatus, String>>,
    /// `reload` answers in order; then `Ok`.
    reloads: VecDeque<std::result::Result<(), String>>,
    /// `restart` answers in order; then `done`.
    restarts: VecDeque<std::result::Result<&'static str, String>>,
}

impl Systemd for Fake {
    fn reload(&mut self) -> Result<()> {
        self.calls.push("reload".into());
        self.reloads
            .pop_front()
            .unwrap_or(Ok(()))
            .map_err(Error::data)
    }
    fn status(&mut self, unit: &str) -> Result<UnitStatus> {
        self.calls.push(format!("status {unit}"));
        let next = if self.statuses.len() > 1 {
            self.statuses.pop_front()
        } else {
            self.statuses.front().cloned()
        };
        next.expect("the test scripts at least one status")
            .map_err(Error::data)
    }
    fn restart(&mut self, unit: &str, _timeout: Duration) -> Result<JobResult> {
        self.calls.push(format!("restart {unit}"));
        self.restarts
            .pop_front()
            .unwrap_or(Ok("done"))
            .map(|r| JobResult(r.to_string()))
            .map_err(Error::data)
    }
    fn reset_failed(&mut self, unit: &str) -> Result<()> {
        self.calls.push(format!("reset-failed {unit}"));
        Ok(())
    }
}

/// A node before its first apply: the vendor unit, accounts, a running
/// apiserver (its /proc entry) on the vendor command line.
struct Node {
    _dir: tempfile::TempDir,
    root: Root,
    settings: Settings,
    plan: Plan,
    observed: observe::Observed,
}

impl Node {
    fn new(toml: &str) -> Option<Node> {
        if !common::require_root("the executor writes files with their owners") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let put = |node: &str, text: &str| {
            let p = root.host_path(Path::new(node));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        put(UNIT_PATH, VENDOR_UNIT);
        put("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        put("/etc/group", "root:x:0:\n");
        put(
            &format!("/proc/{OLD_PID}/cmdline"),
            "/usr/local/bin/kube-apiserver\0--advertise-address=10.240.0.10\0--v=2\0",
        );
        let settings =
            config::from_str(None, &format!("[apiserver]\nversion = \"v1.32.0\"\n{toml}")).unwrap();
        let observed = observe::observe(&root, &settings).unwrap();
        let plan = plan::plan(&settings, &observed).unwrap();
        assert!(!plan.is_converged());
        Some(Node {
            _dir: dir,
            root,
            settings,
            plan,
            observed,
        })
    }

    fn exists(&self, node: &str) -> bool {
        self.root.host_path(Path::new(node)).exists()
    }

    /// systemd's view of the unit before apply: active, no drop-in.
    fn before(&self) -> UnitStatus {
        UnitStatus {
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            fragment_path: UNIT_PATH.into(),
            drop_in_paths: vec![],
            need_daemon_reload: false,
            main_pid: OLD_PID,
            n_restarts: 0,
            exec_start: vec![vec![
                "/usr/local/bin/kube-apiserver".into(),
                "--advertise-address=10.240.0.10".into(),
                "--v=2".into(),
            ]],
        }
    }

    /// After a reload that loaded kaudit-node's drop-in.
    fn reloaded(&self) -> UnitStatus {
        UnitStatus {
            drop_in_paths: vec![DROPIN.into()],
            exec_start: vec![self.plan.argv.clone()],
            ..self.before()
        }
    }

    /// `base` after the unit failed: main PID 0.
    fn failed(&self, base: UnitStatus) -> UnitStatus {
        UnitStatus {
            active_state: "failed".into(),
            sub_state: "failed".into(),
            main_pid: 0,
            ..base
        }
    }

    /// `base` running again under a new main PID.
    fn back(&self, base: UnitStatus) -> UnitStatus {
        UnitStatus {
            main_pid: NEW_PID + 1,
            ..base
        }
    }

    fn apply(&self, sd: &mut Fake, no_restart: bool) -> Report {
        apply::execute(
            &self.root,
            sd,
            &self.settings,
            &self.observed.paths,
            &self.plan,
            Options { no_restart },
            &mut |_| {},
        )
    }
}

fn fake(statuses: Vec<std::result::Result<UnitStatus, String>>) -> Fake {
    Fake {
        statuses: statuses.into(),
        ..Fake::default()
    }
}

fn status_calls(n: usize) -> Vec<String> {
    vec![format!("status {UNIT}"); n]
}

#[test]
fn status_unreadable_changes_nothing() {
    let Some(n) = Node::new("") else { return };
    let mut sd = fake(vec![Err("no system bus".into())]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("observe"));
    assert!(r.error.as_deref().unwrap().contains("no system bus"));
    assert_eq!(sd.calls, status_calls(1));
    assert!(!r.changed && !r.rolled_back);
    assert!(!n.exists(DROPIN) && !n.exists(POLICY));
}

#[test]
fn unit_not_loaded_changes_nothing() {
    let Some(n) = Node::new("") else { return };
    let mut sd = fake(vec![Ok(UnitStatus {
        load_state: "not-found".into(),
        ..n.before()
    })]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("observe"));
    assert_eq!(sd.calls, status_calls(1));
    assert!(!n.exists(DROPIN));
}

#[test]
fn failed_reload_restores_the_files_and_reloads_them() {
    let Some(n) = Node::new("") else { return };
    let mut sd = fake(vec![Ok(n.before())]);
    sd.reloads = vec![Err("Access denied".to_string())].into();
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    assert!(r.rolled_back, "{r:?}");
    assert_eq!(
        r.rollback.as_deref(),
        Some(
            "the previous files are restored and systemd reloaded them; the apiserver was not restarted"
        )
    );
    // The reload that failed, then the rollback's: no restart.
    let mut want = status_calls(1);
    want.extend(["reload".to_string(), "reload".to_string()]);
    assert_eq!(sd.calls, want);
    assert!(!n.exists(DROPIN) && !n.exists(POLICY), "files restored");
}

#[test]
fn drop_in_not_loaded_after_reload_is_rolled_back() {
    let Some(n) = Node::new("") else { return };
    // systemd reloads but does not list the drop-in.
    let mut sd = fake(vec![Ok(n.before()), Ok(n.before())]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("systemd did not load /etc/systemd/system/kube-apiserver.service.d/50-kaudit-node.conf after the reload"),
        "{r:?}"
    );
    assert!(r.rolled_back);
    assert!(!sd.calls.iter().any(|c| c.starts_with("restart")));
    // systemd read the new files: the rollback reloads the old ones.
    assert_eq!(sd.calls.iter().filter(|c| *c == "reload").count(), 2);
    assert!(!n.exists(DROPIN));
}

#[test]
fn a_later_drop_in_that_overrides_exec_start_is_refused_before_the_restart() {
    let Some(n) = Node::new("") else { return };
    let late = "/etc/systemd/system/kube-apiserver.service.d/99-override.conf";
    let overridden = UnitStatus {
        drop_in_paths: vec![DROPIN.into(), late.into()],
        exec_start: vec![vec!["/usr/local/bin/kube-apiserver".into()]],
        ..n.before()
    };
    let mut sd = fake(vec![Ok(n.before()), Ok(overridden)]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    let e = r.error.as_deref().unwrap();
    assert!(e.contains("not restarting") && e.contains(late), "{e}");
    assert!(r.rolled_back);
    assert!(!sd.calls.iter().any(|c| c.starts_with("restart")));
    assert_eq!(sd.calls.iter().filter(|c| *c == "reload").count(), 2);
}

#[test]
fn no_restart_reloads_and_stops() {
    let Some(n) = Node::new("") else { return };
    let mut sd = fake(vec![Ok(n.before()), Ok(n.reloaded())]);
    let r = n.apply(&mut sd, true);
    assert_eq!(r.failed_step, None, "{r:?}");
    assert!(r.changed);
    assert_eq!(r.actions, ["daemon-reload"]);
    assert!(r.warnings.iter().any(|w| w.starts_with("--no-restart")));
    let mut want = status_calls(1);
    want.extend(["reload".to_string(), format!("status {UNIT}")]);
    assert_eq!(sd.calls, want);
    assert!(n.exists(DROPIN) && n.exists(POLICY));
}

#[test]
fn an_inactive_unit_is_not_started() {
    let Some(n) = Node::new("") else { return };
    let inactive = UnitStatus {
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        main_pid: 0,
        ..n.before()
    };
    let mut sd = fake(vec![
        Ok(inactive.clone()),
        Ok(UnitStatus {
            drop_in_paths: vec![DROPIN.into()],
            exec_start: vec![n.plan.argv.clone()],
            ..inactive
        }),
    ]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step, None, "{r:?}");
    assert!(r.warnings.iter().any(|w| w.contains("it was not started")));
    assert!(!sd.calls.iter().any(|c| c.starts_with("restart")));
    assert!(n.exists(DROPIN));
}

#[test]
fn a_failed_restart_job_restarts_the_previous_configuration() {
    let Some(n) = Node::new("") else { return };
    let back = n.back(n.before());
    let mut sd = fake(vec![Ok(n.before()), Ok(n.reloaded()), Ok(back)]);
    sd.restarts = vec![Ok("failed")].into();
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("restart"));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("ended with \"failed\"")
    );
    assert!(r.rolled_back, "{r:?}");
    assert_eq!(r.new_main_pid, Some(NEW_PID + 1));
    // Restart, then the rollback: reload, reset-failed, restart, and the
    // settle's two looks at the unit.
    let tail: Vec<&str> = sd.calls.iter().map(String::as_str).skip(3).collect();
    assert_eq!(
        tail,
        [
            "restart kube-apiserver.service",
            "reload",
            "reset-failed kube-apiserver.service",
            "restart kube-apiserver.service",
            "status kube-apiserver.service",
            "status kube-apiserver.service",
        ]
    );
    assert!(!n.exists(DROPIN) && !n.exists(POLICY));
}

#[test]
fn an_apiserver_that_does_not_come_back_is_restarted_on_the_old_files() {
    let Some(n) = Node::new("") else { return };
    // After the restart: the unit failed (main PID 0).
    let failed = n.failed(n.reloaded());
    let back = n.back(n.before());
    let mut sd = fake(vec![Ok(n.before()), Ok(n.reloaded()), Ok(failed), Ok(back)]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("verify"));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("is failed (failed) after the restart, main PID 0"),
        "{r:?}"
    );
    assert!(r.rolled_back);
    assert!(
        r.rollback
            .as_deref()
            .unwrap()
            .contains("is active on them again (main PID 201)")
    );
    assert!(!n.exists(DROPIN));
}

#[test]
fn a_rollback_that_cannot_restart_says_so() {
    let Some(n) = Node::new("") else { return };
    let failed = n.failed(n.reloaded());
    let mut sd = fake(vec![Ok(n.before()), Ok(n.reloaded()), Ok(failed)]);
    sd.restarts = vec![Ok("done"), Ok("failed")].into();
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("verify"));
    assert!(!r.rolled_back);
    assert!(
        r.warnings.iter().any(|w| w.starts_with(
            "ROLLBACK FAILED: kube-apiserver.service is failed (failed) after the rollback restart"
        )),
        "{r:?}"
    );
    // The files are put back all the same: the next start uses them.
    assert!(!n.exists(DROPIN) && !n.exists(POLICY));
}

#[test]
fn a_rollback_whose_reload_fails_says_so() {
    let Some(n) = Node::new("") else { return };
    let mut sd = fake(vec![Ok(n.before()), Ok(n.before())]);
    sd.reloads = vec![Ok(()), Err("Connection reset".to_string())].into();
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    assert!(!r.rolled_back);
    assert!(
        r.warnings
            .iter()
            .any(|w| w == "ROLLBACK FAILED: Connection reset"),
        "{r:?}"
    );
}

#[test]
fn rollback_off_leaves_the_new_configuration() {
    let Some(n) = Node::new("[apply]\nrollback = false\n") else {
        return;
    };
    let mut sd = fake(vec![Ok(n.before()), Ok(n.before())]);
    let r = n.apply(&mut sd, false);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    assert!(!r.rolled_back);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("apply.rollback = false"))
    );
    assert_eq!(sd.calls.iter().filter(|c| *c == "reload").count(), 1);
    assert!(n.exists(DROPIN), "left in place");
}

#[test]
fn a_converged_node_makes_one_status_call() {
    let Some(n) = Node::new("") else { return };
    kaudit_node::effects::write_plan(&n.root, &n.plan).unwrap();
    let observed = observe::observe(&n.root, &n.settings).unwrap();
    let plan = plan::plan(&n.settings, &observed).unwrap();
    assert!(plan.is_converged());
    // The running apiserver has the flags.
    fs::write(
        n.root
            .host_path(Path::new(&format!("/proc/{OLD_PID}/cmdline"))),
        format!("{}\0", plan.argv.join("\0")),
    )
    .unwrap();
    let mut sd = fake(vec![Ok(n.reloaded())]);
    let r = apply::execute(
        &n.root,
        &mut sd,
        &n.settings,
        &observed.paths,
        &plan,
        Options { no_restart: false },
        &mut |_| {},
    );
    assert_eq!(r.failed_step, None, "{r:?}");
    assert!(!r.changed && r.actions.is_empty(), "{r:?}");
    assert_eq!(sd.calls, status_calls(1));
}

/// After a successful apply: the node `remove` starts from.
fn applied(n: &Node) -> (observe::ForRemoval, Plan) {
    kaudit_node::effects::write_plan(&n.root, &n.plan).unwrap();
    let o = observe::observe_removal(&n.root, &n.settings).unwrap();
    let p = plan::plan_remove(&n.settings, &o, false);
    (o, p)
}

fn remove(n: &Node, o: &observe::ForRemoval, p: &Plan, sd: &mut Fake) -> Report {
    apply::execute(
        &n.root,
        sd,
        &n.settings,
        &o.paths,
        p,
        Options { no_restart: false },
        &mut |_| {},
    )
}

#[test]
fn remove_plans_the_drop_in_first_then_reload_and_restart() {
    let Some(n) = Node::new("") else { return };
    let (_, p) = applied(&n);
    let paths: Vec<&str> = p
        .removals
        .iter()
        .map(|r| r.path.to_str().unwrap())
        .collect();
    assert_eq!(paths, [DROPIN, POLICY]);
    assert_eq!(
        p.actions.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["daemon-reload", "restart kube-apiserver.service"]
    );
    let kept = plan::plan_remove(
        &n.settings,
        &observe::observe_removal(&n.root, &n.settings).unwrap(),
        true,
    );
    assert_eq!(kept.removals.len(), 1, "--keep-policy");
}

#[test]
fn remove_gives_the_vendor_command_line_back() {
    let Some(n) = Node::new("") else { return };
    let (o, p) = applied(&n);
    let vendor = UnitStatus {
        main_pid: NEW_PID,
        ..n.before()
    };
    let mut sd = fake(vec![Ok(n.reloaded()), Ok(vendor)]);
    let r = remove(&n, &o, &p, &mut sd);
    assert_eq!(r.failed_step, None, "{r:?}");
    assert!(r.changed);
    assert_eq!(
        r.files,
        [format!("removed {DROPIN}"), format!("removed {POLICY}")]
    );
    assert_eq!(
        r.actions,
        ["daemon-reload", "restart kube-apiserver.service"]
    );
    assert_eq!(r.new_main_pid, Some(NEW_PID));
    assert!(!n.exists(DROPIN) && !n.exists(POLICY));
}

#[test]
fn remove_onto_a_failing_vendor_command_line_puts_the_files_back() {
    let Some(n) = Node::new("") else { return };
    let (o, p) = applied(&n);
    let failed = n.failed(n.before());
    let back = n.back(n.reloaded());
    // status: before; after the reload; the settle after the restart (failed);
    // then the rollback's settle.
    let mut sd = fake(vec![Ok(n.reloaded()), Ok(n.before()), Ok(failed), Ok(back)]);
    let r = remove(&n, &o, &p, &mut sd);
    assert_eq!(r.failed_step.as_deref(), Some("restart"), "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("is failed (failed) on the vendor command line"),
        "{r:?}"
    );
    assert_eq!(r.exit_code().code(), 70);
    assert!(r.rolled_back, "{r:?}");
    assert!(
        n.exists(DROPIN) && n.exists(POLICY),
        "kaudit-node's files put back"
    );
}

#[test]
fn remove_refuses_when_systemd_still_lists_the_drop_in() {
    let Some(n) = Node::new("") else { return };
    let (o, p) = applied(&n);
    let mut sd = fake(vec![Ok(n.reloaded())]);
    let r = remove(&n, &o, &p, &mut sd);
    assert_eq!(r.failed_step.as_deref(), Some("reload"));
    assert!(r.error.as_deref().unwrap().contains("systemd still lists"));
    assert!(r.rolled_back);
    assert!(!sd.calls.iter().any(|c| c.starts_with("restart")));
    assert!(n.exists(DROPIN));
}

#[test]
fn remove_on_a_node_without_the_drop_in_does_nothing() {
    let Some(n) = Node::new("") else { return };
    let o = observe::observe_removal(&n.root, &n.settings).unwrap();
    let p = plan::plan_remove(&n.settings, &o, false);
    assert!(p.is_converged());
    let mut sd = fake(vec![Ok(n.before())]);
    let r = remove(&n, &o, &p, &mut sd);
    assert_eq!(r.failed_step, None);
    assert!(!r.changed);
    assert_eq!(sd.calls, status_calls(1));
}
