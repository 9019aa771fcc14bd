//! The probes: pure functions from facts already read (by
//! [`super::check`]) to a [`Probe`]. Each reason is one short sentence that
//! says what is wrong and, where there is one, what to do.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::apiserver::identity::{self, Identity};
use crate::config::{CIS_MAXAGE, CIS_MAXBACKUP, CIS_MAXSIZE, Format, Rotation};
use crate::dropin;
use crate::flags::Flag;
use crate::plan::{Change, Entry};
use crate::systemd::UnitStatus;
use crate::verify::{self, LogHandle};

use super::logrotate::Rule;
use super::tail::LastLine;
use super::{Metric, Probe, State};
use crate::glob;

/// Findings of one probe; the probe's state is the worst, its reason the
/// findings at that state.
#[derive(Default)]
struct Findings(Vec<(State, String)>);

impl Findings {
    fn add(&mut self, s: State, why: impl Into<String>) {
        self.0.push((s, why.into()));
    }
    fn probe(self, name: &'static str, ok: impl Into<String>) -> Probe {
        let worst = self.0.iter().map(|(s, _)| *s).max().unwrap_or(State::Ok);
        let reason = if worst == State::Ok {
            ok.into()
        } else {
            self.0
                .iter()
                .filter(|(s, _)| *s == worst)
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        Probe::new(name, worst, reason)
    }
}

/// Formats a duration in whole units: `45s`, `5m`, `1h30m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 if d.subsec_millis() != 0 && s < 10 => format!("{:.1}s", d.as_secs_f64()),
        0..=119 => format!("{s}s"),
        120..=7199 => format!(
            "{}m{}",
            s / 60,
            if !s.is_multiple_of(60) {
                format!("{}s", s % 60)
            } else {
                String::new()
            }
        ),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f >= K * K * K {
        format!("{:.1} GiB", f / (K * K * K))
    } else if f >= K * K {
        format!("{:.1} MiB", f / (K * K))
    } else if f >= K {
        format!("{:.0} KiB", f / K)
    } else {
        format!("{n} B")
    }
}

/// The unit is active.
pub fn unit(unit: &str, st: &Result<UnitStatus, String>) -> Probe {
    let name = "unit";
    let st = match st {
        Ok(st) => st,
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
    };
    let state = match (st.load_state.as_str(), st.active_state.as_str()) {
        ("loaded", "active") => State::Ok,
        ("loaded", "activating" | "reloading") => State::Warning,
        _ => State::Critical,
    };
    let reason = match st.load_state.as_str() {
        "loaded" => {
            let pid = if st.main_pid != 0 {
                format!(", main PID {}", st.main_pid)
            } else {
                String::new()
            };
            format!("{unit} is {} ({}){pid}", st.active_state, st.sub_state)
        }
        "not-found" => format!("systemd does not know {unit}"),
        other => format!("{unit}: LoadState={other}"),
    };
    let mut p = Probe::new(name, state, reason);
    p.metrics.push(Metric::new(
        "restarts",
        st.n_restarts as f64,
        "",
        "Automatic restarts of the unit since it was last started by hand (NRestarts).",
    ));
    p
}

