//! Which program the unit runs, and which kube-apiserver release it is.
//!
//! The executable is resolved as systemd resolves it (`config_parse_exec`:
//! prefixes stripped, an absolute path as is, a bare name looked up in
//! systemd's fixed search path). A `kube-apiserver` binary, or `hyperkube`
//! with `kube-apiserver`/`apiserver` as its first argument, is asked
//! `--version` once: without a shell, with an empty environment, under a
//! timeout. The answer is recorded with the file's identity (device, inode,
//! size, mtime) in kaudit-node's drop-in, so a converged apply only stats
//! the file.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::version::Version;
use crate::error::{Error, Result};
use crate::root::Root;
use crate::unit::UnitView;

/// How long `--version` may take (the real binary needs 30–70 ms).
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The directories systemd searches for an `ExecStart=` executable given
/// without a path (`DEFAULT_PATH` of systemd ≥ 239; `/sbin` and `/bin`
/// for systems without merged /usr).
const SEARCH_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The drop-in header key of the recorded identity.
pub const HEADER_KEY: &str = "# kube-apiserver: ";

/// A file's identity: when any of these change, the binary was replaced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// The file's identity now (following symlinks), or `None` if it cannot be read.
    pub fn read(root: &Root, node: &Path) -> Option<FileId> {
        std::fs::metadata(root.host_path(node))
            .ok()
            .map(|m| FileId::of(&m))
    }
}

/// Where the version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `--version` was run on this apply.
    Probed,
    /// The drop-in's record, whose file identity still matches.
    Recorded,
    /// `apiserver.version` in the configuration (a wrapper, for example).
    Configured,
}

/// The program the unit runs, known to be a kube-apiserver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The executable, as a node path.
    pub binary: PathBuf,
    /// Its identity; `None` when it cannot be read (a configured version
    /// for a wrapper that is not a plain file, for example).
    pub file: Option<FileId>,
    pub version: Version,
    pub source: Source,
}

impl Identity {
    /// The drop-in header line that records this identity.
    pub fn header_line(&self) -> String {
        let mut t = format!("{HEADER_KEY}{} {}", self.version, self.binary.display());
        // A configured version holds whatever the file is: no file identity.
        if let Some(f) = self
            .file
            .as_ref()
            .filter(|_| self.source != Source::Configured)
        {
            t.push_str(&format!(
                " dev={} ino={} size={} mtime={}.{:09}",
                f.dev, f.ino, f.size, f.mtime_sec, f.mtime_nsec
            ));
        }
        if self.source == Source::Configured {
            t.push_str(" (apiserver.version)");
        }
        t
    }
}

/// An identity recorded in a drop-in header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub version: Version,
    pub binary: PathBuf,
    pub file: Option<FileId>,
    pub configured: bool,
}

/// Reads the identity recorded in a drop-in written by kaudit-node.
pub fn recorded(dropin: &str) -> Option<Recorded> {
    let line = dropin.lines().find_map(|l| l.strip_prefix(HEADER_KEY))?;
    let (line, configured) = match line.strip_suffix(" (apiserver.version)") {
        Some(l) => (l, true),
        None => (line, false),
    };
    let mut words = line.split(' ');
    let version = Version::parse(words.next()?)?;
    let binary = PathBuf::from(words.next()?);
    let mut kv = std::collections::HashMap::new();
    for w in words {
        let (k, v) = w.split_once('=')?;
        kv.insert(k, v);
    }
    let file = if kv.is_empty() {
        None
    } else {
        let n = |k: &str| kv.get(k)?.parse::<u64>().ok();
        let (sec, nsec) = kv.get("mtime")?.split_once('.')?;
        Some(FileId {
            dev: n("dev")?,
            ino: n("ino")?,
            size: n("size")?,
            mtime_sec: sec.parse().ok()?,
            mtime_nsec: nsec.parse().ok()?,
        })
    };
    Some(Recorded {
        version,
        binary,
        file,
        configured,
    })
}

/// What the unit's command runs, before asking it anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The executable as a node path (resolved in the search path).
    pub binary: PathBuf,
    /// The arguments to put before `--version` (hyperkube's component).
    pub version_args: Vec<String>,
    /// `Some(what)` when this is not a kube-apiserver command.
    pub not_apiserver: Option<String>,
}

