//! Proof that audit logging works: the running process's effective flags,
//! the log file it holds open, and new audit events.
//!
//! The parsers are pure (bytes in, facts out) and tested on fixtures; the
//! thin functions that read `/proc` and the log take a [`Root`].

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::apiserver::pflag;
use crate::config::Format;
use crate::flags::Flag;
use crate::root::Root;

/// Splits `/proc/PID/cmdline` (NUL-separated) into argv.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Every occurrence of `--name` in argv, in order, with its value as pflag
/// reads it (`--name=v`, `--name v` for non-boolean flags, bare `--name`
/// for booleans = "true").
/// Every spelling kube-apiserver reads as `--name` counts (`--audit_log_path`
/// is `--audit-log-path`, [`pflag`]); parsing stops at `--`.
pub fn occurrences(argv: &[String], name: &str, boolean: bool) -> Vec<String> {
    let long = format!("--{name}");
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        if argv[i] == "--" {
            break;
        }
        match pflag::long_flag(&argv[i]) {
            Some(f) if f.name == long => match f.inline {
                Some(v) => out.push(v.to_string()),
                None if boolean => out.push("true".into()),
                None => {
                    if let Some(next) = argv.get(i + 1) {
                        out.push(next.clone());
                        i += 1;
                    }
                }
            },
            _ => {}
        }
        i += 1;
    }
    out
}

/// How one of kaudit-node's flags stands in a running argv.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlagFinding {
    pub name: String,
    pub expected: String,
    /// Every value given, in order; pflag uses the last.
    pub values: Vec<String>,
}

impl FlagFinding {
    pub fn effective(&self) -> Option<&str> {
        self.values.last().map(String::as_str)
    }
    pub fn is_effective(&self) -> bool {
        self.effective() == Some(self.expected.as_str())
    }
    /// Given more than once: the apiserver takes the last, kube-bench the first.
    pub fn is_duplicated(&self) -> bool {
        self.values.len() > 1
    }
}

pub fn is_boolean_flag(name: &str) -> bool {
    name.ends_with("-compress") || name.ends_with("-enabled") || name.ends_with("-enable")
}

/// Checks each flag against argv.
pub fn check_flags(argv: &[String], flags: &[Flag]) -> Vec<FlagFinding> {
    flags
        .iter()
        .map(|f| FlagFinding {
            name: f.name.clone(),
            expected: f.effective_value().to_string(),
            values: occurrences(argv, &f.name, is_boolean_flag(&f.name)),
        })
        .collect()
}

/// Whether systemd's `ExecStart` argv (specifiers expanded, `$VAR` kept)
/// matches the planned argv (specifiers as written): word for word, a
/// planned word with a `%` specifier matching any expansion.
pub fn exec_matches(actual: &[String], planned: &[String]) -> bool {
    actual.len() == planned.len()
        && actual
            .iter()
            .zip(planned)
            .all(|(a, p)| a == p || p.contains('%'))
}

/// What a process holds open of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum LogHandle {
    /// The process has the file at the path open (same device and inode).
    Open,
    /// The process writes to a file that was deleted or replaced.
    Deleted,
    /// The process does not have the file open (yet).
    NotOpen,
}

/// What the process `pid` holds open of `log`: [`LogHandle::Open`] when one
/// of its descriptors is the file now at `log` (same device and inode, the
/// definitive test, which also works on fixture trees whose `fd` entries are
/// plain symbolic links); [`LogHandle::Deleted`] when one names `log` but is
/// another file (`LOG (deleted)`, or replaced since).
pub fn log_handle(root: &Root, pid: u32, log: &Path) -> std::io::Result<LogHandle> {
    let fd_dir = root.host_path(&PathBuf::from(format!("/proc/{pid}/fd")));
    let want = fs::metadata(root.host_path(log))
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let deleted_name = format!("{} (deleted)", log.display());
    let mut deleted = false;
    for e in fs::read_dir(fd_dir)? {
        let path = e?.path();
        let held = fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        if want.is_some() && held == want {
            return Ok(LogHandle::Open);
        }
        if let Ok(target) = fs::read_link(&path)
            && (target == log || target.as_os_str() == deleted_name.as_str())
        {
            deleted = true;
        }
    }
    Ok(if deleted {
        LogHandle::Deleted
    } else {
        LogHandle::NotOpen
    })
}

