//! Reading the node, under a [`Root`], into [`Observed`]: everything
//! [`crate::plan::plan`] needs, so planning itself does no I/O.
//!
//! Only files are read here; systemd's runtime view (D-Bus) is for apply
//! and check.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::apiserver::identity::{self, Identity};
use crate::config::{PolicySource, Settings};
use crate::error::{Error, Result};
use crate::root::Root;
use crate::unit::{self, UnitView};

/// The largest policy file kaudit-node reads (4 MiB; upstream's presets are
/// a few KiB).
pub const MAX_POLICY_BYTES: u64 = 4 << 20;

/// What a path on the node is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathState {
    Missing,
    File {
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A symlink or a special file: kaudit-node never writes through these.
    Other {
        what: &'static str,
    },
}

impl PathState {
    pub fn read(root: &Root, node: &Path, with_content: bool) -> Result<PathState> {
        let host = root.host_path(node);
        let md = match std::fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PathState::Missing),
            Err(e) => return Err(Error::read(&node.display().to_string(), &e)),
        };
        let ft = md.file_type();
        let mode = md.permissions().mode() & 0o7777;
        if ft.is_symlink() {
            Ok(PathState::Other {
                what: "a symbolic link",
            })
        } else if ft.is_dir() {
            Ok(PathState::Dir {
                mode,
                uid: md.uid(),
                gid: md.gid(),
            })
        } else if ft.is_file() {
            let content = if with_content {
                root.read(node)?
            } else {
                Vec::new()
            };
            Ok(PathState::File {
                content,
                mode,
                uid: md.uid(),
                gid: md.gid(),
            })
        } else {
            Ok(PathState::Other {
                what: "a special file",
            })
        }
    }
}

/// A passwd or group entry: name → (id, primary gid for users).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub users: BTreeMap<String, (u32, u32)>,
    pub groups: BTreeMap<String, u32>,
}

impl Accounts {
    /// Parses `/etc/passwd` and `/etc/group` text (pure).
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let mut a = Accounts::default();
        for line in passwd.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse())
            {
                a.users.entry(f[0].to_string()).or_insert((uid, gid));
            }
        }
        for line in group.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3
                && let Ok(gid) = f[2].parse()
            {
                a.groups.entry(f[0].to_string()).or_insert(gid);
            }
        }
        a
    }

    pub fn user(&self, name: &str) -> Option<(u32, u32)> {
        self.users.get(name).copied().or_else(|| {
            let uid: u32 = name.parse().ok()?;
            self.users
                .values()
                .find(|(u, _)| *u == uid)
                .copied()
                .or(Some((uid, uid)))
        })
    }

    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied().or_else(|| name.parse().ok())
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .iter()
            .find(|(_, g)| **g == gid)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| gid.to_string())
    }
}

/// The node as kaudit-node found it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub unit: UnitView,
    pub accounts: Accounts,
    /// Every path the plan may touch, with its state.
    pub paths: BTreeMap<PathBuf, PathState>,
    /// The user's policy file (`policy.file`), when configured.
    pub policy_source: Option<(PathBuf, Vec<u8>)>,
    /// The kube-apiserver the unit runs, and its release.
    pub identity: Identity,
}

impl Observed {
    pub fn state(&self, p: &Path) -> &PathState {
        self.paths.get(p).unwrap_or(&PathState::Missing)
    }
}

/// What `remove` depends on: kaudit-node's files as they are, and which
/// policy files the vendor's own command line names.
#[derive(Debug, Clone)]
pub struct ForRemoval {
    /// The drop-in, the logrotate snippet and the policy the drop-in names.
    pub paths: BTreeMap<PathBuf, PathState>,
    /// The vendor command line's `--audit-policy-file` values (read only
    /// when the drop-in names a policy), or why the unit could not be read.
    pub vendor_policy_files: std::result::Result<Vec<PathBuf>, String>,
}

impl ForRemoval {
    pub fn state(&self, p: &Path) -> &PathState {
        self.paths.get(p).unwrap_or(&PathState::Missing)
    }
}