/// Resolves the unit's executable as systemd does, and tells whether it is
/// a kube-apiserver command by its name.
pub fn program(root: &Root, view: &UnitView) -> Program {
    let exe = view.exec_start.executable();
    let binary = if exe.contains('/') {
        PathBuf::from(exe)
    } else {
        SEARCH_PATH
            .iter()
            .map(|d| Path::new(d).join(exe))
            .find(|p| root.host_path(p).is_file())
            .unwrap_or_else(|| Path::new(SEARCH_PATH[1]).join(exe))
    };
    let name = view.exec_start.executable_name();
    let first = view.first_argument.as_deref();
    let (version_args, not_apiserver) = match (name, first) {
        ("kube-apiserver", _) => (Vec::new(), None),
        ("hyperkube", Some(c @ ("kube-apiserver" | "apiserver"))) => (vec![c.to_string()], None),
        ("hyperkube", other) => (
            Vec::new(),
            Some(format!(
                "hyperkube runs {}, not kube-apiserver",
                other.map_or("no component".to_string(), |c| format!("\"{c}\""))
            )),
        ),
        (other, _) => (
            Vec::new(),
            Some(match first {
                Some(a) => format!("the program is \"{other}\" (first argument \"{a}\")"),
                None => format!("the program is \"{other}\""),
            }),
        ),
    };
    Program {
        binary,
        version_args,
        not_apiserver,
    }
}

/// Runs `BINARY [ARGS] --version` with no shell, an empty environment,
/// stdin from /dev/null and a timeout, and reads the version it prints.
pub fn probe_version(root: &Root, prog: &Program, timeout: Duration) -> Result<Version> {
    let host = root.host_path(&prog.binary);
    let shown = prog.binary.display();
    let spawn = || {
        Command::new(&host)
            .args(&prog.version_args)
            .arg("--version")
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    // ETXTBSY: the file is open for writing elsewhere for a moment (a
    // package upgrade writing it, or a fork holding a just-written file's
    // descriptor until its exec); it clears by itself.
    let mut tries = 0;
    let mut child = loop {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r,
        }
    }
    .map_err(|e| Error::data(format!("cannot run {shown} --version: {e}")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::data(format!(
                    "{shown} --version did not finish within {:.1} s",
                    timeout.as_secs_f64()
                )));
            }
            Err(e) => return Err(Error::data(format!("{shown} --version: {e}"))),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.by_ref().take(64 * 1024).read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(64 * 1024).read_to_string(&mut err);
    }
    let said = |s: &str| {
        let first = s.lines().next().unwrap_or("").trim();
        let first: String = first.chars().take(120).collect();
        if first.is_empty() {
            "nothing".to_string()
        } else {
            format!("\"{first}\"")
        }
    };
    if !status.success() {
        return Err(Error::data(format!(
            "{shown} --version exited with {status} and printed {} (stderr: {})",
            said(&out),
            said(&err)
        )));
    }
    Version::from_version_output(&out).ok_or_else(|| {
        Error::data(format!(
            "{shown} --version printed {}, not \"Kubernetes vX.Y.Z\"",
            said(&out)
        ))
    })
}

