//! `kaudit-node check`: is audit logging on this node working, now?
//!
//! Read-only and cheap. [`check`] gathers facts (systemd's view of the
//! unit, given by the caller from one D-Bus connection; the plan from
//! [`crate::observe`] + [`crate::plan::plan`]; `/proc/PID`; the end of the
//! log; `statvfs`; the logrotate rules) and hands them to the pure probes
//! of [`probes`]. It writes nothing, takes no lock, never reloads or
//! restarts, and reads only the last line of the log ([`tail`]).
//!
//! Whatever a probe cannot read (a non-root user and a 0600 policy, no
//! D-Bus) makes that probe UNKNOWN with the reason; the others still run.
//! A node kaudit-node cannot plan (an overriding drop-in) makes the
//! `dropin` probe CRITICAL, not the whole check fail.
//!
//! States and the exit code follow the monitoring-plugin conventions: 0 OK,
//! 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The overall state is the worst probe,
//! ranked CRITICAL > WARNING > UNKNOWN > OK (monitoring-plugins'
//! `max_state_alt`): a definite problem outranks a probe that could not
//! tell. The renderers are in [`render`].

pub mod logrotate;
pub mod probes;
pub mod render;
pub mod tail;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Settings;
use crate::error::ExitCode;
use crate::flags;
use crate::observe;
use crate::plan;
use crate::root::Root;
use crate::systemd::UnitStatus;
use crate::verify;

/// A probe's state. The derived order is severity (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl State {
    /// The monitoring-plugin exit code (and the Prometheus gauge value).
    pub fn code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    pub fn exit(self) -> ExitCode {
        ExitCode::Raw(self.code())
    }
}

/// A number a probe measured, for performance data and Prometheus.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metric {
    /// `log_age_seconds`; the Prometheus name is `kaudit_node_` + this.
    pub name: &'static str,
    pub value: f64,
    /// Performance-data unit: `s`, `B` or empty.
    pub unit: &'static str,
    /// Monitoring-plugin threshold ranges (`300`, `838861:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The Prometheus HELP text.
    #[serde(skip)]
    pub help: &'static str,
}

impl Metric {
    pub fn new(name: &'static str, value: f64, unit: &'static str, help: &'static str) -> Metric {
        Metric {
            name,
            value,
            unit,
            warn: None,
            crit: None,
            min: None,
            max: None,
            help,
        }
    }
}

/// One probe's verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    pub name: &'static str,
    pub state: State,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

impl Probe {
    pub fn new(name: &'static str, state: State, reason: impl Into<String>) -> Probe {
        Probe {
            name,
            state,
            reason: reason.into(),
            metrics: Vec::new(),
        }
    }
}

/// Every probe's verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub unit: String,
    pub log: PathBuf,
    pub probes: Vec<Probe>,
}

impl Verdict {
    /// The worst state of any probe.
    pub fn state(&self) -> State {
        self.probes
            .iter()
            .map(|p| p.state)
            .max()
            .unwrap_or(State::Unknown)
    }

    pub fn probe(&self, name: &str) -> Option<&Probe> {
        self.probes.iter().find(|p| p.name == name)
    }

    /// A report with the one probe `config`, UNKNOWN: the configuration
    /// could not be read, so nothing else could be checked.
    pub fn config_failed(message: &str) -> Verdict {
        Verdict {
            unit: String::new(),
            log: PathBuf::new(),
            probes: vec![Probe::new("config", State::Unknown, message)],
        }
    }
}

/// Thresholds (`--warn-age`, `--crit-age`, `--warn-free`, `--crit-free`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warn_age: Duration,
    pub crit_age: Duration,
    /// Percent of bytes and of inodes free on the log's filesystem.
    pub warn_free: f64,
    pub crit_free: f64,
}

impl Default for Thresholds {
    /// 5 minutes and 15 minutes without a write (the recommended policy
    /// logs the apiserver's own traffic many times a minute on a live
    /// control plane); 10 % and 5 % free.
    fn default() -> Self {
        Thresholds {
            warn_age: Duration::from_secs(5 * 60),
            crit_age: Duration::from_secs(15 * 60),
            warn_free: 10.0,
            crit_free: 5.0,
        }
    }
}

fn io_reason(what: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", what.display())
}

