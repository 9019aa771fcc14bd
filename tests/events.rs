//! `kaudit-node events` on real kube-apiserver v1.32 events: the live log and
//! five lumberjack backups in `../shared/data/audit-events/`, whose README
//! holds ground-truth counts made by the script beside them. The expected
//! numbers are read from that README, never written here; the files are
//! read in place or copied to a temporary directory, never into the repo.
//!
//! Rendered output (the text lines, the table, the trailer) is compared with
//! the golden files in `tests/golden/events/` (`KAUDIT_BLESS=1` rewrites them).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/audit-events");
    assert!(
        d.join("README.md").is_file(),
        "{}: the real audit events are missing; these tests need ../shared beside the repo",
        d.display()
    );
    d
}

/// The log files of a folder: backups by name, then the live `audit.log`.
fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("audit") && (n.ends_with(".log") || n.ends_with(".gz"))
        })
        .collect();
    v.sort();
    v
}

/// The README's table under `### TITLE`: first column → second column.
fn table(title: &str) -> BTreeMap<String, u64> {
    let readme = std::fs::read_to_string(data().join("README.md")).unwrap();
    let start = readme
        .find(&format!("### {title}\n"))
        .unwrap_or_else(|| panic!("README has no table {title:?}"));
    readme[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[2].parse().unwrap())
        })
        .collect()
}

