//! kaudit-node's systemd drop-in, in one place: its name and path, the
//! header (the mark, the vendor command line's source and hash, the
//! recorded kube-apiserver identity, the vendor flags removed), rendering,
//! reading it back, and the one answer to "does systemd run our drop-in?"
//! that apply, check and remove all ask.
//!
//! The file, for a unit `U`, is `/etc/systemd/system/U.d/50-kaudit-node.conf`:
//! the administrator's directory of drop-ins, and a name that sorts after
//! a vendor's own `10-*.conf` so that its `ExecStart=` is the one systemd
//! runs.

use std::path::{Path, PathBuf};

use crate::apiserver::identity;
use crate::systemd::UnitStatus;
use crate::verify;

/// The drop-in's file name. Drop-ins apply in lexicographic order, so one
/// sorting later (`override.conf` from `systemctl edit`, `99-*.conf`) that
/// sets `ExecStart=` overrides ours: the plan refuses that case.
pub const NAME: &str = "50-kaudit-node.conf";

/// The first line of every file kaudit-node writes (the drop-in and the
/// logrotate snippet); also how it recognises its own files before
/// replacing or removing them.
pub const HEADER_MARK: &str = "# Written by kaudit-node.";

/// The header line that records the vendor command line's hash.
pub const VENDOR_HASH_KEY: &str = "# vendor-exec-start-sha256: ";

/// The unit's drop-in directory, as a node path.
pub fn dir(unit: &str) -> PathBuf {
    PathBuf::from(format!("/etc/systemd/system/{unit}.d"))
}

/// The drop-in of `unit`, as a node path.
pub fn path(unit: &str) -> PathBuf {
    dir(unit).join(NAME)
}

/// Whether `content` is a file kaudit-node wrote.
pub fn is_ours(content: &[u8]) -> bool {
    content.starts_with(HEADER_MARK.as_bytes())
}

/// What goes into the drop-in.
pub struct Contents<'a> {
    /// Where the vendor's `ExecStart=` is (`FILE:LINE`).
    pub vendor_source: &'a str,
    /// [`crate::plan::vendor_hash`] of the vendor command line.
    pub vendor_hash: &'a str,
    /// The identity header line ([`identity::Identity::header_line`]).
    pub identity: &'a str,
    /// Vendor flags taken off the command line, as written.
    pub removed_flags: &'a [String],
    /// The whole `ExecStart=` value.
    pub exec_start: &'a str,
    /// A `ReadWritePaths=` for the log directory, when the sandbox needs it.
    pub read_write: Option<&'a Path>,
}

/// The drop-in's text.
pub fn render(c: &Contents) -> String {
    let mut t = String::new();
    t.push_str(HEADER_MARK);
    t.push_str(" Do not edit: `kaudit-node apply` rewrites this file.\n");
    t.push_str("# It turns on kube-apiserver audit logging: the vendor command line below,\n");
    t.push_str("# with kaudit-node's --audit-* flags last. To change them, edit kaudit-node's\n");
    t.push_str("# configuration (kaudit-node.toml(5)) and run `kaudit-node apply`;\n");
    t.push_str("# `kaudit-node remove` deletes this file and restores the vendor command line.\n");
    t.push_str(&format!("# vendor-exec-start: {}\n", c.vendor_source));
    t.push_str(&format!("{VENDOR_HASH_KEY}{}\n", c.vendor_hash));
    t.push_str(c.identity);
    t.push('\n');
    for r in c.removed_flags {
        t.push_str(&format!(
            "# removed-vendor-flag: {}\n",
            r.replace('\n', " ")
        ));
    }
    t.push_str("\n[Service]\nExecStart=\nExecStart=");
    t.push_str(c.exec_start);
    t.push('\n');
    if let Some(dir) = c.read_write {
        t.push_str(&format!("ReadWritePaths={}\n", dir.display()));
    }
    t
}

/// The vendor hash recorded in a drop-in written by kaudit-node.
pub fn recorded_vendor_hash(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix(VENDOR_HASH_KEY))
        .map(str::trim)
}

/// Whether two drop-ins differ only in the recorded identity (the binary
/// was replaced, the command line is the same).
pub fn differ_only_in_identity(a: &[u8], b: &[u8]) -> bool {
    let without = |text: &'_ [u8]| -> Vec<Vec<u8>> {
        text.split(|b| *b == b'\n')
            .filter(|l| !l.starts_with(identity::HEADER_KEY.as_bytes()))
            .map(<[u8]>::to_vec)
            .collect()
    };
    without(a) == without(b)
}

