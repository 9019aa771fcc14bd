//! The plan: `plan(&Settings, &Observed) -> Plan`, pure.
//!
//! A plan lists every path kaudit-node wants on the node (the drop-in, the
//! policy, the logrotate snippet, the log directory and file), what each is
//! now, the files to remove, and the actions (daemon-reload, restart) the
//! changes need. It is deterministic: no timestamps, no paths of the
//! machine it was computed on. An empty plan means the node is converged.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::apiserver::identity::Identity;
use crate::apiserver::version;
use crate::config::{PolicySource, Rotation, Settings};
use crate::dropin;
use crate::error::{Error, Result};
use crate::flags::{self, Flag};
use crate::observe::{Observed, PathState};
use crate::policy;
use crate::unit::{self, Command, ProtectSystem};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    pub user: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A file with exactly this content.
    File,
    /// A directory.
    Directory,
    /// The audit log: created empty when missing, its content never touched.
    Log,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Unchanged,
    Create,
    /// Content differs (mode and owner are set too).
    Update,
    /// Only the mode or owner differs.
    Metadata,
}

/// One path kaudit-node wants on the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    /// What it is for, in a few words.
    pub purpose: &'static str,
    #[serde(serialize_with = "ser_mode")]
    pub mode: u32,
    pub owner: Owner,
    #[serde(skip)]
    pub content: Vec<u8>,
    #[serde(skip)]
    pub current: Option<Vec<u8>>,
    pub change: Change,
    /// The mode and owner it has now, when they differ (`0644 0:0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
}

fn ser_mode<S: serde::Serializer>(m: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{m:04o}"))
}

/// A file of kaudit-node's that is no longer wanted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removal {
    pub path: PathBuf,
    pub purpose: &'static str,
    #[serde(skip)]
    pub current: Vec<u8>,
    /// A file nothing uses once the drop-in is gone: failing to remove it is
    /// a warning, not a failure to roll back.
    #[serde(skip)]
    pub best_effort: bool,
}

/// What a plan is for: the executor carries out both the same way, and
/// proves each its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Audit logging on: the drop-in's command line runs, and logs.
    Apply,
    /// kaudit-node's files gone: the vendor command line runs.
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// systemd must re-read unit files (`Manager.Reload`).
    DaemonReload,
    /// The unit must restart to load new flags or a new policy.
    Restart { unit: String },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::DaemonReload => f.write_str("daemon-reload"),
            Action::Restart { unit } => write!(f, "restart {unit}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    pub purpose: Purpose,
    pub unit: String,
    /// Where the vendor command line was read from (`FILE:LINE`).
    pub vendor_source: String,
    /// The vendor command line's hash, recorded in the drop-in header.
    pub vendor_hash: String,
    /// The argv systemd will exec once the drop-in is loaded: the values
    /// apply compares with `ExecStart` over D-Bus and `/proc/PID/cmdline`
    /// (with `$VAR` words still unexpanded).
    pub argv: Vec<String>,
    /// kaudit-node's flags, as appended.
    pub flags: Vec<Flag>,
    /// `--audit-*` flags removed from the vendor command line.
    pub removed_flags: Vec<String>,
    pub entries: Vec<Entry>,
    pub removals: Vec<Removal>,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
    /// Facts worth showing with a change but not every run (vendor flags
    /// the drop-in replaces).
    pub notes: Vec<String>,
}

impl Plan {
    /// True when nothing would change: no write, no reload, no restart.
    pub fn is_converged(&self) -> bool {
        self.changes().next().is_none() && self.removals.is_empty() && self.actions.is_empty()
    }

    /// The planned entry for a path.
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    pub fn changes(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.change != Change::Unchanged)
    }
}

