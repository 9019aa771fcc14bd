//! After a restart: prove that the new apiserver runs kaudit-node's flags,
//! serves, and writes audit events, in that order, within
//! `apply.verify_timeout`.
//!
//! The proof is the strongest one the policy allows:
//!
//! * **event**: a new audit event appeared in the log the new process holds
//!   open (the apiserver's own traffic, recorded by most policies);
//! * **probe**: otherwise, kaudit-node sends one request without
//!   credentials that the policy records ([`crate::policy::probe`]) and
//!   waits for its event;
//! * **process**: when no such request exists (rules only for named users,
//!   the stage of a failed request omitted), the process evidence is
//!   accepted with a warning that says why: the new main PID, the flags in
//!   `/proc`, the log held open, and readiness. A narrow policy is never
//!   rolled back for being quiet.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::apiserver::ready::{self, Answer, Endpoint, Prober};
use crate::config::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::plan::Plan;
use crate::policy::{
    self,
    probe::{Caller, Probe},
};
use crate::root::Root;
use crate::verify::{self, LogHandle, LogMark};

/// How long one readiness or probe request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the probe's event may take to appear once the answer came
/// (a blocking backend writes it before answering; a batch one within
/// its max wait).
const PROBE_EVENT_WAIT: Duration = Duration::from_secs(10);

/// How the log was shown to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    Event,
    Probe,
    Process,
}

/// Whether the apiserver served before apply restarted it.
#[derive(Debug, Clone)]
pub struct Before {
    pub endpoint: std::result::Result<Endpoint, String>,
    pub ready: bool,
    pub answer: Option<Answer>,
}

impl Before {
    /// Probes the running apiserver (PID `pid`) once.
    pub fn probe(root: &Root, pid: u32) -> Before {
        let endpoint = verify::read_cmdline(root, pid)
            .map_err(|e| format!("PID {pid}: {e}"))
            .and_then(|argv| Endpoint::from_argv(&argv));
        let answer = endpoint
            .as_ref()
            .ok()
            .map(|ep| Prober::new(REQUEST_TIMEOUT).probe(ep));
        Before {
            ready: answer.as_ref().is_some_and(Answer::is_ready),
            endpoint,
            answer,
        }
    }
}

/// What the verification measured.
#[derive(Debug, Default)]
pub struct Verified {
    pub first_event: Option<Duration>,
    pub detect_lag: Option<Duration>,
    pub ready: Option<Duration>,
    pub proof: Option<Proof>,
    pub warnings: Vec<String>,
}

/// Polls `/readyz` until it answers ready or `deadline` passes, calling
/// `tick` between requests (which stops the wait by returning false); the
/// last answer when it did not become ready.
pub fn wait_ready(
    ep: &Endpoint,
    deadline: Instant,
    tick: &mut dyn FnMut() -> bool,
    progress: &mut dyn FnMut(&str),
) -> std::result::Result<(), Answer> {
    let prober = Prober::new(REQUEST_TIMEOUT);
    let mut next_note = Instant::now() + Duration::from_secs(5);
    loop {
        if !tick() {
            return Err(Answer::Unreachable("the wait was stopped".into()));
        }
        let a = prober.probe(ep);
        if a.is_ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(a);
        }
        if Instant::now() >= next_note {
            progress(&format!("still waiting for {} ({a})", ep.url()));
            next_note += Duration::from_secs(5);
        }
        std::thread::sleep(
            Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
}

fn failed(message: String) -> Error {
    Error::new(ExitCode::Software, message)
}

/// The log as the verification watches it: the first new event since the
/// restart, seen while waiting for anything else.
struct Watch<'a> {
    root: &'a Root,
    s: &'a Settings,
    mark: Option<LogMark>,
    job_done: Instant,
    first_event: Option<Duration>,
    detect_lag: Option<Duration>,
}

impl Watch<'_> {
    fn poll(&mut self) {
        if self.first_event.is_some() {
            return;
        }
        let log = &self.s.log.path;
        if let Ok(Some(_)) = verify::first_event_after(self.root, log, self.mark, self.s.log.format)
        {
            let seen = SystemTime::now();
            self.first_event = Some(self.job_done.elapsed());
            self.detect_lag = std::fs::metadata(self.root.host_path(log))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|w| seen.duration_since(w).ok());
        }
    }
}

