//! Trusted inputs: what decides the policy the apiserver enforces, and
//! whether an audit log exists at all, must not be writable by anyone but
//! root (and the user running kaudit-node, as sshd's StrictModes accepts
//! the user's own files).
//!
//! A file is trusted when uid 0 or the effective uid owns it, others cannot
//! write it, and its group can write it only when that group is gid 0; the
//! same holds for every directory from `/` down to it. A directory others
//! can write is never trusted, sticky or not (`/tmp`). Symlinks are
//! followed, and the chain of the target is checked too. Paths are node
//! paths, read under the root.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::config::{PolicySource, Settings};
use crate::error::{Error, ExitCode, Result};
use crate::root::Root;

/// Symlinks followed at most, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// One untrusted path, with what makes it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// What the file is for: "the configuration", "policy.file".
    pub what: String,
    /// The file whose chain this is.
    pub file: PathBuf,
    /// The path that is not trusted (the file or a directory above it).
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub is_dir: bool,
}

impl Untrusted {
    pub fn message(&self) -> String {
        let mut why = Vec::new();
        let mut fix = Vec::new();
        let p = self.path.display();
        if !owner_ok(self.uid) {
            why.push(format!("owned by uid {}", self.uid));
            fix.push(format!("chown root:root {p}"));
        }
        if self.mode & 0o002 != 0 || (self.mode & 0o020 != 0 && self.gid != 0) {
            why.push(if self.mode & 0o002 != 0 {
                "writable by others".to_string()
            } else {
                format!("writable by group {}", self.gid)
            });
            fix.push(format!("chmod go-w {p}"));
        }
        let above = if self.path == self.file {
            String::new()
        } else if self.is_dir {
            format!(" (a directory on the way to {})", self.file.display())
        } else {
            format!(" (what {} links to)", self.file.display())
        };
        format!(
            "{}: {} is not trusted: {p}{above} is {} (owner {}:{}, mode {:04o}); other users could change what kaudit-node applies. Fix: {}",
            self.file.display(),
            self.what,
            why.join(" and "),
            self.uid,
            self.gid,
            self.mode & 0o7777,
            fix.join("; ")
        )
    }
}

fn owner_ok(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

fn trusted(md: &std::fs::Metadata) -> bool {
    let mode = md.mode();
    owner_ok(md.uid()) && mode & 0o002 == 0 && (mode & 0o020 == 0 || md.gid() == 0)
}

/// Checks `file` (a node path) and every directory above it, following
/// symlinks. `Ok(None)` when all are trusted or the file does not exist
/// (what is missing is someone else's error to report).
pub fn check_path(root: &Root, file: &Path, what: &str) -> Result<Option<Untrusted>> {
    let untrusted = |path: &Path, md: &std::fs::Metadata| Untrusted {
        what: what.to_string(),
        file: file.to_path_buf(),
        path: path.to_path_buf(),
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
        is_dir: md.is_dir(),
    };
    // The components still to walk, and the resolved directory so far.
    let mut todo: Vec<PathBuf> = components(file);
    todo.reverse();
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    let md = std::fs::symlink_metadata(root.host_path(&cur))
        .map_err(|e| Error::read(&format!("{} ({what})", file.display()), &e))?;
    if !trusted(&md) {
        return Ok(Some(untrusted(&cur, &md)));
    }
    while let Some(c) = todo.pop() {
        let next = cur.join(&c);
        let md = match std::fs::symlink_metadata(root.host_path(&next)) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::read(&format!("{} ({what})", file.display()), &e)),
        };
        if md.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(Error::data(format!(
                    "{}: {what}: too many levels of symbolic links",
                    file.display()
                )));
            }
            let target = std::fs::read_link(root.host_path(&next))
                .map_err(|e| Error::read(&format!("{} ({what})", next.display()), &e))?;
            let mut more = components(&target);
            more.reverse();
            todo.extend(more);
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            continue;
        }
        if !trusted(&md) {
            return Ok(Some(untrusted(&next, &md)));
        }
        cur = next;
    }
    Ok(None)
}

/// The normal components of a path; `..` pops (as path resolution does
/// once the directory is known: here, after the symlinks before it).
fn components(p: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(PathBuf::from(n)),
            Component::ParentDir => out.push(PathBuf::from("..")),
            _ => {}
        }
    }
    out
}

