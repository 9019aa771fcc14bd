//! What the Rust tests share: whether a test that needs something this
//! machine lacks may skip.
//!
//! A test that cannot run fails, so that a green run means every test ran.
//! `KAUDIT_TEST_SKIP` (a comma-separated list: `root`, `systemd-analyze`)
//! lets a developer skip what their machine cannot do; CI never sets it.
#![allow(dead_code)]

/// Whether the effective user is root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `true` when `need` is there. Otherwise a skip when `KAUDIT_TEST_SKIP`
/// names `what` (with a note), and a failure when it does not.
pub fn require(need: bool, what: &str, why: &str) -> bool {
    if need {
        return true;
    }
    let allowed =
        std::env::var("KAUDIT_TEST_SKIP").is_ok_and(|v| v.split(',').any(|s| s.trim() == what));
    if allowed {
        eprintln!("note: skipped ({what}: {why}; KAUDIT_TEST_SKIP={what})");
        return false;
    }
    panic!(
        "this test needs {what} ({why}); run it as CI does, or set KAUDIT_TEST_SKIP={what} to skip it"
    );
}

/// Root, for the tests that set owners.
pub fn require_root(why: &str) -> bool {
    require(is_root(), "root", why)
}