/// The identity of the unit's apiserver: from the configuration, from the
/// drop-in's record when the file is unchanged, or by running `--version`.
/// A command that is not a kube-apiserver is refused (exit 65) unless the
/// configuration names its version.
pub fn identify(
    root: &Root,
    view: &UnitView,
    configured: Option<&Version>,
    dropin: Option<&str>,
) -> Result<Identity> {
    let prog = program(root, view);
    let file = FileId::read(root, &prog.binary);
    if let Some(v) = configured {
        return Ok(Identity {
            binary: prog.binary,
            file,
            version: v.clone(),
            source: Source::Configured,
        });
    }
    let loc = format!(
        "{}:{}",
        view.exec_start_source.0.display(),
        view.exec_start_source.1
    );
    if let Some(what) = &prog.not_apiserver {
        return Err(Error::data(format!(
            "{loc}: {} does not run kube-apiserver: {what} ({}). kaudit-node adds --audit-* flags only to a kube-apiserver command line; \
             if this program is a wrapper that runs kube-apiserver with its arguments, say so with apiserver.version = \"X.Y.Z\" in the configuration",
            view.name,
            prog.binary.display()
        )));
    }
    if let (Some(rec), Some(now)) = (dropin.and_then(recorded), file.as_ref())
        && !rec.configured
        && rec.binary == prog.binary
        && rec.file.as_ref() == Some(now)
    {
        return Ok(Identity {
            binary: prog.binary,
            file,
            version: rec.version,
            source: Source::Recorded,
        });
    }
    let version = probe_version(root, &prog, VERSION_TIMEOUT).map_err(|e| {
        Error::data(format!(
            "{loc}: {} runs {}, which is not a kube-apiserver kaudit-node can identify: {}",
            view.name,
            prog.binary.display(),
            e.message
        ))
    })?;
    Ok(Identity {
        binary: prog.binary,
        file,
        version,
        source: Source::Probed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A node with `unit` as kube-apiserver.service and executables.
    fn node(unit: &str, exes: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let put = |p: &str, text: &str, mode: u32| {
            let host = t.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(&host, text).unwrap();
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        put("/etc/systemd/system/kube-apiserver.service", unit, 0o644);
        for (p, script) in exes {
            put(p, &format!("#!/bin/sh\n{script}\n"), 0o755);
        }
        t
    }

    fn identify_in(t: &tempfile::TempDir, configured: Option<&str>) -> Result<Identity> {
        let root = Root::new(t.path());
        let view = crate::unit::load(&root, "kube-apiserver.service", "50-kaudit-node.conf")?;
        let v = configured.map(|c| Version::parse(c).unwrap());
        identify(&root, &view, v.as_ref(), None)
    }

    #[test]
    fn kube_apiserver_by_absolute_path_and_by_name() {
        let answer = r#"[ "$1" = --version ] && echo "Kubernetes v1.32.0" && exit 0; exit 3"#;
        let t = node(
            "[Service]\nExecStart=/opt/k8s/kube-apiserver --v=2\n",
            &[("/opt/k8s/kube-apiserver", answer)],
        );
        let id = identify_in(&t, None).unwrap();
        assert_eq!(id.binary, Path::new("/opt/k8s/kube-apiserver"));
        assert_eq!(id.version.to_string(), "v1.32.0");
        assert_eq!(id.source, Source::Probed);
        // A bare name is looked up in systemd's search path, in its order.
        let t = node(
            "[Service]\nExecStart=-kube-apiserver --v=2\n",
            &[("/usr/bin/kube-apiserver", answer)],
        );
        assert_eq!(
            identify_in(&t, None).unwrap().binary,
            Path::new("/usr/bin/kube-apiserver")
        );
    }

    #[test]
    fn hyperkube_with_its_component_from_the_environment() {
        let t = node(
            "[Service]\nEnvironment=COMPONENT=kube-apiserver\nExecStart=/usr/bin/hyperkube $COMPONENT --v=2\n",
            &[(
                "/usr/bin/hyperkube",
                r#"[ "$1 $2" = "kube-apiserver --version" ] && echo "Kubernetes v1.18.20" && exit 0; echo "$@"; exit 3"#,
            )],
        );
        let id = identify_in(&t, None).unwrap();
        assert_eq!(id.version.to_string(), "v1.18.20");
        let t = node(
            "[Service]\nExecStart=/usr/bin/hyperkube kubelet --v=2\n",
            &[("/usr/bin/hyperkube", "exit 0")],
        );
        let e = identify_in(&t, None).unwrap_err();
        assert_eq!(e.code, crate::error::ExitCode::DataErr);
        assert!(
            e.message.contains(
                "kube-apiserver.service does not run kube-apiserver: hyperkube runs \"kubelet\""
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn other_programs_are_refused_unless_configured() {
        let t = node(
            "[Service]\nExecStart=/usr/bin/openshift start master api\n",
            &[("/usr/bin/openshift", "exit 0")],
        );
        let e = identify_in(&t, None).unwrap_err();
        assert!(
            e.message.contains(
                "/etc/systemd/system/kube-apiserver.service:2: kube-apiserver.service does not run kube-apiserver: the program is \"openshift\" (first argument \"start\") (/usr/bin/openshift)"
            ),
            "{}",
            e.message
        );
        assert!(e.message.contains("apiserver.version"), "{}", e.message);
        let id = identify_in(&t, Some("v1.11.0")).unwrap();
        assert_eq!(id.source, Source::Configured);
    }

    #[test]
    fn a_binary_that_does_not_answer_like_kube_apiserver() {
        for (script, want) in [
            ("echo hello", "printed \"hello\", not \"Kubernetes vX.Y.Z\""),
            ("echo oops >&2; exit 2", "exited with exit status: 2"),
            ("exec sleep 5", "did not finish within 0.3 s"),
        ] {
            let t = node(
                "[Service]\nExecStart=/usr/local/bin/kube-apiserver\n",
                &[("/usr/local/bin/kube-apiserver", script)],
            );
            let root = Root::new(t.path());
            let view =
                crate::unit::load(&root, "kube-apiserver.service", "50-kaudit-node.conf").unwrap();
            let e = probe_version(&root, &program(&root, &view), Duration::from_millis(300))
                .unwrap_err();
            assert!(e.message.contains(want), "{script}: {}", e.message);
        }
        // No binary at all.
        let t = node("[Service]\nExecStart=/usr/local/bin/kube-apiserver\n", &[]);
        let e = identify_in(&t, None).unwrap_err();
        assert!(
            e.message
                .contains("cannot run /usr/local/bin/kube-apiserver --version"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_record_is_used_while_the_file_is_unchanged() {
        let t = node(
            "[Service]\nExecStart=/usr/local/bin/kube-apiserver\n",
            &[(
                "/usr/local/bin/kube-apiserver",
                r#"echo "Kubernetes v1.30.2""#,
            )],
        );
        let root = Root::new(t.path());
        let view =
            crate::unit::load(&root, "kube-apiserver.service", "50-kaudit-node.conf").unwrap();
        let first = identify(&root, &view, None, None).unwrap();
        let header = first.header_line();
        // The binary now answers differently, but it is the same file: not run.
        let again = identify(&root, &view, None, Some(&header)).unwrap();
        assert_eq!(
            (again.source, again.version.to_string()),
            (Source::Recorded, "v1.30.2".into())
        );
        // Replaced (a new inode): asked again.
        let host = t.path().join("usr/local/bin/kube-apiserver");
        std::fs::remove_file(&host).unwrap();
        std::fs::write(&host, "#!/bin/sh\necho \"Kubernetes v1.31.0\"\n").unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).unwrap();
        let new = identify(&root, &view, None, Some(&header)).unwrap();
        assert_eq!(
            (new.source, new.version.to_string()),
            (Source::Probed, "v1.31.0".into())
        );
    }

    #[test]
    fn header_round_trips() {
        let id = Identity {
            binary: "/usr/local/bin/kube-apiserver".into(),
            file: Some(FileId {
                dev: 2049,
                ino: 77,
                size: 94_000_000,
                mtime_sec: 1_733_112_345,
                mtime_nsec: 5,
            }),
            version: Version::parse("v1.32.0-rc.0").unwrap(),
            source: Source::Probed,
        };
        let line = id.header_line();
        assert_eq!(
            line,
            "# kube-apiserver: v1.32.0-rc.0 /usr/local/bin/kube-apiserver dev=2049 ino=77 size=94000000 mtime=1733112345.000000005"
        );
        let rec = recorded(&format!("# x\n{line}\n[Service]\n")).unwrap();
        assert_eq!(rec.version, id.version);
        assert_eq!(rec.binary, id.binary);
        assert_eq!(rec.file, id.file);
        assert!(!rec.configured);
        let conf = Identity {
            source: Source::Configured,
            ..id
        };
        assert_eq!(
            conf.header_line(),
            "# kube-apiserver: v1.32.0-rc.0 /usr/local/bin/kube-apiserver (apiserver.version)"
        );
        let rec = recorded(&conf.header_line()).unwrap();
        assert!(rec.configured);
        assert_eq!(rec.file, None);
        assert_eq!(recorded("# kube-apiserver: banana\n"), None);
    }
}