/// The configuration file as a node path, for the trust check, from
/// `--config` (`config_arg`): without it, the default path on the node
/// (checked even when it does not resolve on this machine: a symbolic link
/// under a root points into the node). With it, on the live system, the
/// path itself, made absolute; under a root, the part below the root, and
/// a file outside the root is the caller's own, not the node's: `None`.
pub fn config_node_path(root: &Root, config_arg: Option<&Path>) -> Option<PathBuf> {
    let Some(p) = config_arg else {
        return Some(PathBuf::from(crate::config::DEFAULT_PATH));
    };
    if root.is_system() {
        return Some(std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    }
    let dir = std::path::absolute(root.dir()).ok()?;
    std::path::absolute(p)
        .ok()?
        .strip_prefix(dir)
        .ok()
        .map(|r| Path::new("/").join(r))
}

/// The inputs of `settings` that must be trusted: the configuration file
/// (when it is a node file: the default path under the root, or `--config`
/// without `--root`), `policy.file` and `webhook.config`.
pub fn inputs(
    settings: &Settings,
    config_node_path: Option<&Path>,
) -> Vec<(PathBuf, &'static str)> {
    let mut v = Vec::new();
    if let Some(c) = config_node_path {
        v.push((c.to_path_buf(), "the configuration"));
    }
    if let PolicySource::File(p) = &settings.policy {
        v.push((p.clone(), "policy.file"));
    }
    if let Some(w) = &settings.webhook {
        v.push((w.config.clone(), "webhook.config"));
    }
    v
}

/// Every untrusted input.
pub fn check(
    root: &Root,
    settings: &Settings,
    config_node_path: Option<&Path>,
) -> Result<Vec<Untrusted>> {
    let mut out = Vec::new();
    for (p, what) in inputs(settings, config_node_path) {
        if let Some(u) = check_path(root, &p, what)? {
            out.push(u);
        }
    }
    Ok(out)
}

/// Refuses (exit 77) when an input is not trusted; nothing is changed.
pub fn require(root: &Root, settings: &Settings, config_node_path: Option<&Path>) -> Result<()> {
    let bad = check(root, settings, config_node_path)?;
    if bad.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = bad.iter().map(Untrusted::message).collect();
    Err(Error::new(
        ExitCode::NoPerm,
        format!(
            "refusing untrusted input; nothing was changed:\n  {}",
            lines.join("\n  ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn node() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        chmod(t.path(), 0o755);
        for d in ["etc", "etc/kaudit-node", "home", "home/u", "tmp"] {
            std::fs::create_dir(t.path().join(d)).unwrap();
            chmod(&t.path().join(d), 0o755);
        }
        std::fs::write(t.path().join("etc/kaudit-node/config.toml"), "").unwrap();
        chmod(&t.path().join("etc/kaudit-node/config.toml"), 0o644);
        t
    }

    fn verdict(t: &tempfile::TempDir, p: &str) -> Option<String> {
        check_path(&Root::new(t.path()), Path::new(p), "the configuration")
            .unwrap()
            .map(|u| u.message())
    }

    #[test]
    fn modes_of_the_file_and_its_directories() {
        let t = node();
        let cfg = "/etc/kaudit-node/config.toml";
        assert_eq!(verdict(&t, cfg), None);
        chmod(&t.path().join("etc/kaudit-node/config.toml"), 0o666);
        let m = verdict(&t, cfg).unwrap();
        assert!(
            m.contains("/etc/kaudit-node/config.toml is writable by others"),
            "{m}"
        );
        assert!(m.contains("mode 0666"), "{m}");
        assert!(
            m.contains("Fix: chmod go-w /etc/kaudit-node/config.toml"),
            "{m}"
        );
        chmod(&t.path().join("etc/kaudit-node/config.toml"), 0o644);
        chmod(&t.path().join("etc/kaudit-node"), 0o777);
        let m = verdict(&t, cfg).unwrap();
        assert!(m.contains("/etc/kaudit-node (a directory on the way to /etc/kaudit-node/config.toml) is writable by others"), "{m}");
        // Sticky changes nothing: /tmp is never trusted.
        chmod(&t.path().join("etc/kaudit-node"), 0o1777);
        assert!(verdict(&t, cfg).is_some());
        chmod(&t.path().join("etc/kaudit-node"), 0o755);
        // Group write: only for gid 0 (the test's own group may be 0 when root).
        chmod(&t.path().join("etc/kaudit-node/config.toml"), 0o664);
        let gid = std::fs::metadata(t.path().join("etc")).unwrap().gid();
        assert_eq!(verdict(&t, cfg).is_none(), gid == 0);
    }

    #[test]
    fn symlinks_are_followed_and_their_targets_checked() {
        let t = node();
        std::fs::write(t.path().join("tmp/evil.toml"), "").unwrap();
        chmod(&t.path().join("tmp/evil.toml"), 0o644);
        chmod(&t.path().join("tmp"), 0o1777);
        symlink("/tmp/evil.toml", t.path().join("etc/linked.toml")).unwrap();
        let m = verdict(&t, "/etc/linked.toml").unwrap();
        assert!(
            m.contains("/tmp (a directory on the way to /etc/linked.toml) is writable by others"),
            "{m}"
        );
        // A relative link to a trusted file is fine.
        symlink("kaudit-node/config.toml", t.path().join("etc/rel.toml")).unwrap();
        assert_eq!(verdict(&t, "/etc/rel.toml"), None);
        // A loop is an error, not a hang.
        symlink("/etc/loop", t.path().join("etc/loop")).unwrap();
        assert!(check_path(&Root::new(t.path()), Path::new("/etc/loop"), "x").is_err());
        // What does not exist is not this check's to report.
        assert_eq!(verdict(&t, "/etc/nope/config.toml"), None);
    }

    #[test]
    fn config_node_path_is_the_node_path_or_none() {
        let t = node();
        let root = Root::new(t.path());
        let inside = t.path().join("etc/kaudit-node/config.toml");
        assert_eq!(
            config_node_path(&root, Some(&inside)),
            Some(PathBuf::from("/etc/kaudit-node/config.toml"))
        );
        // A --config file outside the root is the caller's, not the node's.
        assert_eq!(
            config_node_path(&root, Some(Path::new("/elsewhere/c.toml"))),
            None
        );
        assert_eq!(
            config_node_path(&root, None),
            Some(PathBuf::from("/etc/kaudit-node/config.toml"))
        );
        let live = Root::new("/");
        assert_eq!(
            config_node_path(&live, Some(Path::new("/etc/x.toml"))),
            Some(PathBuf::from("/etc/x.toml"))
        );
    }
}