/// kaudit-node's drop-in is on disk, loaded by systemd (in `DropInPaths`),
/// and systemd's effective `ExecStart` is the drop-in's: this catches
/// `systemctl revert`, a pending daemon-reload and a later drop-in that
/// overrides ours. `plan_error`: why kaudit-node cannot plan the node (an
/// overriding drop-in, an invalid unit), when it cannot.
pub fn dropin(
    path: &Path,
    on_disk: &Result<Option<Vec<u8>>, String>,
    st: &Result<UnitStatus, String>,
    plan_error: Option<&str>,
) -> Probe {
    let name = "dropin";
    let mut f = Findings::default();
    if let Some(e) = plan_error {
        f.add(
            State::Critical,
            format!("kaudit-node cannot plan this node: {e}"),
        );
    }
    let shown = path.display();
    let text = match on_disk {
        Err(e) => {
            f.add(State::Unknown, e.clone());
            None
        }
        Ok(None) => {
            f.add(
                State::Critical,
                format!("{shown} is missing (removed by `systemctl revert`?): the audit flags are gone at the next restart; run `kaudit-node apply`"),
            );
            None
        }
        Ok(Some(b)) if !dropin::is_ours(b) => {
            f.add(
                State::Critical,
                format!("{shown} was not written by kaudit-node"),
            );
            None
        }
        Ok(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
    };
    match st {
        Err(e) => f.add(State::Unknown, e.clone()),
        Ok(st) if st.load_state == "loaded" => {
            // The drop-in's own command line, as on disk.
            let want = text.as_deref().map(|t| dropin::argv(path, t));
            let systemd =
                dropin::loaded(path, st, want.clone().flatten().as_deref().unwrap_or(&[]));
            if text.is_some() && !systemd.loaded {
                f.add(
                    State::Critical,
                    format!("systemd has not loaded {shown} (run `systemctl daemon-reload`, then `kaudit-node apply`)"),
                );
            }
            if systemd.stale {
                f.add(
                    State::Warning,
                    "unit files changed on disk since the last daemon-reload",
                );
            }
            match want {
                None => {}
                Some(None) => f.add(State::Critical, format!("{shown} has no ExecStart=")),
                Some(Some(_)) if systemd.exec_start_ours || !systemd.loaded => {}
                Some(Some(_)) => f.add(
                    State::Critical,
                    format!(
                        "systemd's effective ExecStart is not kaudit-node's: overridden by {}",
                        systemd.later_list("a later drop-in")
                    ),
                ),
            }
        }
        // The unit probe reports a unit that is not loaded.
        Ok(_) => {}
    }
    f.probe(
        name,
        format!("{shown} is loaded and systemd's ExecStart is kaudit-node's"),
    )
}

/// `None` when there is no main process to read.
pub type Argv = Option<(u32, Result<Vec<String>, String>)>;

/// The running main process carries the configured values as the
/// effective (last) occurrence of each flag; duplicates are reported
/// (kube-bench reads the first occurrence, the apiserver the last). The
/// policy file and log path not effective is critical; another flag, a
/// warning (the configuration changed and was not applied).
pub fn flags(expected: &[Flag], argv: &Argv) -> Probe {
    let name = "flags";
    let (pid, argv) = match argv {
        None => return Probe::new(name, State::Unknown, "no main process to read"),
        Some((pid, Err(e))) => return Probe::new(name, State::Unknown, format!("PID {pid}: {e}")),
        Some((pid, Ok(a))) => (*pid, a),
    };
    let mut f = Findings::default();
    for x in verify::check_flags(argv, expected) {
        if !x.is_effective() {
            let severe = matches!(x.name.as_str(), "audit-policy-file" | "audit-log-path");
            f.add(
                if severe { State::Critical } else { State::Warning },
                format!(
                    "PID {pid} runs with --{}={} where the configuration says {} (run `kaudit-node apply`)",
                    x.name,
                    x.effective().unwrap_or("(absent)"),
                    x.expected
                ),
            );
        } else if x.is_duplicated() {
            f.add(
                State::Warning,
                format!(
                    "--{} is given {} times ({}): the apiserver uses the last, kube-bench reads the first",
                    x.name,
                    x.values.len(),
                    x.values.join(", ")
                ),
            );
        }
    }
    f.probe(
        name,
        format!(
            "PID {pid} runs with the {} configured flags, each effective once",
            expected.len()
        ),
    )
}

/// What [`policy`] knows of the installed policy file.
pub struct PolicyFile {
    pub content: Vec<u8>,
    pub mtime: Option<SystemTime>,
}

/// The installed policy is what apply installs (the plan's entry, when
/// kaudit-node can plan the node), still validates, and is not newer than
/// the running process.
pub fn policy(
    path: &Path,
    installed: &Result<Option<PolicyFile>, String>,
    planned: Option<&Entry>,
    process_start: Option<(u32, SystemTime)>,
) -> Probe {
    let name = "policy";
    let shown = path.display();
    let file = match installed {
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
        Ok(None) => {
            return Probe::new(
                name,
                State::Critical,
                format!(
                    "{shown} is missing: the apiserver fails at its next start; run `kaudit-node apply`"
                ),
            );
        }
        Ok(Some(f)) => f,
    };
    let mut f = Findings::default();
    let same = planned.is_some_and(|e| e.content == file.content);
    if !same {
        let r = crate::policy::validate(&shown.to_string(), &file.content);
        if !r.is_ok(false) {
            let first = r
                .errors()
                .next()
                .map(|d| format!("line {}: {}", d.line, d.message))
                .unwrap_or_default();
            f.add(
                State::Critical,
                format!(
                    "{shown} does not validate ({first}): the apiserver fails at its next start"
                ),
            );
        } else if planned.is_some() {
            f.add(
                State::Warning,
                format!("{shown} differs from what `kaudit-node apply` installs (edited, or the configuration changed): see `kaudit-node plan`"),
            );
        }
    }
    if let Some(e) = planned
        && e.change == Change::Metadata
    {
        f.add(
            State::Warning,
            format!(
                "{shown} has mode and owner {}, apply sets {:04o} {}:{}",
                e.was.as_deref().unwrap_or("?"),
                e.mode,
                e.owner.user,
                e.owner.group
            ),
        );
    }
    if let (Some(m), Some((pid, started))) = (file.mtime, process_start)
        && started + Duration::from_secs(1) < m
    {
        f.add(
            State::Warning,
            format!("{shown} changed after the apiserver (PID {pid}) started: it runs with the previous policy until it restarts"),
        );
    }
    let ok = if planned.is_some() {
        format!("{shown} is the policy kaudit-node installs, and validates")
    } else {
        format!("{shown} validates")
    };
    f.probe(name, ok)
}

/// The log path exists and is the file the main process holds open (same
/// device and inode, not `(deleted)`).
/// With `quiet_policy` (the policy records none of the regular traffic), a
/// log not opened yet is normal: the apiserver opens it at its first event.
pub fn log_open(
    log: &Path,
    exists: &Result<bool, String>,
    handle: Option<(u32, Result<LogHandle, String>)>,
    quiet_policy: bool,
) -> Probe {
    let name = "log_open";
    let shown = log.display();
    let mut f = Findings::default();
    let pid = handle.as_ref().map(|(pid, _)| *pid).unwrap_or(0);
    let deleted = matches!(handle, Some((_, Ok(LogHandle::Deleted))));
    let not_yet = quiet_policy && matches!(handle, Some((_, Ok(LogHandle::NotOpen))));
    match handle {
        None => f.add(State::Unknown, "no main process to read"),
        Some((pid, Err(e))) => f.add(State::Unknown, format!("PID {pid}: {e}")),
        Some((pid, Ok(LogHandle::Deleted))) => f.add(
            State::Critical,
            format!(
                "PID {pid} writes to a deleted or replaced file, not {shown}{}: its events are lost until the apiserver restarts",
                if matches!(exists, Ok(false)) { " (which no longer exists)" } else { "" }
            ),
        ),
        Some((_, Ok(LogHandle::NotOpen))) if quiet_policy => {}
        Some((pid, Ok(LogHandle::NotOpen))) => f.add(
            State::Warning,
            format!("PID {pid} does not hold {shown} open (no event written since it started?)"),
        ),
        Some((_, Ok(LogHandle::Open))) => {}
    }
    match exists {
        Err(e) => f.add(State::Unknown, e.clone()),
        Ok(false) if !deleted => f.add(State::Critical, format!("{shown} does not exist")),
        Ok(_) => {}
    }
    f.probe(
        name,
        if not_yet {
            format!(
                "PID {pid} has not opened {shown} yet: the apiserver opens it at its first event, and the policy records none of the control plane's regular traffic"
            )
        } else {
            format!("PID {pid} holds {shown} open (same device and inode)")
        },
    )
}

/// What [`log_age`] knows of the log file.
#[derive(Debug, Clone, Copy)]
pub struct LogStat {
    pub mtime: SystemTime,
    pub size: u64,
}

/// Freshness: the last write (mtime) is younger than the thresholds.
/// With `quiet_policy`, the policy records none of the control plane's
/// regular traffic, so silence is normal: the age is information (OK,
/// with the figures), and `check --probe` is the end-to-end test.
pub fn log_age(
    log: &Path,
    stat: &Result<Option<LogStat>, String>,
    now: SystemTime,
    warn: Duration,
    crit: Duration,
    quiet_policy: bool,
) -> Probe {
    let name = "log_age";
    let shown = log.display();
    let st = match stat {
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
        Ok(None) => return Probe::new(name, State::Critical, format!("{shown} does not exist")),
        Ok(Some(st)) => st,
    };
    let age = now.duration_since(st.mtime).unwrap_or_default();
    let state = if age >= crit {
        State::Critical
    } else if age >= warn {
        State::Warning
    } else {
        State::Ok
    };
    let (state, reason) = if quiet_policy {
        (
            State::Ok,
            format!(
                "{shown} last written {} ago; the policy records none of the control plane's regular traffic, so a quiet log is normal (`kaudit-node check --probe` tests the pipeline end to end)",
                human(age)
            ),
        )
    } else {
        (
            state,
            format!(
                "{shown} last written {} ago (warning at {}, critical at {})",
                human(age),
                human(warn),
                human(crit)
            ),
        )
    };
    let mut p = Probe::new(name, state, reason);
    let mut m = Metric::new(
        "log_age_seconds",
        (age.as_secs_f64() * 1000.0).round() / 1000.0,
        "s",
        "Seconds since the audit log was last written (its mtime).",
    );
    m.warn = Some(warn.as_secs().to_string());
    m.crit = Some(crit.as_secs().to_string());
    p.metrics.push(m);
    let mut m = Metric::new(
        "log_bytes",
        st.size as f64,
        "B",
        "Size of the audit log in bytes.",
    );
    m.min = Some(0.0);
    p.metrics.push(m);
    p
}

/// The last complete line of the log parses as an audit event.
pub fn log_tail(log: &Path, last: &Result<Option<LastLine>, String>, format: Format) -> Probe {
    let name = "log_tail";
    let shown = log.display();
    let (state, reason) = match last {
        Err(e) => (State::Unknown, e.clone()),
        Ok(None) => (State::Critical, format!("{shown} does not exist")),
        Ok(Some(LastLine::Empty)) => (
            State::Warning,
            format!(
                "{shown} is empty: no audit event written yet (is the policy logging anything?)"
            ),
        ),
        Ok(Some(LastLine::NoCompleteLine)) => {
            (State::Warning, format!("{shown} has no complete line yet"))
        }
        Ok(Some(LastLine::TooLong)) => (
            State::Unknown,
            format!(
                "the last line of {shown} is longer than {} and was not read",
                bytes(super::tail::MAX_LINE)
            ),
        ),
        Ok(Some(LastLine::Line(l))) => {
            let nuls = l.iter().take_while(|b| **b == 0).count();
            if nuls > 0 {
                (
                    State::Critical,
                    format!(
                        "the last line of {shown} starts with {nuls} NUL bytes: the file was truncated under a writer that did not reopen it (a logrotate copytruncate rule?)"
                    ),
                )
            } else {
                let text = String::from_utf8_lossy(l);
                if verify::is_audit_event(&text, format) {
                    (
                        State::Ok,
                        format!(
                            "the last line of {shown} is an audit event ({})",
                            format.as_str()
                        ),
                    )
                } else {
                    let head: String = text.chars().take(60).collect();
                    (
                        State::Critical,
                        format!(
                            "the last line of {shown} is not a {} audit event: {head:?}",
                            format.as_str()
                        ),
                    )
                }
            }
        }
    };
    Probe::new(name, state, reason)
}

/// Free space and inodes on the log's filesystem (`statvfs`, what an
/// unprivileged writer can use).
#[derive(Debug, Clone, Copy)]
pub struct FsStat {
    pub total_bytes: u64,
    pub avail_bytes: u64,
    pub total_inodes: u64,
    pub avail_inodes: u64,
}

/// Free space and inodes on the log's filesystem, against percentages.
pub fn log_fs(dir: &Path, st: &Result<FsStat, String>, warn_pct: f64, crit_pct: f64) -> Probe {
    let name = "log_fs";
    let shown = dir.display();
    let st = match st {
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
        Ok(st) => st,
    };
    let pct = |a: u64, t: u64| {
        if t == 0 {
            100.0
        } else {
            a as f64 * 100.0 / t as f64
        }
    };
    let state_of = |p: f64| {
        if p < crit_pct {
            State::Critical
        } else if p < warn_pct {
            State::Warning
        } else {
            State::Ok
        }
    };
    let bp = pct(st.avail_bytes, st.total_bytes);
    let ip = pct(st.avail_inodes, st.total_inodes);
    let state = state_of(bp).max(state_of(ip));
    let inodes = if st.total_inodes == 0 {
        "no inode limit".to_string()
    } else {
        format!("{ip:.0}% of inodes free")
    };
    let reason = format!(
        "{bp:.1}% free ({} of {}), {inodes} on the filesystem of {shown} (warning below {warn_pct}%, critical below {crit_pct}%)",
        bytes(st.avail_bytes),
        bytes(st.total_bytes)
    );
    let mut p = Probe::new(name, state, reason);
    let limit = |pct: f64, total: u64| format!("{}:", (pct / 100.0 * total as f64).ceil() as u64);
    let mut m = Metric::new(
        "log_fs_free_bytes",
        st.avail_bytes as f64,
        "B",
        "Bytes available to unprivileged writers on the audit log's filesystem.",
    );
    m.warn = Some(limit(warn_pct, st.total_bytes));
    m.crit = Some(limit(crit_pct, st.total_bytes));
    m.min = Some(0.0);
    m.max = Some(st.total_bytes as f64);
    p.metrics.push(m);
    if st.total_inodes > 0 {
        let mut m = Metric::new(
            "log_fs_free_inodes",
            st.avail_inodes as f64,
            "",
            "Inodes available to unprivileged writers on the audit log's filesystem.",
        );
        m.warn = Some(limit(warn_pct, st.total_inodes));
        m.crit = Some(limit(crit_pct, st.total_inodes));
        m.min = Some(0.0);
        m.max = Some(st.total_inodes as f64);
        p.metrics.push(m);
    }
    p
}

/// The vendor command line now, against the hash recorded in the drop-in
/// header at apply time: a package upgrade or an edit of the vendor unit
/// since then is drift (the drop-in still runs the old command line).
pub fn drift(dropin_text: Option<&str>, current: &Result<(String, String), String>) -> Probe {
    let name = "drift";
    let Some(text) = dropin_text else {
        return Probe::new(
            name,
            State::Unknown,
            "no kaudit-node drop-in to compare with",
        );
    };
    let Some(recorded) = dropin::recorded_vendor_hash(text) else {
        return Probe::new(
            name,
            State::Unknown,
            "the drop-in header records no vendor hash",
        );
    };
    match current {
        Err(e) => Probe::new(name, State::Unknown, e.clone()),
        Ok((hash, source)) if hash == recorded => Probe::new(
            name,
            State::Ok,
            format!("the vendor command line ({source}) is the one the drop-in was written from"),
        ),
        Ok((hash, source)) => Probe::new(
            name,
            State::Warning,
            format!(
                "the vendor command line ({source}) changed since `kaudit-node apply` (sha256 {}… recorded, {}… now): the drop-in still runs the old one; see `kaudit-node plan`, then apply",
                &recorded[..recorded.len().min(12)],
                &hash[..hash.len().min(12)]
            ),
        ),
    }
}

/// The apiserver binary against the identity recorded at apply: a binary
/// replaced since (an upgrade) is a warning, with both releases; while the
/// running process started before the replacement, it still runs the old
/// release.
pub fn apiserver(
    dropin_text: Option<&str>,
    current: &Result<Identity, (crate::error::ExitCode, String)>,
    binary_mtime: Option<SystemTime>,
    started: Option<(u32, SystemTime)>,
) -> Probe {
    let name = "apiserver";
    let Some(rec) = dropin_text.and_then(identity::recorded) else {
        return Probe::new(
            name,
            State::Ok,
            "no identity recorded in the drop-in (`kaudit-node apply` records it)",
        );
    };
    if rec.configured {
        return Probe::new(
            name,
            State::Ok,
            format!(
                "{} ({}), as apiserver.version says",
                rec.version,
                rec.binary.display()
            ),
        );
    }
    let now = match current {
        // What this user may not read is not a finding.
        Err((crate::error::ExitCode::NoPerm | crate::error::ExitCode::IoErr, e)) => {
            return Probe::new(name, State::Unknown, e.clone());
        }
        Err((_, e)) => {
            return Probe::new(
                name,
                State::Warning,
                format!(
                    "{} {} was recorded at apply, but now: {e}",
                    rec.binary.display(),
                    rec.version
                ),
            );
        }
        Ok(id) => id,
    };
    if now.binary == rec.binary && now.file.is_some() && now.file == rec.file {
        return Probe::new(
            name,
            State::Ok,
            format!(
                "{} {}, as recorded at apply",
                now.binary.display(),
                now.version
            ),
        );
    }
    let older = match (started, binary_mtime) {
        (Some((pid, start)), Some(mtime)) if start < mtime => Some(pid),
        _ => None,
    };
    let reason = match older {
        Some(pid) => format!(
            "{} changed since `kaudit-node apply`: {} was recorded, {} is on disk now, and PID {pid} started before the change, so it still runs {}; restart {} to run {}, after `kaudit-node apply` has checked its flags against it",
            now.binary.display(),
            rec.version,
            now.version,
            rec.version,
            "the apiserver",
            now.version
        ),
        None => format!(
            "the recorded identity no longer matches: {} was recorded ({}), {} is there now ({}); run `kaudit-node apply` to check the flags against it and record it",
            rec.version,
            rec.binary.display(),
            now.version,
            now.binary.display()
        ),
    };
    Probe::new(name, State::Warning, reason)
}

/// The names lumberjack gives backups of `log`, as a language: the log's
/// stem, `-`, a UTC timestamp `2006-01-02T15-04-05.000`, its extension,
/// and `.gz` when compressed (natefinch/lumberjack `backupName`,
/// `backupTimeFormat`). Each position holds the bytes it may: digits, or
/// the one literal byte.
pub fn backup_language(log: &Path, gz: bool) -> Vec<Vec<u8>> {
    let (stem, ext) = stem_and_ext(log);
    let lit = |s: &str| s.bytes().map(|b| vec![b]).collect::<Vec<_>>();
    let mut out = lit(&format!("{stem}-"));
    for c in "dddd-dd-ddTdd-dd-dd.ddd".bytes() {
        out.push(if c == b'd' {
            (b'0'..=b'9').collect()
        } else {
            vec![c]
        });
    }
    out.extend(lit(&ext));
    if gz {
        out.extend(lit(".gz"));
    }
    out
}

/// The parts of the log's name around lumberjack's timestamp: `audit`
/// and `.log` of `audit.log`.
fn stem_and_ext(log: &Path) -> (String, String) {
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = log
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, ext)
}

