//! The one injectable root under which every node path is read and written.
//!
//! Paths inside the tool are always *node paths*: absolute paths as they
//! are on the node (`/etc/systemd/system/…`). `Root::host_path` turns one
//! into the path to open on this machine, which differs only under
//! `--root DIR` (tests, image builds, planning on a copy of a node).

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The live system (`/`).
    pub fn system() -> Self {
        Root {
            dir: PathBuf::from("/"),
        }
    }

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_system(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// Where the node path `node` is on this machine. `node` must be
    /// absolute and free of `..` (validated settings guarantee this).
    pub fn host_path(&self, node: &Path) -> PathBuf {
        let mut out = self.dir.clone();
        for c in node.components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }

    /// For a message about a node path under a root other than `/`: where
    /// the file is on this machine (` (/tmp/r/etc/x on this machine)`);
    /// empty on the live system.
    pub fn on_this_machine(&self, node: &Path) -> String {
        if self.is_system() {
            String::new()
        } else {
            format!(" ({} on this machine)", self.host_path(node).display())
        }
    }

    /// Reads a node file to a string; `Ok(None)` when it does not exist.
    pub fn read_optional(&self, node: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.host_path(node)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::read(&node.display().to_string(), &e)),
        }
    }

    /// Reads a node file that must exist.
    pub fn read(&self, node: &Path) -> Result<Vec<u8>> {
        std::fs::read(self.host_path(node))
            .map_err(|e| Error::read(&node.display().to_string(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_joins_under_root() {
        let r = Root::new("/tmp/x");
        assert_eq!(
            r.host_path(Path::new("/etc/systemd/system/a.service")),
            PathBuf::from("/tmp/x/etc/systemd/system/a.service")
        );
        assert_eq!(
            Root::system().host_path(Path::new("/etc/a")),
            PathBuf::from("/etc/a")
        );
    }
}