/// Runs every probe. `config` is `--config`, when given. `status` is
/// systemd's view of the unit (one D-Bus `status`), or why it could not be
/// read. `now` is the time freshness is measured against.
pub fn check(
    root: &Root,
    config: Option<&Path>,
    s: &Settings,
    status: Result<UnitStatus, String>,
    t: &Thresholds,
    now: SystemTime,
) -> Verdict {
    let log = s.log.path.clone();
    let dropin_path = crate::dropin::path(&s.unit);
    let observed = observe::observe(root, s);
    let plan = observed
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|o| plan::plan(s, o));
    // Only a node kaudit-node refuses (an overriding drop-in, an invalid
    // unit) is a finding; a file it may not read is the UNKNOWN of the
    // probe that reads it.
    let plan_error = match &plan {
        Err(e) if !matches!(e.code, ExitCode::NoPerm | ExitCode::IoErr) => Some(e.message.as_str()),
        _ => None,
    };
    let dropin_text = match root.read_optional(&dropin_path) {
        Ok(b) => Ok(b),
        Err(e) => Err(e.message),
    };
    if let Some(r) = unmanaged(root, s, &status, &plan, &dropin_text) {
        return r;
    }
    let mut probes = vec![probes::unit(&s.unit, &status)];
    probes.push(probes::dropin(
        &dropin_path,
        &dropin_text,
        &status,
        plan_error,
    ));

    let pid = status
        .as_ref()
        .ok()
        .map(|st| st.main_pid)
        .filter(|p| *p != 0);
    let argv: probes::Argv = pid.map(|pid| {
        (
            pid,
            verify::read_cmdline(root, pid).map_err(|e| format!("/proc/{pid}/cmdline: {e}")),
        )
    });
    let expected = match &plan {
        Ok(p) => p.flags.clone(),
        Err(_) => flags::audit_flags(s),
    };
    probes.push(probes::flags(&expected, &argv));

    let installed = installed_policy(root, s);
    let planned = plan
        .as_ref()
        .ok()
        .and_then(|p| p.entries.iter().find(|e| e.path == s.policy_path));
    let started = pid.and_then(|pid| crate::verify::process_start(root, pid).map(|t| (pid, t)));
    probes.push(probes::policy(&s.policy_path, &installed, planned, started));

    let quiet_policy = match &installed {
        Ok(Some(f)) => crate::policy::records_regular_traffic(&f.content) == Some(false),
        _ => false,
    };
    probes.extend(log_probes(root, s, pid, quiet_policy, t, now));

    let text = dropin_text
        .as_ref()
        .ok()
        .and_then(|t| t.as_ref())
        .map(|b| String::from_utf8_lossy(b).into_owned());
    probes.push(probes::drift(text.as_deref(), &vendor_now(root, s, &plan)));
    probes.push(trust_probe(root, s, config));
    probes.push(apiserver_probe(
        root,
        s,
        &observed,
        text.as_deref(),
        started,
    ));
    probes.push(rotation_probe(root, s));
    probes.push(probes::cis(&argv));

    Verdict {
        unit: s.unit.clone(),
        log,
        probes,
    }
}

/// A node kaudit-node does not manage (systemd knows no such unit and
/// there is no kaudit-node drop-in: a static-pod node, a wrong `unit`):
/// one UNKNOWN saying why, not a cascade of findings. With the drop-in
/// there, the unit vanished from a managed node, and every probe runs.
/// Without D-Bus (or under `--root`), the unit file's absence says the
/// same as systemd's "not-found".
fn unmanaged(
    root: &Root,
    s: &Settings,
    status: &Result<UnitStatus, String>,
    plan: &crate::error::Result<plan::Plan>,
    dropin_text: &Result<Option<Vec<u8>>, String>,
) -> Option<Verdict> {
    let unknown_unit = match &status {
        Ok(st) => st.load_state == "not-found",
        Err(_) => matches!(
            crate::unit::load(root, &s.unit, crate::dropin::NAME),
            Err(e) if e.code == ExitCode::NoInput
        ),
    };
    if unknown_unit && matches!(dropin_text, Ok(None)) {
        let why = match &plan {
            Err(e) => e.message.clone(),
            Ok(_) => format!("systemd does not know {}", s.unit),
        };
        return Some(Verdict {
            unit: s.unit.clone(),
            log: s.log.path.clone(),
            probes: vec![Probe::new(
                "unit",
                State::Unknown,
                format!("{why}; there is no kaudit-node configuration to check on this node"),
            )],
        });
    }
    None
}

