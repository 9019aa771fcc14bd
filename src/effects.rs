//! Effects on files: carrying out a [`Plan`]'s entries under a [`Root`].
//!
//! Every write is atomic (a temporary file in the same directory, written,
//! given its mode and owner, fsynced, renamed over the target, then the
//! directory fsynced), so a reader or a crash sees the old file or the new
//! one, never half of one. Nothing is written through a symbolic link: the
//! final component is opened with `O_NOFOLLOW`, and every directory from
//! the root down must be a real directory that no other user can write.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::error::{Error, Result};
use crate::plan::{Change, Kind, Plan};
use crate::root::Root;

fn io_err(node: &Path, what: &str, e: std::io::Error) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::PermissionDenied => crate::error::ExitCode::NoPerm,
        _ => crate::error::ExitCode::IoErr,
    };
    Error::new(code, format!("{}: {what}: {e}", node.display()))
}

/// Checks every existing directory on the way to `node` (exclusive): a
/// real directory, not a symlink, not writable by group or others unless
/// owned by root with the sticky bit. Missing components are fine (they
/// will be created by the plan, as real directories).
pub fn check_parents(root: &Root, node: &Path) -> Result<()> {
    let mut cur = PathBuf::from("/");
    let parent = node.parent().unwrap_or(Path::new("/"));
    for c in parent.components().skip(1) {
        cur.push(c);
        let host = root.host_path(&cur);
        let md = match fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&cur, "cannot inspect", e)),
        };
        if md.file_type().is_symlink() {
            // /lib → usr/lib style links owned by root are part of the OS.
            let target_ok =
                md.uid() == 0 && fs::metadata(&host).map(|m| m.is_dir()).unwrap_or(false);
            if !target_ok {
                return Err(Error::data(format!(
                    "{}: is a symbolic link not owned by root; kaudit-node does not write through it",
                    cur.display()
                )));
            }
            continue;
        }
        if !md.is_dir() {
            return Err(Error::data(format!(
                "{}: is not a directory",
                cur.display()
            )));
        }
        if let Some(e) = crate::plan::shared_dir_error(&cur, md.mode(), md.uid()) {
            return Err(e);
        }
    }
    Ok(())
}

/// Directories whose entries changed, each fsynced once by [`DirSync::flush`]
/// (a plan writes several files into the same few directories).
#[derive(Default)]
pub struct DirSync(std::collections::BTreeMap<PathBuf, PathBuf>);

impl DirSync {
    fn add(&mut self, host_dir: &Path, node: &Path) {
        self.0
            .entry(host_dir.to_path_buf())
            .or_insert_with(|| node.to_path_buf());
    }

    /// Makes every recorded change durable.
    pub fn flush(self) -> Result<()> {
        for (host_dir, node) in &self.0 {
            fsync_dir(host_dir, node)?;
        }
        Ok(())
    }
}

fn fsync_dir(host_dir: &Path, node: &Path) -> Result<()> {
    File::open(host_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(node, "cannot sync directory", e))
}

/// The one atomic replace: a temporary file beside `path`
/// (`.NAME.kaudit-node-PID.tmp`, created `O_EXCL | O_NOFOLLOW`, mode 0600
/// while written), given `mode` and `owner`, fsynced, then renamed over
/// `path`. The temporary file is removed on failure. The directory's fsync
/// is the caller's.
fn replace_file(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let tmp = dir.join(format!(
        ".{}.kaudit-node-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A file left by a killed run that had the same PID.
    let _ = fs::remove_file(&tmp);
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&tmp)?;
        f.write_all(content)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            fchown(&f, Some(uid), Some(gid))?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a file of the caller's own (a host path, not a node path: check's
/// `--prometheus` textfile) atomically with `mode`, owned by whoever runs
/// kaudit-node, and fsyncs its directory. The temporary name ends in `.tmp`,
/// which node_exporter's textfile collector ignores (it reads `*.prom`).
pub fn write_host_file_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    replace_file(path, content, mode, None)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all())
}

/// Writes `content` to `node` atomically with the given mode and owner.
pub fn write_atomic(
    root: &Root,
    node: &Path,
    content: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let mut sync = DirSync::default();
    write_atomic_in(root, node, content, mode, uid, gid, &mut sync)?;
    sync.flush()
}