/// Reads what the removal plan depends on. Unlike [`observe`], a unit that
/// cannot be read is no error: removing kaudit-node's files needs neither
/// the vendor command line nor the apiserver's identity.
pub fn observe_removal(root: &Root, settings: &Settings) -> Result<ForRemoval> {
    let dropin = crate::dropin::path(&settings.unit);
    let mut paths = BTreeMap::new();
    for p in [&dropin, &settings.logrotate.path] {
        paths.insert(p.clone(), PathState::read(root, p, true)?);
    }
    let policy = match paths.get(&dropin) {
        Some(PathState::File { content, .. }) => crate::dropin::policy_path(&dropin, content),
        _ => None,
    };
    // The unit is read only to know whether the vendor keeps that policy.
    let mut vendor_policy_files = Ok(Vec::new());
    if let Some(policy) = policy {
        vendor_policy_files = unit::load(root, &settings.unit, crate::dropin::NAME)
            .map(|v| {
                v.vendor_audit_flag_values("audit-policy-file")
                    .iter()
                    .map(PathBuf::from)
                    .collect()
            })
            .map_err(|e| e.message);
        let st = PathState::read(root, &policy, true)?;
        paths.insert(policy, st);
    }
    Ok(ForRemoval {
        paths,
        vendor_policy_files,
    })
}

/// Reads everything the plan for `settings` depends on.
pub fn observe(root: &Root, settings: &Settings) -> Result<Observed> {
    let unit = unit::load(root, &settings.unit, crate::dropin::NAME)?;
    let text = |p: &str| -> Result<String> {
        Ok(root
            .read_optional(Path::new(p))?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let accounts = Accounts::parse(&text("/etc/passwd")?, &text("/etc/group")?);

    let mut paths = BTreeMap::new();
    let dropin = crate::dropin::path(&settings.unit);
    let mut with_content = vec![
        dropin.clone(),
        settings.policy_path.clone(),
        settings.logrotate.path.clone(),
    ];
    if let Some(w) = &settings.webhook {
        with_content.push(w.config.clone());
    }
    for p in with_content {
        let st = PathState::read(root, &p, true)?;
        paths.insert(p, st);
    }
    let log = &settings.log.path;
    let st = PathState::read(root, log, false)?;
    paths.insert(log.clone(), st);
    let ancestors = [
        log,
        &settings.policy_path,
        &dropin,
        &settings.logrotate.path,
    ];
    for dir in ancestors.iter().flat_map(|p| p.ancestors().skip(1)) {
        if dir != Path::new("/") && !paths.contains_key(dir) {
            let st = PathState::read(root, dir, false)?;
            paths.insert(dir.to_path_buf(), st);
        }
    }

    let policy_source = match &settings.policy {
        PolicySource::Preset(_) => None,
        PolicySource::File(p) => {
            // Read under the root like every node path, after a size check
            // so a huge file is refused before it is read.
            let host = root.host_path(p);
            match std::fs::metadata(&host) {
                Ok(md) if md.len() > MAX_POLICY_BYTES => {
                    return Err(Error::data(format!(
                        "{}: policy.file is {} bytes; kaudit-node refuses policies over {} bytes",
                        p.display(),
                        md.len(),
                        MAX_POLICY_BYTES
                    )));
                }
                Ok(md) if !md.is_file() => {
                    return Err(Error::data(format!(
                        "{}: policy.file is not a regular file",
                        p.display()
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    let mut err = Error::read(&format!("{}: policy.file", p.display()), &e);
                    err.message.push_str(&root.on_this_machine(p));
                    return Err(err);
                }
            }
            Some((p.clone(), root.read(p)?))
        }
    };

    let recorded = match paths.get(&dropin) {
        Some(PathState::File { content, .. }) => {
            Some(String::from_utf8_lossy(content).into_owned())
        }
        _ => None,
    };
    let identity = identity::identify(
        root,
        &unit,
        settings.apiserver.version.as_ref(),
        recorded.as_deref(),
    )?;

    Ok(Observed {
        unit,
        accounts,
        paths,
        policy_source,
        identity,
    })
}