/// The `ExecStart=` argv of a drop-in as written (the last assignment).
pub fn argv(path: &Path, text: &str) -> Option<Vec<String>> {
    let f = crate::unit::parse_unit_file(path, text).ok()?;
    let raw = f
        .section("Service")
        .filter(|e| e.key == "ExecStart")
        .last()?
        .value
        .clone();
    if raw.is_empty() {
        return None;
    }
    crate::unit::Command::parse(&raw)
        .ok()
        .map(|c| c.argv_values())
}

/// The policy path kaudit-node's drop-in (`text`) gives the apiserver: the
/// policy kaudit-node installed. None when the text is not kaudit-node's.
pub fn policy_path(path: &Path, text: &[u8]) -> Option<PathBuf> {
    if !is_ours(text) {
        return None;
    }
    argv(path, &String::from_utf8_lossy(text))?
        .iter()
        .rev()
        .find_map(|w| w.strip_prefix("--audit-policy-file="))
        .map(PathBuf::from)
}

/// What systemd makes of kaudit-node's drop-in, from the unit's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The drop-in is among the unit's `DropInPaths`.
    pub loaded: bool,
    /// Unit files changed on disk since the last daemon-reload.
    pub stale: bool,
    /// systemd's effective `ExecStart` is the drop-in's command line.
    pub exec_start_ours: bool,
    /// The drop-ins systemd loads after ours: what can override it.
    pub later: Vec<String>,
}

impl Loaded {
    /// Does systemd run our drop-in: loaded, current, and its `ExecStart`.
    pub fn runs(&self) -> bool {
        self.loaded && !self.stale && self.exec_start_ours
    }

    /// The later drop-ins, for a message: "a, b", or `none`.
    pub fn later_list(&self, none: &str) -> String {
        if self.later.is_empty() {
            none.to_string()
        } else {
            self.later.join(", ")
        }
    }
}

/// The one predicate: what systemd (`status` of the unit) makes of the
/// drop-in at `dropin` ([`path`]) whose command line is `argv`.
pub fn loaded(dropin: &Path, status: &UnitStatus, argv: &[String]) -> Loaded {
    let ours = dropin.display().to_string();
    Loaded {
        loaded: status.drop_in_paths.contains(&ours),
        stale: status.need_daemon_reload,
        exec_start_ours: status
            .exec_start
            .first()
            .is_some_and(|a| verify::exec_matches(a, argv)),
        later: status
            .drop_in_paths
            .iter()
            .filter(|d| d.as_str() > ours.as_str())
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents<'a>(removed: &'a [String]) -> Contents<'a> {
        Contents {
            vendor_source: "/x:1",
            vendor_hash: "abc",
            identity: "# kube-apiserver: v1.32.0 /bin/true",
            removed_flags: removed,
            exec_start: "/bin/true --audit-policy-file=/etc/p.yaml",
            read_write: None,
        }
    }

    #[test]
    fn header_round_trips() {
        let d = render(&contents(&[]));
        assert!(is_ours(d.as_bytes()));
        assert_eq!(recorded_vendor_hash(&d), Some("abc"));
        assert_eq!(
            policy_path(Path::new("/d.conf"), d.as_bytes()),
            Some(PathBuf::from("/etc/p.yaml"))
        );
        assert_eq!(
            argv(Path::new("/d.conf"), &d).unwrap(),
            ["/bin/true", "--audit-policy-file=/etc/p.yaml"]
        );
        let other = d.replace("v1.32.0", "v1.33.1");
        assert!(differ_only_in_identity(d.as_bytes(), other.as_bytes()));
        let removed = ["--audit-log-maxage=3".to_string()];
        let more = render(&contents(&removed));
        assert!(!differ_only_in_identity(d.as_bytes(), more.as_bytes()));
        assert_eq!(
            policy_path(Path::new("/d.conf"), b"[Service]\nExecStart=/x\n"),
            None
        );
    }

    #[test]
    fn loaded_reads_the_status() {
        let argv = vec!["/bin/kube-apiserver".to_string(), "--a".to_string()];
        let mut st = UnitStatus {
            drop_in_paths: vec![path("u.service").display().to_string()],
            exec_start: vec![argv.clone()],
            ..UnitStatus::default()
        };
        assert!(loaded(&path("u.service"), &st, &argv).runs());
        st.need_daemon_reload = true;
        let l = loaded(&path("u.service"), &st, &argv);
        assert!(l.stale && !l.runs());
        st.need_daemon_reload = false;
        st.drop_in_paths
            .push("/etc/systemd/system/u.service.d/90-late.conf".into());
        st.exec_start = vec![vec!["/bin/other".into()]];
        let l = loaded(&path("u.service"), &st, &argv);
        assert!(l.loaded && !l.exec_start_ours && !l.runs());
        assert_eq!(l.later, ["/etc/systemd/system/u.service.d/90-late.conf"]);
        assert!(!loaded(&path("v.service"), &st, &argv).loaded);
    }
}