/// [`write_atomic`], with the directory's fsync left to `sync`.
fn write_atomic_in(
    root: &Root,
    node: &Path,
    content: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
    sync: &mut DirSync,
) -> Result<()> {
    check_parents(root, node)?;
    let host = root.host_path(node);
    if let Ok(md) = fs::symlink_metadata(&host)
        && !md.is_file()
    {
        return Err(Error::data(format!(
            "{}: is not a regular file; kaudit-node does not replace it",
            node.display()
        )));
    }
    let dir = host.parent().expect("node paths have a parent");
    replace_file(&host, content, mode, Some((uid, gid)))
        .map_err(|e| io_err(node, "cannot write", e))?;
    sync.add(dir, node);
    Ok(())
}

/// Creates a directory if missing, then sets its mode and owner (opened
/// with `O_NOFOLLOW | O_DIRECTORY`, so a symlink is refused).
pub fn ensure_dir(root: &Root, node: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    let mut sync = DirSync::default();
    ensure_dir_in(root, node, mode, uid, gid, &mut sync)?;
    sync.flush()
}

fn ensure_dir_in(
    root: &Root,
    node: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
    sync: &mut DirSync,
) -> Result<()> {
    check_parents(root, node)?;
    let host = root.host_path(node);
    match fs::create_dir(&host) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(node, "cannot create directory", e)),
    }
    let d = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(&host)
        .map_err(|e| io_err(node, "cannot open directory", e))?;
    d.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(node, "cannot chmod", e))?;
    fchown(&d, Some(uid), Some(gid)).map_err(|e| io_err(node, "cannot chown", e))?;
    if let Some(parent) = host.parent() {
        sync.add(parent, node);
    }
    Ok(())
}

/// Creates the audit log empty if missing (never truncating an existing
/// one: it is opened `O_APPEND`), then sets its mode and owner.
pub fn ensure_log_file(root: &Root, node: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    check_parents(root, node)?;
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
        .open(root.host_path(node))
        .map_err(|e| io_err(node, "cannot create", e))?;
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(Error::data(format!(
            "{}: is not a regular file",
            node.display()
        )));
    }
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(node, "cannot chmod", e))?;
    fchown(&f, Some(uid), Some(gid)).map_err(|e| io_err(node, "cannot chown", e))
}

/// Removes a file kaudit-node wrote (a missing file is not an error).
pub fn remove_file(root: &Root, node: &Path) -> Result<()> {
    let mut sync = DirSync::default();
    remove_file_in(root, node, &mut sync)?;
    sync.flush()
}

fn remove_file_in(root: &Root, node: &Path, sync: &mut DirSync) -> Result<()> {
    check_parents(root, node)?;
    let host = root.host_path(node);
    match fs::remove_file(&host) {
        Ok(()) => {
            sync.add(host.parent().expect("node paths have a parent"), node);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(node, "cannot remove", e)),
    }
}

/// Carries out the file part of a plan, in its order (the drop-in last),
/// then removals. Unchanged entries are not touched. Each file is fsynced
/// before its rename; each directory once, at the end, before returning.
pub fn write_plan(root: &Root, plan: &Plan) -> Result<Vec<String>> {
    let mut sync = DirSync::default();
    for e in plan
        .entries
        .iter()
        .filter(|e| e.change != Change::Unchanged)
    {
        match e.kind {
            Kind::Directory => {
                ensure_dir_in(root, &e.path, e.mode, e.owner.uid, e.owner.gid, &mut sync)?
            }
            Kind::File => write_atomic_in(
                root,
                &e.path,
                &e.content,
                e.mode,
                e.owner.uid,
                e.owner.gid,
                &mut sync,
            )?,
            Kind::Log => ensure_log_file(root, &e.path, e.mode, e.owner.uid, e.owner.gid)?,
        }
        crate::failpoint::hit("between-writes");
    }
    // A best-effort removal (a file nothing uses once the drop-in is gone)
    // that fails is a warning: the rest of the plan goes on.
    let mut warnings = Vec::new();
    for r in &plan.removals {
        match remove_file_in(root, &r.path, &mut sync) {
            Ok(()) => {}
            Err(e) if r.best_effort => warnings.push(format!(
                "{}; nothing uses it any more: remove it by hand",
                e.message
            )),
            Err(e) => return Err(e),
        }
    }
    sync.flush()?;
    Ok(warnings)
}

