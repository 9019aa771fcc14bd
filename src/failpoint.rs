//! Crash points for the fault tests, compiled in only with the
//! `failpoints` cargo feature (never in a release or a package).
//!
//! `KAUDIT_FAILPOINT=NAME` makes the process kill itself with SIGKILL when
//! it reaches the point NAME, as a crash or an OOM kill would;
//! `NAME=sleep` makes it stop there, for a test to kill it. Several points
//! may be listed, separated by commas. The points, in apply's order:
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
        if action == "sleep" {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
