//! The one executor: carries out a [`Plan`] (`apply`'s or `remove`'s) on a
//! live node, proves it took, and rolls back on failure so the apiserver is
//! never left down.
//!
//! The order: lock → observe and plan → (converged? stop) →
//! keep the previous state → write and remove files → daemon-reload →
//! check what systemd loaded (our drop-in and its `ExecStart`, or for a
//! removal, no drop-in) → restart and wait for the job → verify (for
//! apply: new main PID, effective flags in /proc/PID/cmdline, readiness,
//! the log held open, a new audit event; for a removal: the vendor command
//! line stays up) → on failure, restore, reload, restart, check active.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Settings;
use crate::dropin;
use crate::effects;
use crate::error::{Error, ExitCode, Result};
use crate::observe::PathState;
use crate::plan::{Action, Change, Kind, Plan, Purpose};
use crate::prove::{self, Before, Proof};
use crate::root::Root;
use crate::systemd::{Systemd, UnitStatus};
use crate::verify;

/// What apply did, for the text and JSON reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub unit: String,
    pub changed: bool,
    pub actions: Vec<String>,
    pub files: Vec<String>,
    pub old_main_pid: Option<u32>,
    pub new_main_pid: Option<u32>,
    /// Milliseconds from the end of the restart job to the first new event.
    pub first_event_ms: Option<u64>,
    /// Milliseconds writing the files took (all fsynced).
    pub write_ms: Option<u64>,
    /// Milliseconds systemd's daemon-reload took.
    pub reload_ms: Option<u64>,
    /// Milliseconds the restart job took (RestartUnit to JobRemoved).
    pub restart_job_ms: Option<u64>,
    /// Milliseconds between the first event's write (the log's mtime) and
    /// kaudit-node seeing it.
    pub detect_lag_ms: Option<u64>,
    /// Milliseconds from the end of the restart job until `/readyz`
    /// answered that the new apiserver serves.
    pub ready_ms: Option<u64>,
    /// How the log was shown to work: `event` (a new event), `probe` (the
    /// event of kaudit-node's request) or `process` (the process evidence
    /// alone, for a policy that records nothing kaudit-node can send).
    pub proof: Option<Proof>,
    pub warnings: Vec<String>,
    /// Why something was done (vendor flags replaced, runtime state).
    pub notes: Vec<String>,
    /// The step that failed, and why.
    pub failed_step: Option<String>,
    pub error: Option<String>,
    pub rolled_back: bool,
    /// What the rollback undid, in words (set with `rolled_back`).
    pub rollback: Option<String>,
    /// The exit code of the failure (sysexits), when there is one.
    #[serde(skip)]
    pub code: Option<ExitCode>,
}

impl Report {
    /// Records the step that failed and why.
    fn fail(&mut self, step: &str, e: Error) {
        self.failed_step = Some(step.to_string());
        self.error = Some(e.message);
        self.code = Some(e.code);
    }