/// Refuses before anything is written when a filesystem that must take a
/// file is (nearly) full: the files need their size plus room for the
/// temporary copy, the audit log's filesystem at least 1 MiB and an inode.
pub fn preflight_space(root: &Root, p: &Plan, log_dir: &Path) -> Result<()> {
    let existing = |node: &Path| -> PathBuf {
        let mut cur = node.to_path_buf();
        while !root.host_path(&cur).exists() {
            match cur.parent() {
                Some(parent) => cur = parent.to_path_buf(),
                None => break,
            }
        }
        cur
    };
    // Per filesystem: (a path on it, bytes needed, inodes needed).
    let mut need: BTreeMap<u64, (PathBuf, u64, u64)> = BTreeMap::new();
    let mut add = |node: &Path, bytes: u64, inodes: u64| -> Result<()> {
        let on = existing(node);
        let st = nix::sys::statvfs::statvfs(&root.host_path(&on))
            .map_err(|e| Error::io(format!("{}: statvfs: {e}", on.display())))?;
        let e = need.entry(st.filesystem_id()).or_insert((on, 0, 0));
        e.1 += bytes;
        e.2 += inodes;
        Ok(())
    };
    for e in p.changes() {
        if matches!(e.change, Change::Create | Change::Update) {
            add(&e.path, e.content.len() as u64 + 4096, 2)?;
        }
    }
    add(log_dir, 1 << 20, 2)?;
    for (on, bytes, inodes) in need.values() {
        let st = nix::sys::statvfs::statvfs(&root.host_path(on))
            .map_err(|e| Error::io(format!("{}: statvfs: {e}", on.display())))?;
        let avail = st.blocks_available() as u64 * st.fragment_size() as u64;
        let files = st.files_available() as u64;
        if avail < *bytes || (st.files() > 0 && files < *inodes) {
            return Err(Error::io(format!(
                "the filesystem of {} has {avail} bytes and {files} inodes free, kaudit-node needs {bytes} bytes and {inodes} inodes there; nothing was changed",
                on.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> (u32, u32) {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::set_permissions(t.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        let (u, g) = me();
        let p = Path::new("/etc/a.conf");
        write_atomic(&root, p, b"one\n", 0o640, u, g).unwrap();
        write_atomic(&root, p, b"two\n", 0o600, u, g).unwrap();
        assert_eq!(fs::read(t.path().join("etc/a.conf")).unwrap(), b"two\n");
        assert_eq!(
            fs::metadata(t.path().join("etc/a.conf")).unwrap().mode() & 0o7777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(t.path().join("etc")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
    }

    #[test]
    fn refuses_symlinks_and_shared_directories() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let (u, g) = me();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::set_permissions(t.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.path().join("target"), b"precious").unwrap();
        std::os::unix::fs::symlink(t.path().join("target"), t.path().join("etc/link.conf"))
            .unwrap();
        let e = write_atomic(&root, Path::new("/etc/link.conf"), b"x", 0o644, u, g).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        let e = ensure_log_file(&root, Path::new("/etc/link.conf"), 0o600, u, g).unwrap_err();
        assert!(e.message.contains("cannot create"), "{e}");
        assert_eq!(fs::read(t.path().join("target")).unwrap(), b"precious");

        fs::create_dir_all(t.path().join("shared")).unwrap();
        fs::set_permissions(t.path().join("shared"), fs::Permissions::from_mode(0o777)).unwrap();
        let e = write_atomic(&root, Path::new("/shared/x"), b"x", 0o644, u, g).unwrap_err();
        assert!(e.message.contains("writable by other users"), "{e}");
    }

    #[test]
    fn log_file_is_never_truncated() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let (u, g) = me();
        fs::create_dir_all(t.path().join("log")).unwrap();
        fs::set_permissions(t.path().join("log"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(t.path().join("log/audit.log"), b"{\"kind\":\"Event\"}\n").unwrap();
        ensure_log_file(&root, Path::new("/log/audit.log"), 0o600, u, g).unwrap();
        assert_eq!(
            fs::read(t.path().join("log/audit.log")).unwrap(),
            b"{\"kind\":\"Event\"}\n"
        );
        ensure_dir(&root, Path::new("/log"), 0o750, u, g).unwrap();
        assert_eq!(
            fs::metadata(t.path().join("log")).unwrap().mode() & 0o7777,
            0o750
        );
    }
}
