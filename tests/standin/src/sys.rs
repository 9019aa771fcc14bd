//! The process-level behaviour: signals as a Go program without handlers beyond
//! SIGINT/SIGTERM (`pkg/server/signal_posix.go`; docs/reference.md, Signals and readiness),
//! sd_notify, and the default-route check behind `Unable to find suitable network address`
//! (docs/reference.md, Observed on real apiservers).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The signals the main loop waits for with `sigtimedwait`. SIGUSR1 is ignored
/// (Go: "caught but no action"), SIGHUP kills the process like Go's default.
pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR2 (to be taken with `wait`), ignores SIGUSR1.
    /// Call before any thread exists.
    pub fn install() -> io::Result<Signals> {
        // SAFETY: plain libc calls on a local sigset; the process is single-threaded here.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR2] {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            Ok(Signals { set })
        }
    }

    /// Waits up to `timeout` for one of the blocked signals.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        loop {
            // SAFETY: `set` and `ts` are valid for the call; no siginfo is requested.
            let r = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
            if r > 0 {
                return Some(r);
            }
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None;
        }
    }
}

/// Dies of `sig` as Go's runtime does for an unhandled SIGHUP (`dieFromSignal`).
pub fn die_from_signal(sig: i32) -> ! {
    // SAFETY: resetting a disposition, unblocking and raising are async-safe libc calls.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(2)
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "terminated",
        libc::SIGINT => "interrupt",
        libc::SIGHUP => "hangup",
        libc::SIGUSR2 => "user defined signal 2",
        _ => "signal",
    }
}

/// `sd_notify(0, msg)` to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
/// Returns whether a message was sent.
pub fn sd_notify(msg: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    if target.is_empty() {
        return Ok(false);
    }
    let sock = UnixDatagram::unbound()?;
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(&target)?,
    };
    sock.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(true)
}

/// Whether `/proc/net/route` or `/proc/net/ipv6_route` has a default route through
/// an interface other than `lo` (what `utilnet.ChooseHostInterface` needs).
pub fn has_default_route(ipv4: &str, ipv6: &str) -> bool {
    let v4 = ipv4.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[1] == "00000000" && f[0] != "lo"
    });
    let v6 = ipv6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 10 && f[0] == "00000000000000000000000000000000" && f[1] == "00" && f[9] != "lo"
    });
    v4 || v6
}

/// `DefaultAdvertiseAddress` of `ServerRunOptions.Complete()`: without an explicit
/// advertise or bind address, a machine with no default route cannot start.
pub fn check_advertise_address(advertise: Option<&str>, bind: Option<&str>) -> Result<(), String> {
    let specified = |a: Option<&str>| {
        a.map(|s| !s.is_empty() && s != "0.0.0.0" && s != "::" && s != "[::]")
            .unwrap_or(false)
    };
    if specified(advertise) || specified(bind) {
        return Ok(());
    }
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    if has_default_route(&v4, &v6) {
        return Ok(());
    }
    Err("Unable to find suitable network address.error='no default routes found in \"/proc/net/route\" or \"/proc/net/ipv6_route\"'. Try to set the AdvertiseAddress directly or provide a valid BindAddress to fix this.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_detection() {
        let hdr =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
        let with = format!("{hdr}eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
        let without = format!("{hdr}eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        let lo6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert!(has_default_route(&with, ""));
        assert!(!has_default_route(&without, lo6));
        assert!(!has_default_route(hdr, ""));
    }

    #[test]
    fn explicit_address_skips_the_check() {
        assert!(check_advertise_address(Some("10.0.0.1"), None).is_ok());
        assert!(check_advertise_address(None, Some("127.0.0.1")).is_ok());
    }

    #[test]
    fn notify_abstract_socket() {
        let name = format!("standin-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        // SAFETY: tests in this module do not read NOTIFY_SOCKET concurrently.
        unsafe { std::env::set_var("NOTIFY_SOCKET", format!("@{name}")) };
        assert!(sd_notify("READY=1").unwrap());
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!sd_notify("READY=1").unwrap());
    }
}