fn category(name: &str) -> u64 {
    table("Categories")[name]
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn events(args: &[&str], files: &[PathBuf]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaudit-node"));
    c.arg("events");
    for f in files {
        c.arg("--file").arg(f);
    }
    let o = c.args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn count(args: &[&str], files: &[PathBuf]) -> u64 {
    let mut a = args.to_vec();
    a.push("--count");
    let r = events(&a, files);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{args:?}: {:?}", r.stdout))
}

/// Every non-blank line of the files, in file order.
fn all_lines(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every line of the files, decoded, for the counts that the README does
/// not give (an independent reading with serde_json::Value).
fn all_events(files: &[PathBuf]) -> Vec<serde_json::Value> {
    all_lines(files)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The answers a folder of logs gives to each question, in one line each.
fn answers(files: &[PathBuf]) -> Vec<(String, u64)> {
    [
        &["--secrets"][..],
        &["--exec"],
        &["--resource", "pods/exec"],
        &["--rbac"],
        &["--rbac", "--code", "2xx"],
        &["--denied"],
        &["--anonymous"],
        &["--code", "401"],
        &["--code", "403"],
        &[],
    ]
    .iter()
    .map(|a| (a.join(" "), count(a, files)))
    .collect()
}

#[test]
fn named_questions_give_the_ground_truth() {
    let files = logs(&data());
    assert_eq!(files.len(), 6);
    let got: BTreeMap<String, u64> = answers(&files).into_iter().collect();
    assert_eq!(got["--secrets"], category("secrets accesses"));
    assert_eq!(got["--resource pods/exec"], category("exec attempts"));
    assert_eq!(got["--rbac"], category("RBAC changes"));
    assert_eq!(
        got["--rbac --code 2xx"],
        category("RBAC changes, succeeded (code < 300)")
    );
    assert_eq!(
        got["--denied"],
        category("401 responses") + category("403 responses")
    );
    assert_eq!(got["--code 401"], category("401 responses"));
    assert_eq!(got["--code 403"], category("403 responses"));
    assert_eq!(
        got["--anonymous"],
        table("Events by user.username")["system:anonymous"]
    );
    let total = table("Events by level").values().sum::<u64>();
    assert_eq!(got[""], total);
    // --exec also takes attach and portforward, which the README does not
    // count on their own.
    let pods_sub = |s: &[&str]| {
        all_events(&files)
            .iter()
            .filter(|e| {
                e["objectRef"]["resource"] == "pods"
                    && s.iter().any(|x| e["objectRef"]["subresource"] == *x)
            })
            .count() as u64
    };
    assert_eq!(got["--exec"], pods_sub(&["exec", "attach", "portforward"]));
    assert!(got["--exec"] > got["--resource pods/exec"]);
}

#[test]
fn the_by_user_table_is_the_ground_truth() {
    let r = events(&["--by", "user"], &logs(&data()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: BTreeMap<String, u64> = r
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let (n, user) = l.trim().split_once("  ").unwrap();
            (user.trim().to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(got, table("Events by user.username"));
    let by_code = events(&["--by", "code", "--format", "json"], &logs(&data()));
    let trailer: serde_json::Value = serde_json::from_str(by_code.stdout.trim()).unwrap();
    let rows: BTreeMap<String, u64> = trailer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().into(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, table("Events by responseStatus.code"));
    golden("by-user.txt", &r.stdout);
}

/// The folder, copied, and a configuration that names its live log: the
/// log found from the configuration, with its backups.
fn copy_with_config(dir: &Path) -> PathBuf {
    for f in logs(&data()) {
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!("[log]\npath = \"{}\"\n", dir.join("audit.log").display()),
    )
    .unwrap();
    cfg
}

#[test]
fn the_configured_log_and_its_backups_are_found() {
    let t = tempfile::tempdir().unwrap();
    let cfg = copy_with_config(t.path());
    let c = |q: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_kaudit-node"))
            .args([
                "events",
                "--config",
                cfg.to_str().unwrap(),
                "--root",
                "/",
                q,
                "--count",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(c("--secrets"), category("secrets accesses"));
    assert_eq!(
        c("--denied"),
        category("401 responses") + category("403 responses")
    );
}

#[test]
fn gzip_backups_give_the_same_answers() {
    let t = tempfile::tempdir().unwrap();
    copy_with_config(t.path());
    let plain = answers(&logs(t.path()));
    // Compress two backups, as --audit-log-compress and logrotate do.
    for f in logs(t.path()).iter().take(2) {
        let gz = PathBuf::from(format!("{}.gz", f.display()));
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(&std::fs::read(f).unwrap()).unwrap();
        e.finish().unwrap();
        std::fs::remove_file(f).unwrap();
    }
    let files = logs(t.path());
    assert_eq!(
        files
            .iter()
            .filter(|f| f.extension().unwrap() == "gz")
            .count(),
        2
    );
    assert_eq!(answers(&files), plain);
}

#[test]
fn torn_and_nul_padded_copies_give_the_same_answers_and_count_the_skips() {
    let t = tempfile::tempdir().unwrap();
    copy_with_config(t.path());
    let files = logs(t.path());
    let plain = answers(&files);
    // A backup cut in the middle of its last event (a crash before the
    // rotation), and a live log that copytruncate emptied under a writer
    // that kept its offset: NULs before the first line, and a NUL run in
    // the middle of the file (a second truncate).
    let cut = &files[0];
    let text = std::fs::read(cut).unwrap();
    let last = text[..text.len() - 1]
        .iter()
        .rposition(|c| *c == b'\n')
        .unwrap()
        + 1;
    let mut torn = text.clone();
    torn.extend_from_slice(&text[last..last + (text.len() - last) / 2]);
    std::fs::write(cut, &torn).unwrap();
    let live = files.last().unwrap();
    let text = std::fs::read(live).unwrap();
    let mid = text.len() / 2
        + text[text.len() / 2..]
            .iter()
            .position(|c| *c == b'\n')
            .unwrap()
        + 1;
    let mut padded = vec![0u8; 4096];
    padded.extend_from_slice(&text[..mid]);
    padded.extend_from_slice(&[0u8; 100]);
    padded.extend_from_slice(&text[mid..]);
    padded.extend_from_slice(&[0u8; 10]);
    std::fs::write(live, &padded).unwrap();
    assert_eq!(answers(&files), plain);
    let r = events(&["--secrets", "--count"], &files);
    assert_eq!(
        r.stderr,
        "kaudit-node: skipped 1 line (1 torn); cut 3 runs of NUL bytes\n"
    );
    let r = events(&["--secrets", "--format", "json"], &files);
    let trailer: serde_json::Value =
        serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(trailer["kind"], "kaudit-node.Summary");
    assert_eq!(
        trailer["skipped"],
        serde_json::json!({"torn": 1, "nul_runs": 3, "invalid": 0})
    );
    assert_eq!(trailer["matched"], category("secrets accesses"));
    // Also from the text log of a crashed process: not events, counted.
    let mut f = std::fs::OpenOptions::new().append(true).open(live).unwrap();
    f.write_all(b"I1202 05:10:58.1 klog text\n{\"kind\":\"Status\"}\n")
        .unwrap();
    let r = events(&["--count"], &files);
    assert_eq!(r.stdout.trim(), plain.last().unwrap().1.to_string());
    assert!(r.stderr.contains("2 not audit events"), "{}", r.stderr);
}

#[test]
fn json_is_the_raw_lines_merged_in_time_order() {
    let files = logs(&data());
    let raw: std::collections::HashSet<String> = all_lines(&files).into_iter().collect();
    // The files given newest first: the output is in time order anyway.
    let mut reversed = files.clone();
    reversed.reverse();
    let r = events(&["--format", "json"], &reversed);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let (trailer, body) = lines.split_last().unwrap();
    assert_eq!(
        body.len() as u64,
        table("Events by level").values().sum::<u64>()
    );
    assert!(body.iter().all(|l| raw.contains(*l)), "a line was changed");
    let ts: Vec<String> = body
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["stageTimestamp"].to_string()
        })
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "not in stageTimestamp order"
    );
    let t: serde_json::Value = serde_json::from_str(trailer).unwrap();
    assert_eq!(t["matched"].as_u64(), Some(body.len() as u64));
}

#[test]
fn text_lines_and_time_windows() {
    let files = logs(&data());
    let r = events(
        &[
            "--since",
            "2026-12-02T05:07:00Z",
            "--until",
            "2026-12-02T05:07:04Z",
            "--denied",
        ],
        &files,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    golden("denied-window.txt", &r.stdout);
    let r = events(
        &[
            "--user",
            "alice",
            "--verb",
            "list",
            "--resource",
            "pods",
            "--namespace",
            "dev",
            "--until",
            "2026-12-02T05:05:40Z",
        ],
        &files,
    );
    golden("alice-impersonating.txt", &r.stdout);
}

#[test]
fn errors_name_the_file_and_say_so_in_the_exit_code() {
    let files = logs(&data());
    let missing = PathBuf::from("/nonexistent/audit.log");
    let r = events(&["--secrets", "--count"], &[files[0].clone(), missing]);
    assert_eq!(r.code, 74);
    assert!(
        r.stderr.contains("/nonexistent/audit.log: cannot read"),
        "{}",
        r.stderr
    );
    assert_ne!(r.stdout.trim(), "0", "the readable file is still read");
    for bad in [
        &["--code", "4x"][..],
        &["--resource", "a//b"],
        &["--since", "yesterday"],
        &["--since", "1m", "--until", "2m"],
        &["--count", "--by", "user"],
    ] {
        let r = events(bad, &files);
        assert_eq!(r.code, 64, "{bad:?}: {}", r.stderr);
    }
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[log]\npath = \"{}/audit.log\"\n", t.path().display()),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kaudit-node"))
        .args(["events", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no audit log"));
}

/// What logrotate's copytruncate does: a copy, then the file emptied in
/// place.
fn copytruncate(live: &Path, copy: &Path) {
    std::fs::copy(live, copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(live)
        .unwrap()
        .set_len(0)
        .unwrap();
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/events")
        .join(name);
    if std::env::var_os("KAUDIT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (KAUDIT_BLESS=1 writes it)", path.display()));
    assert_eq!(got, want, "{name} differs from its golden file");
}

/// `--follow` on a log that is renamed away (the apiserver's rotation) and
/// then emptied in place (copytruncate; what it had not read yet comes from
/// logrotate's copy): every line appended after it started is printed
/// once, in order, and nothing from before.
#[test]
fn follow_reads_across_a_rename_and_a_truncate() {
    use std::io::{BufRead, BufReader};
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("audit.log");
    let cfg = t.path().join("config.toml");
    std::fs::write(&cfg, format!("[log]\npath = \"{}\"\n", live.display())).unwrap();
    let real: Vec<String> = std::fs::read_to_string(data().join("audit.log"))
        .unwrap()
        .lines()
        .take(40)
        .map(str::to_string)
        .collect();
    let append = |lines: &[String]| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&live)
            .unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    };
    append(&real[..5]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaudit-node"))
        .args([
            "events",
            "--config",
            cfg.to_str().unwrap(),
            "--follow",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A follower that stops printing must fail the test, not hang it.
    let (done, timeout) = std::sync::mpsc::channel::<()>();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let watchdog = std::thread::spawn(move || {
        if timeout
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_err()
        {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || {
        out.next()
            .expect("the follower printed nothing for 30 s")
            .unwrap()
    };
    // The follower starts at the end: wait until it has seen a new line.
    std::thread::sleep(std::time::Duration::from_millis(500));
    append(&real[5..10]);
    let mut seen: Vec<String> = (5..10).map(|_| next()).collect();
    // Rotation by rename: the last lines of the old file, then a new one.
    append(&real[10..12]);
    std::fs::rename(&live, t.path().join("audit-2026-12-02T05-10-58.190.log")).unwrap();
    append(&real[12..20]);
    seen.extend((10..20).map(|_| next()));
    // Rotation by copytruncate: lines the follower may not have read yet,
    // logrotate's copy, the file emptied in place, then written again.
    std::thread::sleep(std::time::Duration::from_millis(600));
    append(&real[20..23]);
    copytruncate(&live, &t.path().join("audit.log-20261202-1764651950"));
    std::thread::sleep(std::time::Duration::from_millis(600));
    append(&real[23..26]);
    seen.extend((20..26).map(|_| next()));
    // A copytruncate that the file outgrows again before the follower looks:
    // it sees the file start with other bytes.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let bytes = |r: std::ops::Range<usize>| real[r].iter().map(|l| l.len() + 1).sum::<usize>();
    assert!(bytes(26..40) > bytes(23..26));
    copytruncate(&live, &t.path().join("audit.log-20261202-1764652000"));
    append(&real[26..40]);
    seen.extend((26..40).map(|_| next()));
    let _ = done.send(());
    watchdog.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, real[5..40]);
}

/// The byte screen is only a shortcut: on every real line, under every kind
/// of filter with values from the data itself, an event the filter selects
/// is never screened out.
#[test]
fn the_screen_never_drops_a_selected_event() {
    use clap::Parser;
    use kaudit_node::events::{event::Event, filter::Filter};
    let lines = all_lines(&logs(&data()));
    let filters: Vec<Vec<&str>> = vec![
        vec!["--secrets"],
        vec!["--exec"],
        vec!["--rbac"],
        vec!["--denied"],
        vec!["--anonymous"],
        vec!["--user", "bob"],
        vec!["--user", "system:apiserver"],
        vec!["--user", "ali*"],
        vec!["--group", "developers"],
        vec!["--verb", "get,watch"],
        vec!["--resource", "pods/exec"],
        vec![
            "--resource",
            "rbac.authorization.k8s.io/clusterrolebindings",
        ],
        vec!["--namespace", "prod"],
        vec!["--name", "web-12"],
        vec!["--code", "409"],
        vec!["--code", "4xx"],
        vec!["--level", "Request"],
        vec!["--stage", "ResponseStarted"],
        vec!["--source-ip", "127.0.0.1"],
        vec!["--user-agent", "curl/*"],
        vec!["--secrets", "--user", "bob", "--code", "403"],
    ];
    let now = "2026-12-02T06:00:00Z".parse().unwrap();
    let mut selected = 0;
    for args in &filters {
        let cli = kaudit_node::cli::Cli::try_parse_from(
            ["kaudit-node", "events"].iter().chain(args.iter()),
        )
        .unwrap();
        let kaudit_node::cli::Command::Events(a) = cli.command else {
            unreachable!()
        };
        let f = Filter::from_args(&a, now).unwrap();
        let mut hits = 0;
        for l in &lines {
            let e = Event::parse(l.as_bytes()).expect("a real event");
            if f.matches(&e) {
                hits += 1;
                assert!(f.may_match(l.as_bytes()), "{args:?} screened out {l}");
            }
        }
        assert!(hits > 0, "{args:?} selects nothing: a useless case");
        selected += hits;
    }
    assert!(selected > 10_000, "{selected}");
}