/// The pieces of a verification that fail it.
struct Ctx<'a> {
    root: &'a Root,
    s: &'a Settings,
    pid: u32,
    deadline: Instant,
}

impl Ctx<'_> {
    fn alive(&self) -> bool {
        self.root
            .host_path(&PathBuf::from(format!("/proc/{}", self.pid)))
            .exists()
    }

    fn exited(&self) -> Error {
        failed(format!(
            "the new apiserver (PID {}) exited; see `journalctl -u {}`",
            self.pid, self.s.unit
        ))
    }

    /// Waits until the process holds the log open (the same file as the
    /// path), until the deadline.
    fn log_open(&self, w: &mut Watch) -> Result<()> {
        loop {
            w.poll();
            match verify::log_handle(self.root, self.pid, &self.s.log.path) {
                Ok(LogHandle::Open) => return Ok(()),
                Ok(LogHandle::Deleted) => {
                    return Err(failed(format!(
                        "PID {} writes to a deleted or replaced file, not {}",
                        self.pid,
                        self.s.log.path.display()
                    )));
                }
                Ok(LogHandle::NotOpen) | Err(_) => {}
            }
            if !self.alive() {
                return Err(self.exited());
            }
            if Instant::now() >= self.deadline {
                return Err(failed(format!(
                    "PID {} does not hold {} open within {}",
                    self.pid,
                    self.s.log.path.display(),
                    self.s.apply.verify_timeout.text
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until the new process (PID `pid`) runs the planned command with
/// kaudit-node's flags; returns its argv.
fn wait_flags(c: &Ctx, p: &Plan, w: &mut Watch) -> Result<Vec<String>> {
    let mut last_argv = Vec::new();
    loop {
        w.poll();
        // Right after fork, systemd ≥ 255 runs `systemd-executor` under
        // the new PID before it execs the service, so the first reads may
        // see that.
        last_argv = verify::read_cmdline(c.root, c.pid).unwrap_or(last_argv);
        let wrong: Vec<_> = verify::check_flags(&last_argv, &p.flags)
            .into_iter()
            .filter(|f| !f.is_effective())
            .collect();
        if wrong.is_empty() && !last_argv.is_empty() {
            return Ok(last_argv);
        }
        if let Some(f) = wrong.first()
            && last_argv.first() == p.argv.first()
        {
            return Err(failed(format!(
                "the new apiserver (PID {}) runs with --{}={} where {} was expected",
                c.pid,
                f.name,
                f.effective().unwrap_or("(absent)"),
                f.expected
            )));
        }
        if !c.alive() {
            return Err(c.exited());
        }
        if Instant::now() >= c.deadline {
            return Err(failed(format!(
                "PID {} did not run with kaudit-node's flags within {} (its command line: {})",
                c.pid,
                c.s.apply.verify_timeout.text,
                last_argv.join(" ")
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a new event in the log until the deadline (no probe possible).
fn wait_event(c: &Ctx, w: &mut Watch, why: &str) -> Result<()> {
    loop {
        w.poll();
        if w.first_event.is_some() {
            return Ok(());
        }
        if !c.alive() {
            return Err(c.exited());
        }
        if Instant::now() >= c.deadline {
            return Err(failed(format!(
                "no new audit event in {} within {} (PID {}), and no probe could be sent ({why}); is the policy logging anything?",
                c.s.log.path.display(),
                c.s.apply.verify_timeout.text,
                c.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A marker for a probe's object name: `kaudit-node-probe-WHO-MILLIS`.
pub fn marker(who: &str) -> String {
    format!(
        "kaudit-node-probe-{who}-{}",
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    )
}

/// What became of a probe.
#[derive(Debug)]
pub enum Probed {
    /// Its event is in the log, this long after the request.
    Written {
        probe: Probe,
        code: u16,
        after: Duration,
    },
    /// The apiserver answered, but no event for it appeared in time.
    NotWritten { probe: Probe, code: u16 },
    /// No request without credentials is recorded by the policy (why).
    None(String),
}

/// Sends the probe the policy records for how the apiserver treats a
/// request without credentials, and waits up to `wait` for its event in
/// `log`. The first probe follows the flags' guess (`argv`); when the
/// answer's code says otherwise (401: no user; else system:anonymous),
/// the other one is sent. `Err` when the apiserver did not answer.
#[allow(clippy::too_many_arguments)]
pub fn send_probe(
    root: &Root,
    log: &std::path::Path,
    format: crate::config::Format,
    ep: &Endpoint,
    proof: &policy::Proof,
    argv: &[String],
    marker: &str,
    wait: Duration,
    progress: &mut dyn FnMut(&str),
) -> std::result::Result<Probed, String> {
    let guess = if ready::anonymous_auth(argv) {
        Caller::Anonymous
    } else {
        Caller::Unauthenticated
    };
    let other = match guess {
        Caller::Anonymous => Caller::Unauthenticated,
        Caller::Unauthenticated => Caller::Anonymous,
    };
    let mut probe = match (proof.probe(guess), proof.probe(other)) {
        (Ok(pr), _) | (Err(_), Ok(pr)) => pr.clone(),
        (Err(why), Err(_)) => return Ok(Probed::None(why.clone())),
    };
    let prober = Prober::new(REQUEST_TIMEOUT);
    let agent = concat!("kaudit-node/", env!("CARGO_PKG_VERSION"), " (probe)");
    let mut send = |pr: &Probe| -> std::result::Result<(u16, Option<LogMark>, Instant), String> {
        progress(&format!("probing the audit log: {}", pr.describe()));
        let mark = verify::log_mark(root, log);
        let t0 = Instant::now();
        let code = prober
            .send(ep, pr.method, &pr.path, agent)
            .map_err(|e| format!("the probe {} {} got no answer: {e}", pr.method, pr.path))?;
        Ok((code, mark, t0))
    };
    let (mut code, mut mark, mut t0) = send(&probe)?;
    let actual = if code == 401 {
        Caller::Unauthenticated
    } else {
        Caller::Anonymous
    };
    if actual != probe.caller {
        match proof.probe(actual) {
            Ok(pr) => {
                probe = pr.clone();
                (code, mark, t0) = send(&probe)?;
            }
            Err(why) => {
                return Ok(Probed::None(format!(
                    "the apiserver answered {code}: {why}"
                )));
            }
        }
    }
    loop {
        if let Ok(Some(_)) = verify::first_event_matching(root, log, mark, format, Some(marker)) {
            return Ok(Probed::Written {
                probe,
                code,
                after: t0.elapsed(),
            });
        }
        if t0.elapsed() >= wait {
            return Ok(Probed::NotWritten { probe, code });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The verification's probe: `Ok(Err(why))` when there is none to send.
fn probe(
    c: &Ctx,
    w: &mut Watch,
    ep: &Endpoint,
    proof: &policy::Proof,
    argv: &[String],
    marker: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<std::result::Result<(), String>> {
    // At least a second, and no longer than the probe needs.
    let wait = c
        .deadline
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_secs(1), PROBE_EVENT_WAIT);
    match send_probe(
        c.root,
        &c.s.log.path,
        c.s.log.format,
        ep,
        proof,
        argv,
        marker,
        wait,
        progress,
    )
    .map_err(failed)?
    {
        Probed::Written { .. } => {
            w.poll();
            if w.first_event.is_none() {
                w.first_event = Some(w.job_done.elapsed());
            }
            Ok(Ok(()))
        }
        Probed::NotWritten { probe, code } => Err(failed(format!(
            "the probe {} {} (HTTP {code}) is recorded by the policy at {}, but no event for it appeared in {} within {} s: the new apiserver (PID {}) does not write the audit log",
            probe.method,
            probe.path,
            probe.level,
            c.s.log.path.display(),
            wait.as_secs(),
            c.pid
        ))),
        Probed::None(why) => Ok(Err(why)),
    }
}

/// Proves the restarted apiserver (PID `pid`) right, from the end of its
/// restart job. `mark` is the log's end before the restart.
#[allow(clippy::too_many_arguments)]
pub fn verify_restart(
    root: &Root,
    s: &Settings,
    p: &Plan,
    pid: u32,
    mark: Option<LogMark>,
    job_done: Instant,
    before: &Before,
    progress: &mut dyn FnMut(&str),
) -> Result<Verified> {
    let c = Ctx {
        root,
        s,
        pid,
        deadline: job_done + s.apply.verify_timeout.as_std(),
    };
    let mut w = Watch {
        root,
        s,
        mark,
        job_done,
        first_event: None,
        detect_lag: None,
    };
    let mut out = Verified::default();
    progress(&format!(
        "waiting for PID {pid} to run kaudit-node's flags and write to {}",
        s.log.path.display()
    ));
    crate::failpoint::hit("first-event");
    let argv = wait_flags(&c, p, &mut w)?;

    // Readiness, watching for the first event meanwhile.
    let endpoint = Endpoint::from_argv(&argv);
    match &endpoint {
        Err(e) => out.warnings.push(format!("readiness was not checked: {e}")),
        Ok(ep) => {
            progress(&format!("waiting for PID {pid} to serve ({})", ep.url()));
            let waited = wait_ready(
                ep,
                c.deadline,
                &mut || {
                    w.poll();
                    c.alive()
                },
                progress,
            );
            if !c.alive() {
                return Err(c.exited());
            }
            match waited {
                Ok(()) => out.ready = Some(job_done.elapsed()),
                Err(last) if before.ready => {
                    return Err(failed(format!(
                        "the new apiserver (PID {pid}) did not become ready within {}: {} answered {last}",
                        s.apply.verify_timeout.text,
                        ep.url()
                    )));
                }
                Err(last) => out.warnings.push(format!(
                    "{} did not answer ready within {} ({last}); it was not ready before apply either ({}), so this is not rolled back: check etcd and `journalctl -u {}`",
                    ep.url(),
                    s.apply.verify_timeout.text,
                    before
                        .answer
                        .as_ref()
                        .map_or_else(|| "not probed".to_string(), |a| a.to_string()),
                    s.unit
                )),
            }
        }
    }
    if !c.alive() {
        return Err(c.exited());
    }

    // The proof.
    let proof = if w.first_event.is_some() {
        Proof::Event
    } else {
        let marker = marker(&pid.to_string());
        let policy_bytes = p
            .entries
            .iter()
            .find(|e| e.path == s.policy_path)
            .map(|e| e.content.as_slice())
            .unwrap_or_default();
        match (policy::proof(policy_bytes, &marker), &endpoint) {
            (Some(pf), Ok(ep)) => match probe(&c, &mut w, ep, &pf, &argv, &marker, progress)? {
                Ok(()) => Proof::Probe,
                Err(why) => {
                    // The log is opened at the first write (lumberjack opens
                    // lazily; `ensureLogFile` only creates it), so a quiet
                    // apiserver may not hold it yet; a deleted one is wrong.
                    let log = match verify::log_handle(root, pid, &s.log.path) {
                        Ok(LogHandle::Deleted) => {
                            return Err(failed(format!(
                                "PID {pid} writes to a deleted or replaced file, not {}",
                                s.log.path.display()
                            )));
                        }
                        Ok(LogHandle::Open) => format!("holds {} open", s.log.path.display()),
                        _ => format!("will open {} at its first event", s.log.path.display()),
                    };
                    out.warnings.push(format!(
                        "no audit event proves the log: {why}, so no request kaudit-node can send is recorded; accepted on the process evidence: PID {pid} is new, runs kaudit-node's flags, {log}{}. `kaudit-node check --probe` cannot test such a policy either; send a request it records to see an event",
                        if out.ready.is_some() { ", and serves" } else { "" }
                    ));
                    out.proof = Some(Proof::Process);
                    return Ok(out);
                }
            },
            (None, _) => {
                wait_event(&c, &mut w, "the policy could not be read")?;
                Proof::Event
            }
            (_, Err(e)) => {
                wait_event(&c, &mut w, e)?;
                Proof::Event
            }
        }
    };
    c.log_open(&mut w)?;
    out.first_event = w.first_event;
    out.detect_lag = w.detect_lag;
    out.proof = Some(proof);
    Ok(out)
}
