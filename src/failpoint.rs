//! Crash points for the fault tests, compiled in only with the
//! `failpoints` cargo feature (never in a release or a package).
//!
//! `KAUDIT_FAILPOINT=NAME` makes the process kill itself with SIGKILL when
//! it reaches the point NAME, as a crash or an OOM kill would;
//! `NAME=sleep` makes it stop there, for a test to kill it; `NAME=wait`
//! makes it create `/run/kaudit-node-failpoint.NAME` and wait there until a
//! test has changed the world (filled a filesystem) and removed that file,
//! the first time the point is reached only. Several points may be listed,
//! separated by commas. The points, in apply's order:
//! `after-lock`, `after-backup`, `between-writes`, `after-reload`,
//! `restart-job` (the restart is queued, its job not yet done) and
//! `first-event` (waiting for the first audit event).

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let Ok(spec) = std::env::var("KAUDIT_FAILPOINT") else {
        return;
    };
    for item in spec.split(',') {
        let (point, action) = item.split_once('=').unwrap_or((item, "crash"));
        if point != name {
            continue;
        }
        eprintln!("kaudit-node: failpoint {name}: {action}");
        match action {
            "sleep" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            "wait" => wait_once(name),
            _ => {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Waits (once per point and process) until the test removes the file.
#[cfg(feature = "failpoints")]
fn wait_once(name: &str) {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static WAITED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = WAITED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string());
    if !first {
        return;
    }
    let flag = format!("/run/kaudit-node-failpoint.{name}");
    if let Err(e) = std::fs::write(&flag, b"") {
        eprintln!("kaudit-node: failpoint {name}: cannot create {flag}: {e}");
        return;
    }
    while std::path::Path::new(&flag).exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
