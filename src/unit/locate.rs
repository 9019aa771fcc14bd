//! Finding a unit's fragment and drop-ins under a [`Root`], as systemd 252
//! does (`unit_file_build_name_map`, `unit_file_find_dropin_paths`,
//! `conf_files_list_strv`), checked with `systemd-analyze verify --root`.
//!
//! * The search path is systemd's system-manager path, highest priority
//!   first, as `systemd-analyze unit-paths` prints it on Debian 12
//!   ([`UNIT_SEARCH_PATH`]). Where `/lib` is a symlink to `/usr/lib`
//!   (merged `/usr`) the second directory is the same as the first and is
//!   skipped, as systemd's `lookup_paths_reduce` does.
//! * Drop-in directories, in priority order: for each search directory,
//!   `NAME.d/`, then the dash-prefix directories (`kube-.service.d/` for
//!   `kube-apiserver.service`, more specific first); then the same for an
//!   alias name; then, for each search directory, the type-level
//!   `service.d/`. For each file name the first directory in that order
//!   wins; the winners are applied sorted by file name, whatever directory
//!   they are in. A drop-in that is empty, a symlink to `/dev/null` or a
//!   dangling symlink contributes nothing but still masks the same name
//!   further down (systemd lists it in `DropInPaths`).
//! * Symbolic links are resolved inside the root, so an absolute link in a
//!   copy of a node never escapes to the machine running kaudit-node.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::root::Root;

/// systemd 252's unit search path for the system manager, highest priority
/// first (`systemd-analyze unit-paths`, Debian 12; `man systemd.unit`,
/// "UNIT FILE LOAD PATH"). Distributions built without split `/usr`
/// (Fedora) search `/usr/lib/systemd/system` and not `/lib/systemd/system`;
/// there `/lib` is a symlink to `/usr/lib`, so the order below finds the
/// same files.
pub const UNIT_SEARCH_PATH: [&str; 13] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// What a node path is, symbolic links resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// A regular file: its resolved node path and size.
    File(PathBuf, u64),
    Dir(PathBuf),
    /// A device, socket or FIFO.
    Other(PathBuf),
    /// `/dev/null` (a mask).
    DevNull,
    Missing,
}

/// Lexically normalises an absolute node path (`.` and `..` removed, `..`
/// never above `/`).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn parts(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn io_err(node: &Path, e: &io::Error) -> Error {
    Error::read(&node.display().to_string(), e)
}

/// Resolves `node` inside the root, following symbolic links in every
/// component (absolute targets are taken relative to the root).
pub(crate) fn chase(root: &Root, node: &Path) -> Result<Found> {
    const DEV_NULL: &str = "/dev/null";
    if normalize(node) == Path::new(DEV_NULL) {
        return Ok(Found::DevNull);
    }
    let mut todo = parts(node);
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    let mut last: Option<fs::Metadata> = None;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            cur.pop();
            last = None;
            continue;
        }
        let cand = cur.join(&part);
        let host = root.host_path(&cand);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            // ENAMETOOLONG (InvalidFilename): a name that cannot exist, such
            // as an optional `EnvironmentFile=-` path systemd ignores.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::NotADirectory
                        | io::ErrorKind::InvalidFilename
                ) =>
            {
                return Ok(Found::Missing);
            }
            Err(e) => return Err(io_err(&cand, &e)),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(Error::data(format!(
                    "{}: too many levels of symbolic links",
                    node.display()
                )));
            }
            let target = fs::read_link(&host).map_err(|e| io_err(&cand, &e))?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            let mut next = parts(&target);
            let rest: PathBuf = todo.iter().collect();
            if normalize(&cur.join(&target).join(&rest)) == Path::new(DEV_NULL) {
                return Ok(Found::DevNull);
            }
            next.extend(todo);
            todo = next;
            last = None;
            continue;
        }
        if !todo.is_empty() && !meta.is_dir() {
            return Ok(Found::Missing);
        }
        cur = cand;
        last = Some(meta);
    }
    let meta = match last {
        Some(m) => m,
        None => match fs::metadata(root.host_path(&cur)) {
            Ok(m) => m,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidFilename
                ) =>
            {
                return Ok(Found::Missing);
            }
            Err(e) => return Err(io_err(&cur, &e)),
        },
    };
    Ok(if meta.is_dir() {
        Found::Dir(cur)
    } else if meta.is_file() {
        Found::File(cur, meta.len())
    } else {
        Found::Other(cur)
    })
}

/// Whether a name exists in a directory without following it (a dangling
/// symlink exists).
pub(crate) fn lexists(root: &Root, node: &Path) -> bool {
    fs::symlink_metadata(root.host_path(node)).is_ok()
}

/// One search directory: as named in the search path, and resolved.
#[derive(Debug, Clone)]
pub(crate) struct SearchDir {
    pub node: PathBuf,
    pub resolved: PathBuf,
}

/// The search directories that exist under the root, duplicates (the same
/// directory reached through a symlink) removed.
pub(crate) fn search_dirs(root: &Root) -> Result<Vec<SearchDir>> {
    let mut out: Vec<SearchDir> = Vec::new();
    for d in UNIT_SEARCH_PATH {
        if let Found::Dir(resolved) = chase(root, Path::new(d))?
            && !out.iter().any(|s| s.resolved == resolved)
        {
            out.push(SearchDir {
                node: PathBuf::from(d),
                resolved,
            });
        }
    }
    Ok(out)
}