/// Reads `/proc/PID/cmdline` under the root.
pub fn read_cmdline(root: &Root, pid: u32) -> std::io::Result<Vec<String>> {
    Ok(parse_cmdline(&fs::read(root.host_path(&PathBuf::from(
        format!("/proc/{pid}/cmdline"),
    )))?))
}

/// Whether one line of the audit log is an audit event in `format`.
pub fn is_audit_event(line: &str, format: Format) -> bool {
    match format {
        Format::Json => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Head {
                kind: Option<String>,
                api_version: Option<String>,
                #[serde(rename = "auditID")]
                audit_id: Option<String>,
            }
            match serde_json::from_str::<Head>(line) {
                Ok(h) => {
                    h.kind.as_deref() == Some("Event")
                        && h.api_version.as_deref() == Some("audit.k8s.io/v1")
                        && h.audit_id.is_some()
                }
                Err(_) => false,
            }
        }
        // upstream EventString: `<RFC3339 time> AUDIT: id="…" stage="…" …`
        Format::Legacy => line
            .split_once(" AUDIT: id=\"")
            .is_some_and(|(ts, _)| ts.len() >= 20 && ts.as_bytes()[4] == b'-'),
    }
}

/// A position in the log: its inode and length at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark {
    pub ino: u64,
    pub len: u64,
}

pub fn log_mark(root: &Root, log: &Path) -> Option<LogMark> {
    fs::metadata(root.host_path(log)).ok().map(|m| LogMark {
        ino: m.ino(),
        len: m.len(),
    })
}

/// The first complete audit event written after `mark` (from the start
/// if the file was replaced since). Reads only what was appended.
pub fn first_event_after(
    root: &Root,
    log: &Path,
    mark: Option<LogMark>,
    format: Format,
) -> std::io::Result<Option<String>> {
    first_event_matching(root, log, mark, format, None)
}

/// The first complete audit event after `mark` that contains `needle`
/// (any event with `None`).
pub fn first_event_matching(
    root: &Root,
    log: &Path,
    mark: Option<LogMark>,
    format: Format,
    needle: Option<&str>,
) -> std::io::Result<Option<String>> {
    let mut f = fs::File::open(root.host_path(log))?;
    let md = f.metadata()?;
    let start = match mark {
        Some(m) if m.ino == md.ino() && m.len <= md.len() => m.len,
        _ => 0,
    };
    // Cap what is read in one go: a first event is found in the first few KiB.
    let len = (md.len() - start).min(4 << 20);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    // Only complete lines: a line still being written has no newline yet.
    Ok(text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(str::trim_end)
        .filter(|l| needle.is_none_or(|n| l.contains(n)))
        .find(|l| is_audit_event(l, format))
        .map(str::to_string))
}