/// Whether `name` (a file name) is a backup of `log`.
pub fn is_backup_name(log: &Path, name: &str) -> bool {
    [false, true].into_iter().any(|gz| {
        let lang = backup_language(log, gz);
        lang.len() == name.len()
            && lang
                .iter()
                .zip(name.bytes())
                .all(|(set, c)| set.contains(&c))
    })
}

/// Rotation conflicts. When the apiserver owns rotation, any logrotate
/// rule whose pattern matches the log or its `audit-<timestamp>.log`
/// backups is critical (kaudit-node's own snippet included: it is left from
/// logrotate mode). When logrotate owns it, kaudit-node's snippet is
/// expected and any other rule for the log is critical.
///
/// A pattern conflicts with the backups when it can match *some* backup
/// name (the glob intersected with [`backup_language`]), or one of the
/// backup files actually there (`present`, full paths).
pub fn rotation(
    rotation: Rotation,
    log: &Path,
    snippet: &Path,
    rules: &Result<Vec<Rule>, String>,
    present: &[String],
) -> Probe {
    let name = "rotation";
    let rules = match rules {
        Err(e) => return Probe::new(name, State::Unknown, e.clone()),
        Ok(r) => r,
    };
    let live = log.display().to_string();
    let dir = log.parent().unwrap_or(Path::new("/")).display().to_string();
    let (stem, ext) = stem_and_ext(log);
    let language = format!("{dir}/{stem}-<timestamp>{ext}[.gz]");
    let mut f = Findings::default();
    let mut ours_found = false;
    for r in rules {
        for pat in &r.patterns {
            let hit: Option<String> = if glob::matches(pat, &live) {
                Some(live.clone())
            } else if rotation == Rotation::Apiserver {
                present
                    .iter()
                    .find(|b| glob::matches(pat, b))
                    .cloned()
                    .or_else(|| {
                        [false, true]
                            .into_iter()
                            .any(|gz| glob::matches_some_name(pat, &dir, &backup_language(log, gz)))
                            .then(|| language.clone())
                    })
            } else {
                None
            };
            let Some(t) = hit else {
                continue;
            };
            if rotation == Rotation::Logrotate && r.ours && r.file == snippet {
                ours_found = true;
                continue;
            }
            let what = if *t == live {
                "the audit log".to_string()
            } else {
                format!("its backups ({t})")
            };
            let why = match rotation {
                Rotation::Apiserver => {
                    "the apiserver owns rotation (log.rotation = \"apiserver\"): two rotators lose events"
                }
                Rotation::Logrotate => {
                    "kaudit-node's snippet already rotates it: logrotate refuses duplicate entries"
                }
            };
            f.add(
                State::Critical,
                format!(
                    "{}:{}: \"{pat}\" matches {what}; {why}",
                    r.file.display(),
                    r.line
                ),
            );
        }
    }
    if rotation == Rotation::Logrotate && !ours_found {
        f.add(
            State::Warning,
            format!("log.rotation = \"logrotate\" but {} has no rule for {live}: run `kaudit-node apply`", snippet.display()),
        );
    }
    let ok = match rotation {
        Rotation::Apiserver => {
            format!("no logrotate rule matches {live} or its backups (the apiserver rotates)")
        }
        Rotation::Logrotate => format!("only {} rotates {live}", snippet.display()),
    };
    f.probe(name, ok)
}