/// The drop-in directory names for a unit name: `NAME.d` then the
/// dash-prefix names, more specific first (`unit_file_find_dirs`).
pub(crate) fn dropin_dir_names(name: &str) -> Vec<String> {
    let mut out = vec![format!("{name}.d")];
    let Some((prefix, suffix)) = name.rsplit_once('.') else {
        return out;
    };
    let mut p = prefix.to_string();
    loop {
        // Drop a trailing dash once, then cut after the last dash.
        let base = p.strip_suffix('-').unwrap_or(&p);
        match base.rfind('-') {
            Some(n) if n > 0 => {
                p = base[..=n].to_string();
                out.push(format!("{p}.{suffix}.d"));
            }
            _ => break,
        }
    }
    out
}

/// A drop-in file that won for its name.
#[derive(Debug, Clone)]
pub(crate) struct DropIn {
    pub name: String,
    /// The node path, under the search directory as named.
    pub node: PathBuf,
    /// Index of its directory in the priority order (lower wins).
    pub dir_rank: usize,
}

/// All drop-in files for the given directory list (priority order), the
/// winner of each file name, sorted by name; and the losers (same name in a
/// lower-priority directory).
pub(crate) fn find_dropins(
    root: &Root,
    dirs: &[PathBuf],
    warnings: &mut Vec<String>,
) -> Result<(Vec<DropIn>, Vec<DropIn>)> {
    let mut winners: Vec<DropIn> = Vec::new();
    let mut losers = Vec::new();
    for (rank, node_dir) in dirs.iter().enumerate() {
        let Found::Dir(real) = chase(root, node_dir)? else {
            continue;
        };
        let host = root.host_path(&real);
        let rd = match fs::read_dir(&host) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(node_dir, &e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| io_err(node_dir, &e))?;
            let Ok(name) = ent.file_name().into_string() else {
                warnings.push(format!(
                    "{}: a file name that is not UTF-8 was skipped",
                    node_dir.display()
                ));
                continue;
            };
            if !name.ends_with(".conf") || name.starts_with('.') {
                continue;
            }
            names.push(name);
        }
        names.sort();
        for name in names {
            let d = DropIn {
                node: node_dir.join(&name),
                name,
                dir_rank: rank,
            };
            if winners.iter().any(|w| w.name == d.name) {
                losers.push(d);
            } else {
                winners.push(d);
            }
        }
    }
    winners.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok((winners, losers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_dirs() {
        assert_eq!(
            dropin_dir_names("kube-apiserver.service"),
            ["kube-apiserver.service.d", "kube-.service.d"]
        );
        assert_eq!(
            dropin_dir_names("foo-bar-baz.service"),
            [
                "foo-bar-baz.service.d",
                "foo-bar-.service.d",
                "foo-.service.d"
            ]
        );
        assert_eq!(dropin_dir_names("foo.service"), ["foo.service.d"]);
        assert_eq!(dropin_dir_names("-foo.service"), ["-foo.service.d"]);
        assert_eq!(dropin_dir_names("foo-.service"), ["foo-.service.d"]);
        assert_eq!(
            dropin_dir_names("a--b.service"),
            ["a--b.service.d", "a--.service.d", "a-.service.d"]
        );
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../../x")), PathBuf::from("/x"));
    }

    #[test]
    fn chase_stays_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        fs::create_dir_all(t.path().join("usr/lib/systemd/system")).unwrap();
        fs::write(t.path().join("usr/lib/systemd/system/a.service"), "x").unwrap();
        std::os::unix::fs::symlink("/usr/lib", t.path().join("lib")).unwrap();
        std::os::unix::fs::symlink(
            "/dev/null",
            t.path().join("usr/lib/systemd/system/m.service"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../../etc/passwd",
            t.path().join("usr/lib/systemd/system/e.service"),
        )
        .unwrap();
        assert_eq!(
            chase(&root, Path::new("/lib/systemd/system/a.service")).unwrap(),
            Found::File(PathBuf::from("/usr/lib/systemd/system/a.service"), 1)
        );
        assert_eq!(
            chase(&root, Path::new("/lib/systemd/system/m.service")).unwrap(),
            Found::DevNull
        );
        // The relative link climbs above the root and stays inside it.
        assert_eq!(
            chase(&root, Path::new("/lib/systemd/system/e.service")).unwrap(),
            Found::Missing
        );
        assert_eq!(
            chase(&root, Path::new("/lib/systemd")).unwrap(),
            Found::Dir(PathBuf::from("/usr/lib/systemd"))
        );
        assert_eq!(chase(&root, Path::new("/nope/x")).unwrap(), Found::Missing);
        assert_eq!(
            chase(&root, Path::new("/usr/lib/systemd/system/a.service/x")).unwrap(),
            Found::Missing
        );
        // A name too long to exist (ENAMETOOLONG) is missing, not an I/O
        // error (found by the unit_load fuzz target: an optional
        // `EnvironmentFile=-/etc/<300 bytes>` made the whole plan fail).
        let long = format!("/etc/{}", "k".repeat(300));
        assert_eq!(chase(&root, Path::new(&long)).unwrap(), Found::Missing);
        // A loop.
        std::os::unix::fs::symlink("l2", t.path().join("l1")).unwrap();
        std::os::unix::fs::symlink("l1", t.path().join("l2")).unwrap();
        assert!(chase(&root, Path::new("/l1")).is_err());
    }

    #[test]
    fn merged_usr_search_dirs_are_deduplicated() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        fs::create_dir_all(t.path().join("usr/lib/systemd/system")).unwrap();
        fs::create_dir_all(t.path().join("etc/systemd/system")).unwrap();
        std::os::unix::fs::symlink("usr/lib", t.path().join("lib")).unwrap();
        let d: Vec<PathBuf> = search_dirs(&root)
            .unwrap()
            .into_iter()
            .map(|s| s.node)
            .collect();
        assert_eq!(
            d,
            [
                PathBuf::from("/etc/systemd/system"),
                PathBuf::from("/lib/systemd/system")
            ]
        );
    }
}