/// The hash of a vendor command line: over its prefixes and each word as
/// written, so reformatting (continuations, spacing) is not drift but any
/// change to a word is.
pub fn vendor_hash(cmd: &Command) -> String {
    let mut h = Sha256::new();
    h.update(cmd.prefixes.as_bytes());
    for w in &cmd.words {
        h.update([0u8]);
        h.update(w.raw.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn plan(s: &Settings, o: &Observed) -> Result<Plan> {
    let view = &o.unit;
    let mut warnings: Vec<String> = s.warnings.clone();
    warnings.extend(view.warnings.iter().cloned());
    refuse_unplannable(view)?;
    // The policy: validated strictly before anything else is decided.
    let policy = validated_policy(s, o, &mut warnings)?;
    let owners = owners(s, o)?;
    let log_dir = s
        .log
        .path
        .parent()
        .expect("validated: the log path has a parent")
        .to_path_buf();
    check_sandbox(s, view, &log_dir)?;
    let needs_rw = needs_read_write_path(view, &log_dir);
    let cmd = command_line(s, o, &mut warnings)?;

    let dropin_path = dropin::path(&s.unit);
    let dropin = dropin::render(&dropin::Contents {
        vendor_source: &cmd.vendor_source,
        vendor_hash: &cmd.hash,
        identity: &o.identity.header_line(),
        removed_flags: &cmd.removed_flags,
        exec_start: &cmd.exec_start,
        read_write: needs_rw.then_some(log_dir.as_path()),
    });

    // Entries, in the order apply writes them.
    let mut entries = directory_entries(s, o, &owners, &log_dir, &dropin_path)?;
    refuse_foreign_policy(s, o, &policy, &dropin_path)?;
    entries.push(entry(
        &s.policy_path,
        Kind::File,
        "audit policy",
        if owners.service_uid == 0 {
            0o600
        } else {
            0o640
        },
        owners.policy.clone(),
        policy.bytes,
        o.state(&s.policy_path),
    )?);
    let mut removals = Vec::new();
    match s.log.rotation {
        Rotation::Logrotate => {
            let snippet = render_logrotate(s, &owners.log);
            entries.push(entry(
                &s.logrotate.path,
                Kind::File,
                "logrotate snippet",
                0o644,
                owners.root.clone(),
                snippet.into_bytes(),
                o.state(&s.logrotate.path),
            )?);
        }
        Rotation::Apiserver => {
            if let PathState::File { content, .. } = o.state(&s.logrotate.path) {
                if dropin::is_ours(content) {
                    removals.push(Removal {
                        path: s.logrotate.path.clone(),
                        purpose: "logrotate snippet (the apiserver owns rotation)",
                        current: content.clone(),
                        best_effort: false,
                    });
                } else {
                    warnings.push(format!(
                        "{}: exists and was not written by kaudit-node; with log.rotation = \"apiserver\" no logrotate rule may match the audit log",
                        s.logrotate.path.display()
                    ));
                }
            }
        }
    }
    entries.push(entry(
        &s.log.path,
        Kind::Log,
        "audit log",
        s.log.file_mode,
        owners.log.clone(),
        Vec::new(),
        o.state(&s.log.path),
    )?);
    // The drop-in last: it is what switches systemd to the new command line,
    // so a crash before it leaves systemd on the old configuration, whole.
    entries.push(entry(
        &dropin_path,
        Kind::File,
        "systemd drop-in",
        0o644,
        owners.root.clone(),
        dropin.into_bytes(),
        o.state(&dropin_path),
    )?);

    if let Some(w) = &s.webhook {
        check_webhook(
            &w.config,
            o.state(&w.config),
            owners.service_uid,
            owners.service_gid,
        )?;
    }
    let actions = actions(s, o, &entries, &dropin_path);
    Ok(Plan {
        purpose: Purpose::Apply,
        unit: s.unit.clone(),
        vendor_source: cmd.vendor_source,
        vendor_hash: cmd.hash,
        argv: cmd.argv,
        flags: cmd.flags,
        removed_flags: cmd.removed_flags,
        entries,
        removals,
        actions,
        warnings,
        notes: cmd.notes,
    })
}

/// What no plan can be made for: a later drop-in that overrides ours, and
/// `DynamicUser=yes`.
fn refuse_unplannable(view: &unit::UnitView) -> Result<()> {
    if !view.overriding_dropins.is_empty() {
        let list: Vec<String> = view
            .overriding_dropins
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(Error::data(format!(
            "{}: sets ExecStart= and sorts after kaudit-node's drop-in {}, so it would override the audit flags; \
             move that ExecStart= into a drop-in named to sort before \"{}\" (kaudit-node then keeps its command line), or delete it",
            list.join(", "),
            view.ours.display(),
            dropin::NAME
        )));
    }
    if view.dynamic_user {
        return Err(Error::data(format!(
            "{}: DynamicUser=yes is not supported: the audit log directory would need LogsDirectory= and an ephemeral owner",
            view.fragment.display()
        )));
    }

    Ok(())
}

/// The policy to install, from a preset or `policy.file`, validated
/// strictly; its lints become warnings.
struct Policy {
    label: String,
    bytes: Vec<u8>,
}

fn validated_policy(s: &Settings, o: &Observed, warnings: &mut Vec<String>) -> Result<Policy> {
    let (policy_label, policy_bytes): (String, Vec<u8>) = match &s.policy {
        PolicySource::Preset(p) => (
            format!("preset \"{}\"", p.name()),
            p.text().as_bytes().to_vec(),
        ),
        PolicySource::File(path) => {
            let (_, bytes) = o.policy_source.as_ref().ok_or_else(|| {
                Error::no_input(format!("{}: policy.file was not read", path.display()))
            })?;
            (path.display().to_string(), bytes.clone())
        }
    };
    let report = policy::validate(&policy_label, &policy_bytes);
    if !report.is_ok(false) {
        return Err(Error::data(format!(
            "the audit policy is invalid; nothing was changed:\n{}",
            report.render_text(false).trim_end()
        )));
    }
    warnings.extend(report.warnings().map(|d| {
        format!(
            "policy {}:{}:{}: {}",
            policy_label, d.line, d.column, d.message
        )
    }));

    Ok(Policy {
        label: policy_label,
        bytes: policy_bytes,
    })
}

/// Who owns what kaudit-node writes: root its files, the service's user
/// the log (with `log.group`, or the service's group), and the policy
/// root:the service's group when the service is not root.
struct Owners {
    root: Owner,
    log: Owner,
    policy: Owner,
    service_uid: u32,
    service_gid: u32,
}

fn owners(s: &Settings, o: &Observed) -> Result<Owners> {
    let view = &o.unit;
    // A unit without User= runs as uid 0 (and gid 0), whatever
    // /etc/passwd says: only a user the unit names is looked up.
    let (svc_user, svc_uid, svc_primary_gid) = match &view.user {
        None => ("root".to_string(), 0, 0),
        Some(u) => {
            let (uid, gid) = o.accounts.user(u).ok_or_else(|| {
                Error::data(format!(
                    "{}: User={u} does not exist in /etc/passwd; create the user before applying",
                    view.fragment.display()
                ))
            })?;
            (u.clone(), uid, gid)
        }
    };
    let (svc_group, svc_gid) = match &view.group {
        Some(g) => (
            g.clone(),
            o.accounts.group(g).ok_or_else(|| {
                Error::data(format!(
                    "{}: Group={g} does not exist in /etc/group",
                    view.fragment.display()
                ))
            })?,
        ),
        None => (o.accounts.group_name(svc_primary_gid), svc_primary_gid),
    };
    let (log_group, log_gid) = match &s.log.group {
        Some(g) => (
            g.clone(),
            o.accounts.group(g).ok_or_else(|| {
                Error::config(format!("log.group = \"{g}\" does not exist in /etc/group"))
            })?,
        ),
        None => (svc_group.clone(), svc_gid),
    };
    let root_owner = Owner {
        user: "root".into(),
        uid: 0,
        group: o.accounts.group_name(0),
        gid: 0,
    };
    let svc_is_root = svc_uid == 0;
    let log_owner = Owner {
        user: svc_user.clone(),
        uid: svc_uid,
        group: log_group,
        gid: log_gid,
    };
    let policy_owner = if svc_is_root {
        root_owner.clone()
    } else {
        Owner {
            gid: svc_gid,
            group: svc_group.clone(),
            ..root_owner.clone()
        }
    };

    Ok(Owners {
        root: root_owner,
        log: log_owner,
        policy: policy_owner,
        service_uid: svc_uid,
        service_gid: svc_gid,
    })
}

/// The drop-in's command line: the vendor's, its `--audit-*` flags taken
/// off (each a note, and a warning when kaudit-node's value differs), and
/// kaudit-node's flags for the node's release appended last.
struct CommandLine {
    vendor_source: String,
    hash: String,
    argv: Vec<String>,
    flags: Vec<Flag>,
    removed_flags: Vec<String>,
    /// The whole `ExecStart=` value, quoted for systemd.
    exec_start: String,
    notes: Vec<String>,
}

fn command_line(s: &Settings, o: &Observed, warnings: &mut Vec<String>) -> Result<CommandLine> {
    let view = &o.unit;
    let (vendor, removed) = view.exec_start.strip_audit_flags();
    let removed_flags: Vec<String> = removed.iter().map(|r| r.raw.clone()).collect();
    let mut notes = Vec::new();
    for r in &removed {
        notes.push(format!(
            "{}:{}: removed vendor flag {} from the command line: kaudit-node's flags replace it",
            view.exec_start_source.0.display(),
            view.exec_start_source.1,
            r.raw
        ));
    }
    for e in &view.env_audit_flags {
        warnings.push(format!(
            "{e}: kaudit-node's flags come last and win, but tools that read the first occurrence (kube-bench) will report the old value; remove it from there"
        ));
    }
    let mut flag_list = flags::audit_flags(s);
    version::adapt(&o.identity.version, &mut flag_list);
    refuse_unsupported(s, &o.identity, &flag_list)?;
    warn_replaced(
        &removed,
        &flag_list,
        &format!(
            "{}:{}",
            view.exec_start_source.0.display(),
            view.exec_start_source.1
        ),
        warnings,
    );
    let quoted: Vec<String> = flag_list
        .iter()
        .map(|f| unit::quote_word(&f.arg()))
        .collect::<Result<_>>()?;
    let mut argv = vendor.argv_values();
    argv.extend(flag_list.iter().map(Flag::arg));
    let hash = vendor_hash(&view.exec_start);
    let vendor_source = format!(
        "{}:{}",
        view.exec_start_source.0.display(),
        view.exec_start_source.1
    );

    Ok(CommandLine {
        vendor_source,
        hash,
        argv,
        flags: flag_list,
        removed_flags,
        exec_start: unit::render_exec_start(&vendor, &quoted),
        notes,
    })
}

/// The directories on the way to every file kaudit-node writes: created
/// when missing (root's, 0755), never changed, and refused when another
/// user could write them; the log directory is managed (mode and owner).
fn directory_entries(
    s: &Settings,
    o: &Observed,
    owners: &Owners,
    log_dir: &Path,
    dropin_path: &Path,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let dir_owner = |p: &Path| {
        if p == log_dir {
            owners.log.clone()
        } else {
            owners.root.clone()
        }
    };
    let mut dirs: Vec<&Path> = Vec::new();
    let snippet_dir = (s.log.rotation == Rotation::Logrotate)
        .then(|| s.logrotate.path.parent())
        .flatten();
    for base in [
        dropin_path.parent(),
        s.policy_path.parent(),
        snippet_dir,
        Some(log_dir),
    ]
    .into_iter()
    .flatten()
    {
        let mut anc: Vec<&Path> = base.ancestors().filter(|a| *a != Path::new("/")).collect();
        anc.reverse();
        for a in anc {
            if !dirs.contains(&a) {
                dirs.push(a);
            }
        }
    }
    for d in dirs {
        let managed = d == log_dir;
        let state = o.state(d);
        // Directories other than the log directory are only created, never changed.
        if !managed {
            match state {
                PathState::Missing => {}
                // Refused here, before anything is written, as the writer
                // would refuse it (effects::check_parents).
                PathState::Dir { mode, uid, .. } => match shared_dir_error(d, *mode, *uid) {
                    Some(e) => return Err(e),
                    None => continue,
                },
                PathState::File { .. } => {
                    return Err(Error::data(format!(
                        "{}: is a file, where kaudit-node needs a directory",
                        d.display()
                    )));
                }
                PathState::Other { what } => {
                    return Err(Error::data(format!(
                        "{}: is {what}, where kaudit-node needs a directory",
                        d.display()
                    )));
                }
            }
        }
        let (mode, purpose) = if managed {
            (s.log.dir_mode, "audit log directory")
        } else {
            (0o755, "parent directory")
        };
        entries.push(entry(
            d,
            Kind::Directory,
            purpose,
            mode,
            dir_owner(d),
            Vec::new(),
            state,
        )?);
    }
    Ok(entries)
}

/// A policy file kaudit-node did not install is never overwritten: an
/// existing file at policy.path with other content is someone else's
/// unless kaudit-node's drop-in already names it.
fn refuse_foreign_policy(
    s: &Settings,
    o: &Observed,
    policy: &Policy,
    dropin_path: &Path,
) -> Result<()> {
    let view = &o.unit;
    let policy_label = &policy.label;
    if let PathState::File { content, .. } = o.state(&s.policy_path)
        && *content != policy.bytes
        && !matches!(o.state(dropin_path), PathState::File { content: d, .. }
            if dropin::policy_path(dropin_path, d).as_deref() == Some(s.policy_path.as_path()))
    {
        let p = s.policy_path.display();
        let used = if view
            .vendor_audit_flag_values("audit-policy-file")
            .iter()
            .any(|v| Path::new(v) == s.policy_path)
        {
            format!(
                " ({}'s own command line uses it: --audit-policy-file)",
                view.name
            )
        } else {
            String::new()
        };
        return Err(Error::data(format!(
            "{p}: exists and was not installed by kaudit-node{used}; kaudit-node does not overwrite it. \
             To keep using it: policy.file = \"{p}\" in the configuration. To install {policy_label} \
             instead: move the file away, or set policy.path to another file"
        )));
    }
    Ok(())
}

/// A reload when the drop-in changes; a restart when the drop-in's command
/// line or the policy changes. A drop-in that differs only in the recorded
/// identity (the binary was replaced, same command line) needs a reload
/// for systemd to see the new file, but the running apiserver is already
/// right: no restart.
fn actions(s: &Settings, o: &Observed, entries: &[Entry], dropin_path: &Path) -> Vec<Action> {
    let changed = |p: &Path| {
        entries
            .iter()
            .any(|e| e.path == p && matches!(e.change, Change::Create | Change::Update))
    };
    // A drop-in that differs only in the recorded identity (the binary was
    // replaced, same command line) needs a reload for systemd to see the
    // new file, but the running apiserver is already right: no restart.
    let only_identity = match o.state(dropin_path) {
        PathState::File { content, .. } => {
            let new = entries.last().map(|e| e.content.as_slice()).unwrap_or(&[]);
            dropin::differ_only_in_identity(content, new)
        }
        _ => false,
    };
    let mut actions = Vec::new();
    if changed(dropin_path) {
        actions.push(Action::DaemonReload);
    }
    if (changed(dropin_path) && !only_identity) || changed(&s.policy_path) {
        actions.push(Action::Restart {
            unit: s.unit.clone(),
        });
    }

    actions
}

/// The plan of `remove`: kaudit-node's files go (the drop-in first: once
/// it is gone the others are unused), then systemd reloads and the unit
/// restarts on the vendor command line. Pure, like [`plan`].
///
/// The policy the drop-in names goes too, unless `keep_policy`, or it is
/// the user's own (`policy.file`), or the vendor command line uses it, or
/// the unit could not be read to know (kept, with a note saying why).
pub fn plan_remove(s: &Settings, o: &crate::observe::ForRemoval, keep_policy: bool) -> Plan {
    let dropin_path = dropin::path(&s.unit);
    let mut removals = Vec::new();
    let mut notes = Vec::new();
    let ours = |p: &Path| match o.state(p) {
        PathState::File { content, .. } if dropin::is_ours(content.as_slice()) => {
            Some(content.clone())
        }
        _ => None,
    };
    let dropin_text = ours(&dropin_path);
    if let Some(text) = &dropin_text {
        if let Some(policy) = dropin::policy_path(&dropin_path, text) {
            let kept_because = if matches!(&s.policy, PolicySource::File(f) if *f == policy) {
                Some("it is policy.file, your own policy".to_string())
            } else {
                match &o.vendor_policy_files {
                    Ok(files) if files.contains(&policy) => Some(format!(
                        "{}'s own command line uses it (--audit-policy-file)",
                        s.unit
                    )),
                    Ok(_) => None,
                    Err(e) => Some(format!(
                        "the unit could not be read to see whether its own command line uses it ({e})"
                    )),
                }
            };
            let current = match o.state(&policy) {
                PathState::File { content, .. } => Some(content.clone()),
                _ => None,
            };
            match (keep_policy, kept_because, current) {
                (false, Some(why), _) => notes.push(format!("kept {}: {why}", policy.display())),
                (false, None, Some(current)) => removals.push(Removal {
                    path: policy,
                    purpose: "audit policy",
                    current,
                    best_effort: true,
                }),
                _ => {}
            }
        }
        removals.insert(
            0,
            Removal {
                path: dropin_path,
                purpose: "systemd drop-in (the vendor command line runs again)",
                current: text.clone(),
                best_effort: false,
            },
        );
    }
    if let Some(current) = ours(&s.logrotate.path) {
        removals.push(Removal {
            path: s.logrotate.path.clone(),
            purpose: "logrotate snippet",
            current,
            best_effort: true,
        });
    }
    // Only the drop-in changes what systemd runs.
    let actions = if dropin_text.is_some() {
        vec![
            Action::DaemonReload,
            Action::Restart {
                unit: s.unit.clone(),
            },
        ]
    } else {
        Vec::new()
    };
    Plan {
        purpose: Purpose::Remove,
        unit: s.unit.clone(),
        vendor_source: String::new(),
        vendor_hash: String::new(),
        argv: Vec::new(),
        flags: Vec::new(),
        removed_flags: Vec::new(),
        entries: Vec::new(),
        removals,
        actions,
        warnings: Vec::new(),
        notes,
    }
}

fn entry(
    path: &Path,
    kind: Kind,
    purpose: &'static str,
    mode: u32,
    owner: Owner,
    content: Vec<u8>,
    state: &PathState,
) -> Result<Entry> {
    let bad = |what: &str| Error::data(format!("{}: is {what}", path.display()));
    // The mode and owner it has now, when they differ from the plan's.
    let was = |m: u32, uid: u32, gid: u32| {
        ((m, uid, gid) != (mode, owner.uid, owner.gid)).then(|| format!("{m:04o} {uid}:{gid}"))
    };
    let (change, current, was) = match (state, &kind) {
        (PathState::Missing, _) => (Change::Create, None, None),
        (PathState::Other { what }, _) => {
            return Err(bad(&format!(
                "{what}; kaudit-node does not write through symbolic links or special files"
            )));
        }
        (PathState::Dir { .. }, Kind::File | Kind::Log) => {
            return Err(bad("a directory, where kaudit-node needs a file"));
        }
        (PathState::File { .. }, Kind::Directory) => {
            return Err(bad("a file, where kaudit-node needs a directory"));
        }
        // Directories and the log: only their mode and owner are managed.
        (PathState::Dir { mode: m, uid, gid }, Kind::Directory)
        | (
            PathState::File {
                mode: m, uid, gid, ..
            },
            Kind::Log,
        ) => {
            let was = was(*m, *uid, *gid);
            let change = if was.is_some() {
                Change::Metadata
            } else {
                Change::Unchanged
            };
            (change, None, was)
        }
        (
            PathState::File {
                content: c,
                mode: m,
                uid,
                gid,
            },
            Kind::File,
        ) => {
            let was = was(*m, *uid, *gid);
            let change = if *c != content {
                Change::Update
            } else if was.is_some() {
                Change::Metadata
            } else {
                Change::Unchanged
            };
            (change, Some(c.clone()), was)
        }
    };
    Ok(Entry {
        path: path.to_path_buf(),
        kind,
        purpose,
        mode,
        owner,
        content,
        current,
        change,
        was,
    })
}

/// Paths the unit's sandbox hides or makes unwritable in a way a
/// `ReadWritePaths=` line cannot fix.
fn check_sandbox(s: &Settings, view: &unit::UnitView, log_dir: &Path) -> Result<()> {
    let under = |p: &Path, prefix: &str| p.starts_with(prefix);
    let unit_file = view.fragment.display();
    for (what, p) in [
        ("log.path", log_dir),
        ("policy.path", s.policy_path.as_path()),
    ] {
        for ip in &view.inaccessible_paths {
            let ip = ip.trim_start_matches(['-', '+']);
            if p.starts_with(ip) {
                return Err(Error::data(format!(
                    "{unit_file}: InaccessiblePaths={ip} hides {what} {} from the service",
                    p.display()
                )));
            }
        }
        if view.private_tmp && (under(p, "/tmp") || under(p, "/var/tmp")) {
            return Err(Error::data(format!(
                "{unit_file}: PrivateTmp=yes gives the service its own /tmp and /var/tmp, so {what} {} would not be the file on the node",
                p.display()
            )));
        }
        if let Some(ph) = &view.protect_home
            && ph != "no"
            && ph != "false"
            && (under(p, "/home") || under(p, "/root") || under(p, "/run/user"))
        {
            return Err(Error::data(format!(
                "{unit_file}: ProtectHome={ph} hides {what} {} from the service",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Whether the drop-in must add `ReadWritePaths=` for the log directory.
fn needs_read_write_path(view: &unit::UnitView, log_dir: &Path) -> bool {
    let under_any = |list: &[String]| {
        list.iter()
            .any(|p| log_dir.starts_with(p.trim_start_matches(['-', '+'])))
    };
    if under_any(&view.read_write_paths) {
        return false;
    }
    let read_only_by_protect = match view.protect_system {
        ProtectSystem::Strict => true,
        ProtectSystem::Full => ["/usr", "/boot", "/efi", "/etc"]
            .iter()
            .any(|p| log_dir.starts_with(p)),
        ProtectSystem::Yes => ["/usr", "/boot", "/efi"]
            .iter()
            .any(|p| log_dir.starts_with(p)),
        ProtectSystem::No => false,
    };
    read_only_by_protect || under_any(&view.read_only_paths)
}

fn check_webhook(path: &Path, state: &PathState, uid: u32, gid: u32) -> Result<()> {
    match state {
        PathState::Missing => Err(Error::no_input(format!(
            "{}: webhook.config does not exist",
            path.display()
        ))),
        PathState::Dir { .. } | PathState::Other { .. } => Err(Error::data(format!(
            "{}: webhook.config is not a regular file",
            path.display()
        ))),
        PathState::File {
            content,
            mode,
            uid: fu,
            gid: fg,
        } => {
            if mode & 0o007 != 0 {
                return Err(Error::data(format!(
                    "{}: webhook.config is accessible to every user (mode {mode:04o}) and holds credentials; run `chmod o-rwx {}`",
                    path.display(),
                    path.display()
                )));
            }
            let readable =
                uid == 0 || (*fu == uid && mode & 0o400 != 0) || (*fg == gid && mode & 0o040 != 0);
            if !readable {
                return Err(Error::data(format!(
                    "{}: webhook.config is not readable by the service user (uid {uid})",
                    path.display()
                )));
            }
            let text = std::str::from_utf8(content).map_err(|_| {
                Error::data(format!("{}: webhook.config is not UTF-8", path.display()))
            })?;
            crate::kubeconfig::check(text).map_err(|why| {
                Error::data(format!(
                    "{}: webhook.config is not a usable kubeconfig: {why}",
                    path.display()
                ))
            })
        }
    }
}

/// A vendor audit flag whose value kaudit-node changes, or drops, changes
/// what the apiserver does: a warning with both values. A moved log says
/// where the old file stays, for the log shippers that read it.
fn warn_replaced(
    removed: &[unit::RemovedFlag],
    ours: &[Flag],
    loc: &str,
    warnings: &mut Vec<String>,
) {
    for r in removed {
        let name = r.name.trim_start_matches("--");
        let vendor = r.value.as_deref().unwrap_or("true");
        match ours.iter().find(|f| f.name == name) {
            Some(f) if f.effective_value() == vendor => {}
            Some(f) if name == "audit-log-path" => warnings.push(format!(
                "{loc}: the audit log moves from {vendor} to {}: the old file stays where it is and gets no new events; log shippers and SIEM agents reading {vendor} must follow the new path",
                f.effective_value()
            )),
            Some(f) => warnings.push(format!(
                "{loc}: the vendor's {} becomes {} (kaudit-node's configuration)",
                r.raw,
                f.arg()
            )),
            None => warnings.push(format!(
                "{loc}: the vendor's {} is removed and not replaced (kube-apiserver's default applies); set it in kaudit-node's configuration to keep it",
                r.raw
            )),
        }
    }
}

/// The release the unit's kube-apiserver cannot run a flag kaudit-node
/// would write: refused before anything is written, naming the key.
fn refuse_unsupported(s: &Settings, id: &Identity, flags: &[Flag]) -> Result<()> {
    let bad = version::unsupported(&id.version, flags);
    if bad.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = bad
        .iter()
        .map(|u| {
            format!(
                "{}: {} {}; {} runs {} ({})",
                config_key(&u.flag),
                u.flag,
                u.needs,
                s.unit,
                id.version,
                id.binary.display()
            )
        })
        .collect();
    Err(Error::config(format!(
        "the configuration asks for what this node's kube-apiserver cannot run; nothing was changed:\n  {}",
        lines.join("\n  ")
    )))
}

/// The configuration key that makes kaudit-node write a flag.
fn config_key(flag: &str) -> String {
    let name = flag.trim_start_matches("--");
    let name = name.split('=').next().unwrap_or(name);
    let key = |prefix: &str, table: &str| {
        name.strip_prefix(prefix)
            .map(|k| format!("{table}.{}", k.replace('-', "_")))
    };
    key("audit-log-", "log")
        .or_else(|| key("audit-webhook-", "webhook"))
        .unwrap_or_else(|| name.to_string())
}

/// The logrotate snippet for `log.rotation = "logrotate"` (docs/reference.md,
/// Log rotation by logrotate).
pub fn render_logrotate(s: &Settings, owner: &Owner) -> String {
    let l = &s.log;
    let mut t = String::new();
    t.push_str(dropin::HEADER_MARK);
    t.push_str(" Do not edit: `kaudit-node apply` rewrites this file.\n");
    t.push_str("# logrotate owns rotation of this one file (log.rotation = \"logrotate\"); the\n");
    t.push_str("# apiserver's own rotation is made inert with --audit-log-maxsize=2000000000.\n");
    t.push_str("# copytruncate: kube-apiserver never reopens its log, so the file is copied,\n");
    t.push_str("# then truncated in place; lines written between the two steps are lost.\n");
    t.push_str("# No postrotate signal: SIGHUP kills kube-apiserver and SIGUSR1 does nothing.\n");
    t.push_str(&format!("{} {{\n", l.path.display()));
    t.push_str(&format!("    su {} {}\n", owner.user, owner.group));
    t.push_str(&format!("    {}\n", s.logrotate.frequency.as_str()));
    t.push_str(&format!("    maxsize {}M\n", l.maxsize));
    t.push_str(&format!("    rotate {}\n", l.maxbackup));
    if l.maxage > 0 {
        t.push_str(&format!("    maxage {}\n", l.maxage));
    }
    t.push_str("    copytruncate\n");
    if l.compress {
        t.push_str("    compress\n    delaycompress\n");
    } else {
        t.push_str("    nocompress\n");
    }
    t.push_str("    dateext\n    dateformat -%Y%m%d-%s\n    missingok\n    notifempty\n}\n");
    t
}

/// The error for a directory that users other than its owner can write
/// (group or others), unless it is root's and sticky (`/tmp`): another user
/// could swap what kaudit-node writes there.
pub fn shared_dir_error(dir: &Path, mode: u32, uid: u32) -> Option<Error> {
    let sticky_root = mode & 0o1000 != 0 && uid == 0;
    (mode & 0o022 != 0 && !sticky_root).then(|| {
        Error::data(format!(
            "{}: is writable by other users (mode {:04o}); kaudit-node does not write into directories others control",
            dir.display(),
            mode & 0o7777
        ))
    })
}