/// CIS 1.2.16–1.2.19 on the effective (last) flags of the running process:
/// path set, maxage ≥ 30, maxbackup ≥ 10, maxsize ≥ 100. A warning when
/// not met; with duplicates, what kube-bench (first occurrence) reads is
/// named too.
pub fn cis(argv: &Argv) -> Probe {
    let name = "cis";
    let argv = match argv {
        None => return Probe::new(name, State::Unknown, "no main process to read"),
        Some((pid, Err(e))) => return Probe::new(name, State::Unknown, format!("PID {pid}: {e}")),
        Some((_, Ok(a))) => a,
    };
    let mut f = Findings::default();
    let checks: [(&str, &str, Option<u64>); 4] = [
        ("1.2.16", "audit-log-path", None),
        ("1.2.17", "audit-log-maxage", Some(CIS_MAXAGE as u64)),
        ("1.2.18", "audit-log-maxbackup", Some(CIS_MAXBACKUP as u64)),
        ("1.2.19", "audit-log-maxsize", Some(CIS_MAXSIZE)),
    ];
    for (id, flag, min) in checks {
        let values = verify::occurrences(argv, flag, false);
        let passes = |v: &str| match min {
            None => !v.is_empty() && v != "-",
            Some(m) => v.parse::<u64>().is_ok_and(|n| n >= m),
        };
        let want = match min {
            None => "set".to_string(),
            Some(m) => format!("≥ {m}"),
        };
        match (values.first(), values.last()) {
            (_, None) => f.add(State::Warning, format!("CIS {id}: --{flag} is not set")),
            (_, Some(last)) if !passes(last) => {
                f.add(State::Warning, format!("CIS {id}: --{flag}={last}, want {want}"))
            }
            (Some(first), _) if !passes(first) => f.add(
                State::Warning,
                format!("CIS {id}: --{flag}={first} comes first (kube-bench reads it and fails) though the effective value passes"),
            ),
            _ => {}
        }
    }
    f.probe(name, "CIS 1.2.16-1.2.19 pass on the effective flags")
}