/// When a process started, from `/proc/PID/stat` and `/proc/stat`'s btime.
pub fn process_start(root: &Root, pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(root.host_path(&PathBuf::from(format!("/proc/{pid}/stat"))))
        .ok()?;
    // Field 22 (starttime), counted after the ")" that ends the command name.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string(root.host_path(Path::new("/proc/stat")))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_millis(ticks * 1000 / hz.max(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cmdline_and_occurrences() {
        let argv = parse_cmdline(b"/usr/local/bin/kube-apiserver\0--audit-log-path\0/old.log\0--audit-log-maxage=7\0--audit-log-compress\0--audit-log-path=/var/log/a.log\0");
        assert_eq!(argv.len(), 6);
        assert_eq!(
            occurrences(&argv, "audit-log-path", false),
            v(&["/old.log", "/var/log/a.log"])
        );
        assert_eq!(occurrences(&argv, "audit-log-compress", true), v(&["true"]));
        assert_eq!(occurrences(&argv, "audit-log-maxage", false), v(&["7"]));
        // Every spelling kube-apiserver accepts is the same flag; `--` ends flags.
        let argv = v(&[
            "/k",
            "--audit_log_path=/a",
            "--audit-log_path",
            "/b",
            "--audit_log_compress",
            "--",
            "--audit-log-path=/c",
        ]);
        assert_eq!(
            occurrences(&argv, "audit-log-path", false),
            v(&["/a", "/b"])
        );
        assert_eq!(occurrences(&argv, "audit-log-compress", true), v(&["true"]));
        // A prefix of another flag's name is not an occurrence.
        assert!(occurrences(&argv, "audit-log", false).is_empty());
    }

    #[test]
    fn effective_is_last() {
        let argv = v(&["x", "--audit-log-maxage=7", "--audit-log-maxage=30"]);
        let f = check_flags(
            &argv,
            &[Flag {
                name: "audit-log-maxage".into(),
                value: Some("30".into()),
            }],
        );
        assert!(f[0].is_effective() && f[0].is_duplicated());
        let argv = v(&["x", "--audit-log-maxage=30", "--audit-log-maxage=7"]);
        assert!(
            !check_flags(
                &argv,
                &[Flag {
                    name: "audit-log-maxage".into(),
                    value: Some("30".into())
                }]
            )[0]
            .is_effective()
        );
    }

    #[test]
    fn specifiers_match_any_expansion() {
        assert!(exec_matches(
            &v(&["/bin/x", "--host=node1"]),
            &v(&["/bin/x", "--host=%H"])
        ));
        assert!(!exec_matches(
            &v(&["/bin/x", "--host=node1"]),
            &v(&["/bin/x", "--host=node2"])
        ));
        assert!(!exec_matches(&v(&["/bin/x"]), &v(&["/bin/x", "--v=2"])));
    }

    #[test]
    fn audit_lines() {
        let json = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5b1d","stage":"ResponseComplete"}"#;
        assert!(is_audit_event(json, Format::Json));
        assert!(!is_audit_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","auditID":"x"}"#,
            Format::Json
        ));
        assert!(!is_audit_event(
            "E1122 run.go:74] \"command failed\"",
            Format::Json
        ));
        assert!(!is_audit_event(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1""#,
            Format::Json
        ));
        let legacy = r#"2026-11-22T10:00:00.123456Z AUDIT: id="5b1d" stage="ResponseComplete" ip="127.0.0.1" method="list" user="system:apiserver""#;
        assert!(is_audit_event(legacy, Format::Legacy));
        assert!(!is_audit_event(json, Format::Legacy));
    }

    #[test]
    fn first_event_after_mark_skips_old_and_partial_lines() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let ev = |id: &str| {
            format!(
                "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"{id}\"}}\n"
            )
        };
        let log = Path::new("/audit.log");
        fs::write(t.path().join("audit.log"), ev("old")).unwrap();
        let mark = log_mark(&root, log);
        assert_eq!(
            first_event_after(&root, log, mark, Format::Json).unwrap(),
            None
        );
        let mut content = ev("old");
        content.push_str("{\"kind\":\"Event\",\"apiVer");
        fs::write(t.path().join("audit.log"), &content).unwrap();
        assert_eq!(
            first_event_after(&root, log, mark, Format::Json).unwrap(),
            None,
            "a partial line is not an event"
        );
        content.push_str("sion\":\"audit.k8s.io/v1\",\"auditID\":\"new\"}\n");
        fs::write(t.path().join("audit.log"), &content).unwrap();
        assert!(
            first_event_after(&root, log, mark, Format::Json)
                .unwrap()
                .unwrap()
                .contains("\"new\"")
        );
    }

    #[test]
    fn log_handle_on_this_process() {
        let t = tempfile::tempdir().unwrap();
        let (root, pid) = (Root::system(), std::process::id());
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let log = real.join("audit.log");
        assert_eq!(log_handle(&root, pid, &log).unwrap(), LogHandle::NotOpen);
        let held = fs::File::create(&log).unwrap();
        assert_eq!(log_handle(&root, pid, &log).unwrap(), LogHandle::Open);
        // The same file by another name: /proc shows the real path, the
        // device and inode decide.
        assert_eq!(
            log_handle(&root, pid, &t.path().join("link/audit.log")).unwrap(),
            LogHandle::Open
        );
        // Replaced under the process (logrotate without copytruncate).
        fs::write(real.join("new"), b"").unwrap();
        fs::rename(real.join("new"), &log).unwrap();
        assert_eq!(log_handle(&root, pid, &log).unwrap(), LogHandle::Deleted);
        // Deleted.
        fs::remove_file(&log).unwrap();
        assert_eq!(log_handle(&root, pid, &log).unwrap(), LogHandle::Deleted);
        drop(held);
        assert_eq!(log_handle(&root, pid, &log).unwrap(), LogHandle::NotOpen);
    }
}