/// The installed policy file and its mtime; `None` when there is none.
fn installed_policy(root: &Root, s: &Settings) -> Result<Option<probes::PolicyFile>, String> {
    match std::fs::read(root.host_path(&s.policy_path)) {
        Ok(content) => Ok(Some(probes::PolicyFile {
            mtime: std::fs::metadata(root.host_path(&s.policy_path))
                .and_then(|m| m.modified())
                .ok(),
            content,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_reason(&s.policy_path, &e)),
    }
}

/// The log's probes: held open by the process, written recently, its last
/// line an audit event, its filesystem's free space and inodes.
fn log_probes(
    root: &Root,
    s: &Settings,
    pid: Option<u32>,
    quiet_policy: bool,
    t: &Thresholds,
    now: SystemTime,
) -> Vec<Probe> {
    let log = &s.log.path;
    let mut out = Vec::new();
    let host_log = root.host_path(log);
    let md = match std::fs::metadata(&host_log) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_reason(log, &e)),
    };
    let exists = md.as_ref().map(|m| m.is_some()).map_err(Clone::clone);
    let handle = pid.map(|pid| {
        (
            pid,
            verify::log_handle(root, pid, log).map_err(|e| format!("/proc/{pid}/fd: {e}")),
        )
    });
    out.push(probes::log_open(log, &exists, handle, quiet_policy));

    let stat = md.as_ref().map_err(Clone::clone).map(|m| {
        m.as_ref().map(|m| probes::LogStat {
            mtime: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            size: m.len(),
        })
    });
    out.push(probes::log_age(
        log,
        &stat,
        now,
        t.warn_age,
        t.crit_age,
        quiet_policy,
    ));

    let last = match &md {
        Err(e) => Err(e.clone()),
        Ok(None) => Ok(None),
        Ok(Some(_)) => tail::open_noatime(&host_log)
            .and_then(|mut f| {
                let len = f.metadata()?.len();
                tail::last_line(&mut f, len)
            })
            .map(Some)
            .map_err(|e| io_reason(log, &e)),
    };
    out.push(probes::log_tail(log, &last, s.log.format));

    // The filesystem the log is (or would be) on: its nearest existing directory.
    let dir = log
        .ancestors()
        .skip(1)
        .find(|d| root.host_path(d).is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let fs = nix::sys::statvfs::statvfs(&root.host_path(&dir))
        .map(|v| {
            let frag = v.fragment_size();
            probes::FsStat {
                total_bytes: v.blocks() * frag,
                avail_bytes: v.blocks_available() * frag,
                total_inodes: v.files(),
                avail_inodes: v.files_available(),
            }
        })
        .map_err(|e| format!("{}: statvfs: {e}", dir.display()));
    out.push(probes::log_fs(&dir, &fs, t.warn_free, t.crit_free));

    out
}

/// The vendor command line now (its hash and where it is), for the drift
/// probe: from the plan, or read anew when there is none.
fn vendor_now(
    root: &Root,
    s: &Settings,
    plan: &crate::error::Result<plan::Plan>,
) -> Result<(String, String), String> {
    match plan {
        Ok(p) => Ok((p.vendor_hash.clone(), p.vendor_source.clone())),
        Err(_) => crate::unit::load(root, &s.unit, crate::dropin::NAME)
            .map(|v| {
                (
                    plan::vendor_hash(&v.exec_start),
                    format!(
                        "{}:{}",
                        v.exec_start_source.0.display(),
                        v.exec_start_source.1
                    ),
                )
            })
            .map_err(|e| e.message),
    }
}

/// The inputs apply trusts: a file or directory that became writable by
/// other users after apply is a warning here (apply refuses it).
fn trust_probe(root: &Root, s: &Settings, config: Option<&Path>) -> Probe {
    let config_node = crate::trust::config_node_path(root, config);
    match crate::trust::check(root, s, config_node.as_deref()) {
        Err(e) => Probe::new("trust", State::Unknown, e.message),
        Ok(bad) if bad.is_empty() => {
            let files: Vec<String> = crate::trust::inputs(s, config_node.as_deref())
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect();
            Probe::new(
                "trust",
                State::Ok,
                if files.is_empty() {
                    "no input file (the embedded defaults and a preset)".to_string()
                } else {
                    format!(
                        "{} and the directories above cannot be written by other users",
                        files.join(", ")
                    )
                },
            )
        }
        Ok(bad) => Probe::new(
            "trust",
            State::Warning,
            bad.iter()
                .map(crate::trust::Untrusted::message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Which kube-apiserver runs, against the identity the drop-in recorded.
/// The identity needs only the unit and the binary: observed anew when
/// the whole observation failed on something else (a policy file this
/// user may not read).
fn apiserver_probe(
    root: &Root,
    s: &Settings,
    observed: &crate::error::Result<observe::Observed>,
    text: Option<&str>,
    started: Option<(u32, SystemTime)>,
) -> Probe {
    let identity = match &observed {
        Ok(o) => Ok(o.identity.clone()),
        Err(_) => crate::unit::load(root, &s.unit, crate::dropin::NAME).and_then(|v| {
            crate::apiserver::identity::identify(root, &v, s.apiserver.version.as_ref(), text)
        }),
    }
    .map_err(|e| (e.code, e.message));
    let binary_mtime = identity.as_ref().ok().and_then(|id| {
        std::fs::metadata(root.host_path(&id.binary))
            .and_then(|m| m.modified())
            .ok()
    });
    probes::apiserver(text, &identity, binary_mtime, started)
}

/// logrotate's rules against the rotation owner, with the backups there now
/// (a pattern must not match them either).
fn rotation_probe(root: &Root, s: &Settings) -> Probe {
    let log = &s.log.path;
    let rules = logrotate::read_rules(root, crate::dropin::HEADER_MARK);
    // The backups there now: a pattern must not match them either.
    let log_dir = log.parent().unwrap_or(Path::new("/"));
    let present: Vec<String> = std::fs::read_dir(root.host_path(log_dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| probes::is_backup_name(log, n))
                .map(|n| log_dir.join(n).display().to_string())
                .collect()
        })
        .unwrap_or_default();
    probes::rotation(s.log.rotation, log, &s.logrotate.path, &rules, &present)
}

/// How long `check --probe` waits for the probe's event.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);

/// `check --probe`: sends the request the installed policy records (as
/// apply's proof does) to the running apiserver and expects its event in
/// the log within [`PROBE_WAIT`]: an end-to-end test of the pipeline,
/// whatever the traffic.
pub fn probe_pipeline(root: &Root, s: &Settings, status: &Result<UnitStatus, String>) -> Probe {
    let name = "probe";
    let pid = match status {
        Ok(st) if st.main_pid != 0 => st.main_pid,
        Ok(st) => {
            return Probe::new(
                name,
                State::Critical,
                format!("{} has no main process ({})", s.unit, st.active_state),
            );
        }
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
    };
    let argv = match verify::read_cmdline(root, pid) {
        Ok(a) => a,
        Err(e) => return Probe::new(name, State::Unknown, format!("/proc/{pid}/cmdline: {e}")),
    };
    let policy = match std::fs::read(root.host_path(&s.policy_path)) {
        Ok(b) => b,
        Err(e) => return Probe::new(name, State::Unknown, io_reason(&s.policy_path, &e)),
    };
    let ep = match crate::apiserver::ready::Endpoint::from_argv(&argv) {
        Ok(ep) => ep,
        Err(e) => return Probe::new(name, State::Unknown, format!("cannot reach PID {pid}: {e}")),
    };
    let marker = crate::prove::marker("check");
    let Some(proof) = crate::policy::proof(&policy, &marker) else {
        return Probe::new(
            name,
            State::Unknown,
            format!("{}: the policy does not decode", s.policy_path.display()),
        );
    };
    let log = s.log.path.display();
    match crate::prove::send_probe(
        root,
        &s.log.path,
        s.log.format,
        &ep,
        &proof,
        &argv,
        &marker,
        PROBE_WAIT,
        &mut |_| {},
    ) {
        Err(e) => Probe::new(name, State::Critical, e),
        Ok(crate::prove::Probed::Written { probe, code, after }) => {
            let mut p = Probe::new(
                name,
                State::Ok,
                format!(
                    "{} {} (HTTP {code}) was written to {log} in {} ms",
                    probe.method,
                    probe.path,
                    after.as_millis()
                ),
            );
            p.metrics.push(Metric::new(
                "probe_seconds",
                (after.as_secs_f64() * 1000.0).round() / 1000.0,
                "s",
                "Seconds from check's probe request to its audit event in the log.",
            ));
            p
        }
        Ok(crate::prove::Probed::NotWritten { probe, code }) => Probe::new(
            name,
            State::Critical,
            format!(
                "{} {} (HTTP {code}) is recorded by the policy at {}, but no event for it appeared in {log} within {} s",
                probe.method,
                probe.path,
                probe.level,
                PROBE_WAIT.as_secs()
            ),
        ),
        Ok(crate::prove::Probed::None(why)) => Probe::new(
            name,
            State::Ok,
            format!(
                "not probed: no request kaudit-node can send is recorded by this policy ({why})"
            ),
        ),
    }
}

/// The verdict on a node: every probe, and with `probe` (`--probe`) the
/// policy's probe request too, unless the node is one kaudit-node does not
/// manage (one UNKNOWN line).
pub fn verdict(
    root: &Root,
    config: Option<&Path>,
    s: &Settings,
    status: Result<UnitStatus, String>,
    t: &Thresholds,
    probe: bool,
) -> Verdict {
    let probe = probe.then(|| probe_pipeline(root, s, &status));
    let mut r = check(root, config, s, status, t, SystemTime::now());
    if r.probes.len() > 1 {
        r.probes.extend(probe);
    }
    r
}

impl Thresholds {
    /// Thresholds that make sense together, or why not.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.warn_age > self.crit_age {
            Err("--warn-age must not be longer than --crit-age")
        } else if self.warn_free < self.crit_free {
            Err("--warn-free must not be below --crit-free")
        } else {
            Ok(())
        }
    }
}