    /// The process exit code without --detailed-exitcodes: 0, or the
    /// failure's sysexits code (65 bad data, 74 I/O, 70 failed and rolled back…).
    pub fn exit_code(&self) -> ExitCode {
        match (&self.error, self.code) {
            (None, _) => ExitCode::Ok,
            (Some(_), Some(c)) => c,
            (Some(_), None) => ExitCode::Software,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Write files and reload, but do not restart (image builds).
    pub no_restart: bool,
}

/// Sink for progress lines (stderr in the CLI).
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// A failure after the node was touched: the step and the reason.
struct StepError {
    step: &'static str,
    error: Error,
}

fn step<T>(step: &'static str, r: Result<T>) -> std::result::Result<T, StepError> {
    r.map_err(|error| StepError { step, error })
}

/// The runtime facts that decide whether a node whose files are right
/// still needs a reload or a restart (for example after a crash between
/// writing the files and restarting).
#[derive(Debug, Default)]
struct Runtime {
    needs_reload: bool,
    needs_restart: bool,
    reasons: Vec<String>,
}

fn mtime(root: &Root, node: &Path) -> Option<SystemTime> {
    std::fs::metadata(root.host_path(node))
        .and_then(|m| m.modified())
        .ok()
}

fn runtime_state(root: &Root, s: &Settings, p: &Plan, st: &UnitStatus) -> Runtime {
    let mut r = Runtime::default();
    let ours = dropin::path(&s.unit);
    let systemd = dropin::loaded(&ours, st, &p.argv);
    if !systemd.loaded || systemd.stale {
        r.needs_reload = true;
        r.reasons.push("systemd has not loaded the drop-in".into());
    } else if !systemd.exec_start_ours {
        r.needs_reload = true;
        r.reasons
            .push("systemd's ExecStart differs from the drop-in".into());
    }
    if !st.is_active() || st.main_pid == 0 {
        // A stopped apiserver is left stopped: see apply().
        return r;
    }
    match verify::read_cmdline(root, st.main_pid) {
        Ok(argv) => {
            let bad: Vec<String> = verify::check_flags(&argv, &p.flags)
                .into_iter()
                .filter(|f| !f.is_effective())
                .map(|f| format!("--{}", f.name))
                .collect();
            if !bad.is_empty() {
                r.needs_restart = true;
                r.reasons.push(format!(
                    "the running apiserver (PID {}) lacks {}",
                    st.main_pid,
                    bad.join(", ")
                ));
            }
        }
        Err(e) => r
            .reasons
            .push(format!("cannot read /proc/{}/cmdline: {e}", st.main_pid)),
    }
    if let Some(started) = verify::process_start(root, st.main_pid) {
        for f in [&ours, &s.policy_path] {
            if let Some(m) = mtime(root, f)
                && started + Duration::from_secs(1) < m
            {
                r.needs_restart = true;
                r.reasons.push(format!(
                    "{} changed after the apiserver (PID {}) started",
                    f.display(),
                    st.main_pid
                ));
            }
        }
    }
    r
}

/// The previous state of every path a plan writes, to restore on failure.
struct Backup {
    files: Vec<(PathBuf, PathState)>,
}

impl Backup {
    /// The files the plan replaces or removes, as observed before it.
    fn take(before: &BTreeMap<PathBuf, PathState>, p: &Plan) -> Backup {
        let state = |path: &Path| before.get(path).cloned().unwrap_or(PathState::Missing);
        let mut files = Vec::new();
        for e in p.changes().filter(|e| e.kind == Kind::File) {
            files.push((e.path.clone(), state(&e.path)));
        }
        for r in &p.removals {
            files.push((r.path.clone(), state(&r.path)));
        }
        Backup { files }
    }

    /// Puts every file back as it was, the last written first (the
    /// drop-in, which refers to the others). A file already as it was is
    /// not touched: after a failed write, the file that failed is still
    /// the old one, and rewriting it could fail again (a full filesystem).
    /// One file that cannot be restored does not stop the others; the
    /// error names every file that failed.
    fn restore(&self, root: &Root) -> Result<()> {
        let mut failed = Vec::new();
        for (path, state) in self.files.iter().rev() {
            if PathState::read(root, path, true).is_ok_and(|now| now == *state) {
                continue;
            }
            let r = match state {
                PathState::Missing => effects::remove_file(root, path),
                PathState::File {
                    content,
                    mode,
                    uid,
                    gid,
                } => effects::write_atomic(root, path, content, *mode, *uid, *gid),
                PathState::Dir { .. } | PathState::Other { .. } => Ok(()),
            };
            if let Err(e) = r {
                failed.push(e);
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => Err(Error::new(
                failed[0].code,
                failed
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

fn require_loaded(unit: &str, st: &UnitStatus) -> Result<()> {
    match st.load_state.as_str() {
        "loaded" => Ok(()),
        "masked" => Err(Error::data(format!(
            "{unit} is masked; unmask it before applying"
        ))),
        "not-found" => Err(Error::no_input(format!("systemd does not know {unit}"))),
        other => Err(Error::data(format!(
            "{unit}: systemd reports LoadState={other}"
        ))),
    }
}

/// How far apply got before it failed: what a rollback must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    /// Files were (partly) written; systemd has not read them.
    Written,
    /// systemd was (asked to be) reloaded: it must read the old files again.
    Reloaded,
    /// A restart was queued: the old configuration must be started again.
    Restarted,
}

/// What a verified restart measured.
struct Restarted {
    pid: u32,
    job: Duration,
    verified: prove::Verified,
}

/// Restarts and proves audit logging works ([`prove::verify_restart`]):
/// new main PID, effective flags, readiness, the log held open, and an
/// event (the apiserver's own, or the policy's probe).
fn restart_and_verify(
    root: &Root,
    sd: &mut dyn Systemd,
    s: &Settings,
    p: &Plan,
    old_pid: u32,
    before: &Before,
    progress: Progress,
) -> std::result::Result<Restarted, StepError> {
    let deadline = Instant::now() + s.apply.verify_timeout.as_std();
    let job_start = Instant::now();
    progress(&format!("restarting {}", s.unit));
    let job = step(
        "restart",
        sd.restart(&s.unit, deadline.saturating_duration_since(Instant::now())),
    )?;
    let job_done = Instant::now();
    if !job.is_done() {
        return Err(StepError {
            step: "restart",
            error: Error::new(
                ExitCode::Software,
                format!(
                    "the restart job of {} ended with \"{}\"; see `journalctl -u {}`",
                    s.unit, job.0, s.unit
                ),
            ),
        });
    }
    let mark = verify::log_mark(root, &s.log.path);
    let st = step("verify", sd.status(&s.unit))?;
    if !st.is_active() || st.main_pid == 0 || st.main_pid == old_pid {
        return Err(StepError {
            step: "verify",
            error: Error::new(
                ExitCode::Software,
                format!(
                    "{} is {} ({}) after the restart, main PID {}; see `journalctl -u {}`",
                    s.unit, st.active_state, st.sub_state, st.main_pid, s.unit
                ),
            ),
        });
    }
    let pid = st.main_pid;
    let v = prove::verify_restart(root, s, p, pid, mark, job_done, before, progress).map_err(
        |mut error| {
            if let Ok(st) = sd.status(&s.unit)
                && st.main_pid != pid
            {
                error.message.push_str(&format!(
                    "; {} is {} ({})",
                    s.unit, st.active_state, st.sub_state
                ));
            }
            StepError {
                step: "verify",
                error,
            }
        },
    )?;
    Ok(Restarted {
        pid,
        job: job_done - job_start,
        verified: v,
    })
}

/// Carries out `plan` on the node. The caller holds the lock.
pub fn execute(
    root: &Root,
    sd: &mut dyn Systemd,
    s: &Settings,
    before: &BTreeMap<PathBuf, PathState>,
    p: &Plan,
    opts: Options,
    progress: Progress,
) -> Report {
    let mut rep = Report {
        unit: s.unit.clone(),
        warnings: p.warnings.clone(),
        ..Report::default()
    };
    // Removing needs no loaded unit: kaudit-node's files go all the same.
    let st = match sd.status(&s.unit).and_then(|st| match p.purpose {
        Purpose::Apply => require_loaded(&s.unit, &st).map(|_| st),
        Purpose::Remove => Ok(st),
    }) {
        Ok(st) => st,
        Err(e) => {
            rep.fail("observe", e);
            return rep;
        }
    };
    rep.old_main_pid = (st.main_pid != 0).then_some(st.main_pid);
    let rt = match p.purpose {
        Purpose::Apply => runtime_state(root, s, p, &st),
        Purpose::Remove => Runtime::default(),
    };
    let files_changed = !p.is_converged();
    let need_reload = p.actions.contains(&Action::DaemonReload) || rt.needs_reload;
    let need_restart = p
        .actions
        .iter()
        .any(|a| matches!(a, Action::Restart { .. }))
        || rt.needs_restart
        || rt.needs_reload;
    if !files_changed && !need_reload && !need_restart {
        return rep;
    }
    if files_changed {
        rep.notes.extend(p.notes.iter().cloned());
    } else {
        // The files are right but the running apiserver is not: say why.
        rep.notes.extend(rt.reasons.iter().cloned());
    }

    // Keep the previous state, then write. Only writes need room: a plan
    // that only removes (remove's) goes ahead on a full filesystem.
    if p.changes().next().is_some() {
        let log_dir = s.log.path.parent().unwrap_or(Path::new("/"));
        if let Err(e) = effects::preflight_space(root, p, log_dir) {
            rep.fail("preflight", e);
            return rep;
        }
    }
    let backup = Backup::take(before, p);
    crate::failpoint::hit("after-backup");
    if files_changed {
        progress(&format!(
            "writing {} file(s)",
            p.changes().count() + p.removals.len()
        ));
        let t = Instant::now();
        let written = effects::write_plan(root, p);
        rep.write_ms = Some(t.elapsed().as_millis() as u64);
        match written {
            Ok(warnings) => rep.warnings.extend(warnings),
            Err(e) => {
                rep.fail("write", e);
                rollback(
                    root,
                    sd,
                    s,
                    &backup,
                    &st,
                    Reached::Written,
                    None,
                    &mut rep,
                    progress,
                );
                return rep;
            }
        }
        rep.changed = true;
        rep.files = files_done(p);
    }

    let mut reached = Reached::Written;
    let mut readiness: Option<Before> = None;
    let result = (|| -> std::result::Result<(), StepError> {
        if need_reload {
            progress("reloading systemd");
            reached = Reached::Reloaded;
            let t = Instant::now();
            step("reload", sd.reload())?;
            rep.reload_ms = Some(t.elapsed().as_millis() as u64);
            crate::failpoint::hit("after-reload");
            rep.actions.push("daemon-reload".into());
            rep.changed = true;
            let st2 = step("reload", sd.status(&s.unit))?;
            systemd_took_it(s, p, &st2)?;
        }
        if opts.no_restart {
            rep.warnings.push("--no-restart: the files are written and systemd reloaded; restart the unit to load them".into());
            return Ok(());
        }
        if !need_restart {
            return Ok(());
        }
        if !st.is_active() {
            rep.warnings.push(format!(
                "{} is {}: it was not started; start it to load the new configuration",
                s.unit, st.active_state
            ));
            return Ok(());
        }
        if p.purpose == Purpose::Remove {
            reached = Reached::Restarted;
            let pid = restart_on_vendor_command_line(sd, s, progress)?;
            rep.actions.push(format!("restart {}", s.unit));
            rep.changed = true;
            rep.new_main_pid = Some(pid);
            return Ok(());
        }
        let before = Before::probe(root, st.main_pid);
        readiness = Some(before.clone());
        reached = Reached::Restarted;
        let r = restart_and_verify(root, sd, s, p, st.main_pid, &before, progress)?;
        let v = r.verified;
        rep.ready_ms = v.ready.map(|d| d.as_millis() as u64);
        rep.proof = v.proof;
        rep.warnings.extend(v.warnings);
        rep.actions.push(format!("restart {}", s.unit));
        rep.changed = true;
        rep.new_main_pid = Some(r.pid);
        rep.first_event_ms = v.first_event.map(|d| d.as_millis() as u64);
        rep.restart_job_ms = Some(r.job.as_millis() as u64);
        rep.detect_lag_ms = v.detect_lag.map(|d| d.as_millis() as u64);
        Ok(())
    })();

    if let Err(StepError { step, error }) = result {
        rep.fail(step, error);
        if files_changed || reached > Reached::Written {
            rollback(
                root,
                sd,
                s,
                &backup,
                &st,
                reached,
                readiness.as_ref(),
                &mut rep,
                progress,
            );
        }
    }
    rep
}

/// What the writes did, in words, for the report.
fn files_done(p: &Plan) -> Vec<String> {
    p.changes()
        .map(|e| {
            let what = match (&e.kind, &e.change) {
                (Kind::Directory, Change::Create) => "created directory",
                (Kind::Log, Change::Create) => "created",
                (_, Change::Metadata) => "set mode and owner of",
                _ => "wrote",
            };
            format!("{what} {}", e.path.display())
        })
        .chain(
            p.removals
                .iter()
                .map(|r| format!("removed {}", r.path.display())),
        )
        .collect()
}

/// After the reload: systemd must have loaded what the plan wrote (our
/// drop-in, its `ExecStart` the effective one), or for a removal, no
/// drop-in of ours any more. Otherwise nothing is restarted.
fn systemd_took_it(s: &Settings, p: &Plan, st: &UnitStatus) -> std::result::Result<(), StepError> {
    let path = dropin::path(&s.unit);
    let systemd = dropin::loaded(&path, st, &p.argv);
    let refuse = |error: Error| {
        Err(StepError {
            step: "reload",
            error,
        })
    };
    match p.purpose {
        Purpose::Remove if systemd.loaded => refuse(Error::new(
            ExitCode::Software,
            format!("systemd still lists {} after the reload", path.display()),
        )),
        Purpose::Apply if !systemd.loaded => refuse(Error::data(format!(
            "systemd did not load {} after the reload (DropInPaths: {})",
            path.display(),
            st.drop_in_paths.join(", ")
        ))),
        Purpose::Apply if !systemd.exec_start_ours => refuse(Error::data(format!(
            "systemd's effective ExecStart of {} is not kaudit-node's; a drop-in loaded after it overrides it ({}); not restarting",
            s.unit,
            systemd.later_list("none found by name")
        ))),
        Purpose::Apply | Purpose::Remove => Ok(()),
    }
}

/// The unit's state once it has stayed active with the same main PID for a
/// second (a `Type=simple` service is "active" as soon as it forks).
fn settle(sd: &mut dyn Systemd, unit: &str) -> Result<UnitStatus> {
    let first = sd.status(unit)?;
    if !first.is_active() {
        return Ok(first);
    }
    std::thread::sleep(Duration::from_secs(1));
    let second = sd.status(unit)?;
    Ok(if second.main_pid == first.main_pid {
        second
    } else {
        UnitStatus {
            active_state: "restarting".into(),
            ..second
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn rollback(
    root: &Root,
    sd: &mut dyn Systemd,
    s: &Settings,
    backup: &Backup,
    before: &UnitStatus,
    reached: Reached,
    readiness: Option<&Before>,
    rep: &mut Report,
    progress: Progress,
) {
    if !s.apply.rollback {
        rep.warnings
            .push("apply.rollback = false: the new configuration was left in place".into());
        return;
    }
    progress("rolling back to the previous configuration");
    // A file that cannot be put back does not stop the rest: the apiserver
    // must come back up in any case.
    let restored = backup.restore(root);
    let r = (|| -> Result<()> {
        // Undo only what was done: after a failed write systemd never read
        // the new files and the apiserver was never touched.
        if reached >= Reached::Reloaded {
            sd.reload()?;
        }
        if reached == Reached::Restarted && before.is_active() {
            sd.reset_failed(&s.unit)?;
            // The previous configuration gets as long as systemd's default
            // start timeout: it is what the node ran before.
            let job = sd.restart(
                &s.unit,
                s.apply.verify_timeout.as_std().max(Duration::from_secs(90)),
            )?;
            let st = settle(sd, &s.unit)?;
            if !job.is_done() || !st.is_active() {
                return Err(Error::new(
                    ExitCode::Software,
                    format!(
                        "{} is {} ({}) after the rollback restart; see `journalctl -u {}`",
                        s.unit, st.active_state, st.sub_state, s.unit
                    ),
                ));
            }
            rep.new_main_pid = Some(st.main_pid);
            // The previous configuration served before: wait until it does
            // again, so that apply returns on a serving node.
            if let Some(Before {
                endpoint: Ok(ep),
                ready: true,
                ..
            }) = readiness
            {
                progress(&format!(
                    "waiting for {} to serve again ({})",
                    s.unit,
                    ep.url()
                ));
                let deadline = Instant::now() + s.apply.verify_timeout.as_std();
                if let Err(last) = prove::wait_ready(ep, deadline, &mut || true, progress) {
                    rep.warnings.push(format!(
                        "{} is active again but {} did not answer ready within {} after the rollback ({last})",
                        s.unit,
                        ep.url(),
                        s.apply.verify_timeout.text
                    ));
                }
            }
        }
        Ok(())
    })();
    match (restored, r) {
        (Err(e), Ok(())) => rep.warnings.push(format!(
            "ROLLBACK INCOMPLETE: {}{}",
            e.message,
            match rep.new_main_pid {
                Some(pid) if reached == Reached::Restarted => {
                    format!("; {} is active again (main PID {pid})", s.unit)
                }
                _ => String::new(),
            }
        )),
        (restored, Err(e)) => rep.warnings.push(format!(
            "ROLLBACK FAILED: {}{}",
            e.message,
            restored
                .err()
                .map(|r| format!("; and {}", r.message))
                .unwrap_or_default()
        )),
        (Ok(()), Ok(())) => {
            rep.rolled_back = true;
            rep.actions.push("rollback".into());
            rep.rollback = Some(match reached {
                Reached::Written => "the previous files are restored; systemd had not read the new ones and the apiserver was not touched".into(),
                Reached::Reloaded => "the previous files are restored and systemd reloaded them; the apiserver was not restarted".into(),
                Reached::Restarted => format!(
                    "the previous files are restored, systemd reloaded them and {} is active on them again (main PID {})",
                    s.unit,
                    rep.new_main_pid.unwrap_or(0)
                ),
            });
        }
    }
}

/// A removal's restart: the unit on the vendor command line must come up
/// and stay up (a second with the same main PID). Its new main PID.
fn restart_on_vendor_command_line(
    sd: &mut dyn Systemd,
    s: &Settings,
    progress: Progress,
) -> std::result::Result<u32, StepError> {
    progress(&format!("restarting {} on the vendor command line", s.unit));
    let job = step(
        "restart",
        sd.restart(&s.unit, s.apply.verify_timeout.as_std()),
    )?;
    let st = step("restart", settle(sd, &s.unit))?;
    if !job.is_done() || !st.is_active() {
        return Err(StepError {
            step: "restart",
            error: Error::new(
                ExitCode::Software,
                format!(
                    "{} is {} ({}) on the vendor command line; see `journalctl -u {}`",
                    s.unit, st.active_state, st.sub_state, s.unit
                ),
            ),
        });
    }
    Ok(st.main_pid)
}

/// Puppet-style detailed exit code: 0 no change, 2 changed, 4 failed,
/// 6 failed with changes.
pub fn detailed_exit(rep: &Report) -> u8 {
    match (rep.error.is_some(), rep.changed) {
        (false, false) => 0,
        (false, true) => 2,
        (true, false) => 4,
        (true, true) => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> (u32, u32) {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }

    fn file(content: &[u8], mode: u32) -> PathState {
        let (uid, gid) = me();
        PathState::File {
            content: content.to_vec(),
            mode,
            uid,
            gid,
        }
    }

    /// A node with /etc (0755) and the given files.
    fn node(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::set_permissions(t.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        for (p, c) in files {
            let host = t.path().join(p.trim_start_matches('/'));
            fs::write(&host, c).unwrap();
            fs::set_permissions(&host, fs::Permissions::from_mode(0o644)).unwrap();
        }
        t
    }

    #[test]
    fn restore_leaves_files_that_are_already_as_they_were() {
        let t = node(&[("/etc/policy", b"new"), ("/etc/dropin", b"old")]);
        let root = Root::new(t.path());
        let inode = |p: &str| fs::metadata(t.path().join(p)).unwrap().ino();
        let untouched = inode("etc/dropin");
        let backup = Backup {
            files: vec![
                ("/etc/policy".into(), file(b"old", 0o644)),
                ("/etc/dropin".into(), file(b"old", 0o644)),
                ("/etc/created".into(), PathState::Missing),
            ],
        };
        fs::write(t.path().join("etc/created"), b"x").unwrap();
        backup.restore(&root).unwrap();
        assert_eq!(fs::read(t.path().join("etc/policy")).unwrap(), b"old");
        assert!(!t.path().join("etc/created").exists());
        // The drop-in was never rewritten (on a full filesystem it could
        // not be).
        assert_eq!(inode("etc/dropin"), untouched);
    }

    #[test]
    fn restore_goes_on_past_a_file_it_cannot_restore_and_names_it() {
        let t = node(&[("/etc/policy", b"new")]);
        let root = Root::new(t.path());
        // A directory where a file was: it cannot be put back.
        fs::create_dir(t.path().join("etc/dropin")).unwrap();
        let backup = Backup {
            files: vec![
                ("/etc/policy".into(), file(b"old", 0o600)),
                ("/etc/dropin".into(), file(b"old", 0o644)),
            ],
        };
        let e = backup.restore(&root).unwrap_err();
        assert!(e.message.contains("/etc/dropin"), "{}", e.message);
        // The drop-in comes first (the last written), and its failure did
        // not stop the policy's restore.
        assert_eq!(fs::read(t.path().join("etc/policy")).unwrap(), b"old");
        assert_eq!(
            fs::metadata(t.path().join("etc/policy")).unwrap().mode() & 0o7777,
            0o600
        );
    }
}
