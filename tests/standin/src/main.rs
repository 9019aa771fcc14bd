//! # kube-apiserver TEST STAND-IN
//!
//! A test double for `kube-apiserver`, used by kaudit-node's tests where no real
//! apiserver exists. It serves no API. It behaves like upstream kube-apiserver
//! (v1.28.7 by default) in everything kaudit-node depends on, following the
//! upstream facts in `docs/reference.md` (its sections cited by heading):
//!
//! * command line parsed like pflag/cobra, `Error: …` and exit 1 on bad flags ("Audit
//!   flags by release", "Duplicate flags and compliance checks", "Observed on real apiservers");
//! * audit options validated like `AuditOptions.Validate()` ("Validation"), only when a backend
//!   is enabled, all errors in one `E… run.go:74] "command failed" err="…"` line
//!   ("Observed on real apiservers");
//! * the policy loaded like 1.26+ ("Policy loading"): strict first, lenient fallback with a warning;
//! * the log created by `ensureLogFile` and written through a lumberjack-style rotating
//!   writer; with no policy the file exists and stays empty ("Log writer and rotation");
//! * simulated requests audited under the policy at a steady rate, first event about
//!   0.6 s after start, then `READY=1` to `$NOTIFY_SOCKET` ("Signals and
//!   readiness", "Observed on real apiservers");
//! * SIGTERM/SIGINT → exit 0; SIGHUP kills it; SIGUSR1 ignored ("Signals and readiness").
//! * flag names normalised (`_` reads as `-`) and the audit flag set of the release
//!   `STANDIN_VERSION` names (`flags.rs`);
//! * an HTTPS listener on `--bind-address`:`--secure-port` (default 0.0.0.0:6443) from
//!   start-up, created where `SecureServingOptions.ApplyTo` creates it, whose `/readyz`
//!   answers 500 until `STANDIN_READY_AFTER` (default 1s) after the first audit event and
//!   200 `ok` after, behind upstream's authentication: with anonymous auth off
//!   (`--anonymous-auth=false`, or the `AlwaysAllow` authorizer, kube-apiserver's default
//!   mode) every request gets 401 (`serve.rs`);
//! * the requests that port serves audited as upstream's handler chain audits them
//!   (401s by `WithFailedAuthenticationAudit`, anonymous requests by `WithAudit`), under
//!   the same policy and into the same log as the simulated requests (`audit.rs`).
//!
//! Journal lines for tests: `Serving securely on ADDR` when the port is up,
//! `"STAND-IN: ready: all /readyz checks pass from now on"` when ready, and
//! `"STAND-IN: /readyz answered 200 for the first time"` before that first 200 is sent.
//!
//! Test hooks (environment: `STANDIN_READY_AFTER`, `STANDIN_SERVE=0`, …): see `--help`.

mod audit;
mod event;
mod flags;
mod gostr;
mod klog;
mod policy;
mod reqinfo;
mod serve;
mod sys;
mod timefmt;
mod validate;
mod writer;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::Backend;
use crate::event::Simulator;
use crate::sys::Signals;

/// The upstream release the stand-in imitates unless `STANDIN_VERSION` says otherwise.
const DEFAULT_VERSION: &str = "v1.28.7";
/// When the first audit event appears after start (0.64–0.71 s on a real v1.28.7).
const FIRST_EVENT_AFTER: Duration = Duration::from_millis(600);
/// When start-up failures after flag parsing are reported (0.16–0.22 s on a real v1.28.7).
const FAILURE_AFTER: Duration = Duration::from_millis(150);
const DEFAULT_RATE: f64 = 10.0;
/// With rate 0, the requests simulated once at the first tick: the server's own
/// `system:apiserver` requests (the first kinds of [`Simulator::next_request`]), as a
/// real apiserver makes them at start-up and then goes quiet.
const STARTUP_REQUESTS: u64 = 4;
const DEFAULT_FAILURE: &str = "unable to load server certificate: open /var/lib/kubernetes/kubernetes.pem: no such file or directory";

struct Version {
    /// As printed: `v1.28.7-standin`.
    text: String,
    /// The imitated release: `v1.28.7` (what the userAgent of events carries).
    base: String,
    major: String,
    minor: String,
    /// The minor release: it selects the audit flag set, and from 1.36 the new rotation
    /// defaults and `maxsize=0` semantics.
    release: flags::Release,
}

fn version() -> Version {
    // A real binary's release is built in; the stand-in's comes from the
    // environment, else from a file beside the executable
    // (`/usr/local/bin/kube-apiserver.version`), so that `--version` run
    // with an empty environment (as kaudit-node runs it) reports the
    // release the tests installed.
    let from_file = || {
        let exe = std::env::current_exe().ok()?;
        let mut name = exe.into_os_string();
        name.push(".version");
        let text = std::fs::read_to_string(name).ok()?;
        let t = text.trim();
        (!t.is_empty()).then(|| t.to_string())
    };
    let base = std::env::var("STANDIN_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(from_file)
        .unwrap_or_else(|| DEFAULT_VERSION.into());
    let base = if base.starts_with('v') {
        base
    } else {
        format!("v{base}")
    };
    let text = if base.contains("standin") {
        base.clone()
    } else {
        format!("{base}-standin")
    };
    let plain = base.trim_end_matches("-standin").to_string();
    let mut parts = base.trim_start_matches('v').split(['.', '-']);
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("28").to_string();
    let release = flags::Release::parse(&base).unwrap_or(flags::Release::new(1, 28));
    Version {
        text,
        base: plain,
        major,
        minor,
        release,
    }
}

/// A start-up failure: reported like cli.Run does, at upstream's pace, exit 1.
fn fatal(t0: Instant, err: &str) -> ! {
    if let Some(rest) = FAILURE_AFTER.checked_sub(t0.elapsed()) {
        std::thread::sleep(rest);
    }
    let _ = std::io::stderr()
        .lock()
        .write_all(klog::command_failed_line(err).as_bytes());
    exit(1)
}

fn usage_error(err: &str) -> ! {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("Error: {err}\n").as_bytes());
    exit(1)
}

/// The start-up failure hooks (`STANDIN_FAIL`, `STANDIN_FAIL_FILE`, `STANDIN_FAIL_IF_ARG`).
fn injected_failure(args: &[String]) -> Option<String> {
    let message = std::env::var("STANDIN_FAIL_MESSAGE")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEFAULT_FAILURE.into());
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if set("STANDIN_FAIL").is_some_and(|v| v != "0" && v != "false") {
        return Some(message);
    }
    if set("STANDIN_FAIL_FILE").is_some_and(|p| Path::new(&p).exists()) {
        return Some(message);
    }
    if let Some(pat) = set("STANDIN_FAIL_IF_ARG") {
        let hit = |a: &String| match pat.strip_suffix('*') {
            Some(prefix) => a.starts_with(prefix),
            None => *a == pat,
        };
        if args.iter().any(hit) {
            return Some(message);
        }
    }
    None
}

fn rate(cl: &flags::CommandLine) -> f64 {
    if let Some(r) = cl.standin_rate {
        return r;
    }
    match std::env::var("STANDIN_RATE") {
        Ok(v) if !v.is_empty() => match v.trim().parse::<f64>() {
            Ok(r) if r.is_finite() => r,
            _ => usage_error(&format!("invalid STANDIN_RATE {}", gostr::quote(&v))),
        },
        _ => DEFAULT_RATE,
    }
}

/// Everything the run loop needs once start-up succeeded.
struct Server {
    /// The policy and the log, shared with the secure port.
    backend: Arc<Backend>,
    sim: Simulator,
    /// The secure port's readiness; `None` when `STANDIN_SERVE=0`.
    readiness: Option<Arc<serve::Readiness>>,
}

impl Server {
    fn paused(&self) -> bool {
        self.backend.paused()
    }

    /// One simulated request: its events written whole, one write(2) per line (a
    /// failure is reported as audit.HandlePluginError does).
    fn request(&mut self) {
        if !self.backend.has_log() {
            return;
        }
        let now = SystemTime::now();
        let req = self.sim.next_request(now);
        let b = &self.backend;
        for (line, legacy) in self.sim.lines(&req, b.policy(), b.legacy(), now) {
            b.write_line(&line, &legacy);
        }
    }
}

fn main() {
    let t0 = Instant::now();
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => usage_error(&format!("cannot set up signals: {e}")),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ver = version();

    // cobra/pflag: parse, help, positional arguments (`Error: …`, exit 1, as on a real v1.28.7).
    let cl = flags::parse(&args, ver.release).unwrap_or_else(|e| usage_error(&e));
    for n in &cl.notices {
        eprintln!("{n}");
    }
    if cl.help {
        print!("{}", flags::help_text(&ver.text, ver.release));
        exit(0);
    }
    if let Err(e) = flags::check_positional(&cl) {
        usage_error(&e);
    }
    // verflag.PrintAndExitIfRequested.
    if let Some(v) = cl.version.as_deref() {
        match v {
            "false" | "0" | "f" | "F" | "FALSE" | "False" => {}
            "raw" => {
                println!(
                    "version.Info{{Major:{}, Minor:{}, GitVersion:{}, GitCommit:\"standin\", GitTreeState:\"clean\", BuildDate:\"\", GoVersion:\"\", Compiler:\"gc\", Platform:\"linux/amd64\"}}",
                    gostr::quote(&ver.major),
                    gostr::quote(&ver.minor),
                    gostr::quote(&ver.text)
                );
                exit(0);
            }
            "true" | "1" | "t" | "T" | "TRUE" | "True" => {
                println!("Kubernetes {}", ver.text);
                exit(0);
            }
            other => {
                println!("Kubernetes {other}");
                exit(0);
            }
        }
    }

    let ready_after =
        serve::parse_ready_after(std::env::var("STANDIN_READY_AFTER").ok().as_deref())
            .unwrap_or_else(|e| usage_error(&format!("invalid STANDIN_READY_AFTER: {e}")));

    klog::info_s(
        "standin.go:1",
        "TEST STAND-IN for kube-apiserver: not a Kubernetes API server, it serves no API",
        &[("version", &ver.text)],
    );
    klog::info("server.go:156", &format!("Version: {}", ver.text));

    if let Some(msg) = injected_failure(&args) {
        fatal(t0, &msg);
    }

    // Complete(): DefaultAdvertiseAddress (docs/reference.md, Observed on real apiservers:
    // without a default route).
    let route_check = std::env::var("STANDIN_SKIP_ROUTE_CHECK").map_or(true, |v| v != "1");
    let (advertise, bind) = (
        cl.other_last("advertise-address"),
        cl.other_last("bind-address"),
    );
    if route_check && let Err(e) = sys::check_advertise_address(advertise, bind) {
        fatal(t0, &e);
    }
    let serving = std::env::var("STANDIN_SERVE").map_or(true, |v| v != "0");

    // Complete(): MaybeDefaultWithSelfSignedCerts, then ApplyAuthorization.
    let tls = if serving {
        let advertise_ip = advertise.and_then(|a| a.trim().parse::<IpAddr>().ok());
        let (cert, key) = serve::self_signed_cert(advertise_ip, cl.bind_address())
            .unwrap_or_else(|e| fatal(t0, &e));
        klog::info_s(
            "standin.go:7",
            "STAND-IN: generated a self-signed serving certificate in memory (--tls-cert-file, --tls-private-key-file and --cert-dir are ignored)",
            &[],
        );
        Some(serve::tls_config(cert, key).unwrap_or_else(|e| fatal(t0, &e)))
    } else {
        None
    };
    let modes = cl.authorization_modes();
    if serve::always_allow_resets_anonymous(cl.anonymous_auth(), &modes) {
        klog::warning(
            "authentication.go:520",
            "AnonymousAuth is not allowed with the AlwaysAllow authorizer. Resetting AnonymousAuth to false. You should use a different authorizer",
        );
    }
    let anonymous = serve::anonymous_enabled(cl.anonymous_auth(), &modes);

    // Validate(): SecureServingOptions (Required: true for kube-apiserver, so 0 is
    // refused), then the audit options.
    let audit = cl.audit();
    let port = cl.secure_port();
    let mut errs = Vec::new();
    if !(1..=65535).contains(&port) {
        errs.push(format!(
            "--secure-port {port} must be between 1 and 65535, inclusive. It cannot be turned off with 0"
        ));
    }
    errs.extend(validate::validate(&audit));
    if !errs.is_empty() {
        fatal(t0, &validate::aggregate(&errs));
    }

    // BuildGenericConfig: SecureServingOptions.ApplyTo creates the listener before the
    // audit options are applied.
    let listener = tls
        .as_ref()
        .map(|_| serve::listen(cl.bind_address(), port as u16).unwrap_or_else(|e| fatal(t0, &e)));

    // ApplyTo(): the policy first, then the writer (docs/reference.md, Policy loading).
    let policy = if audit.policy_file.is_empty() {
        None
    } else {
        let loaded = policy::load_from_file(&audit.policy_file);
        if let Some(w) = &loaded.warning {
            klog::warning("reader.go:81", w);
        }
        match loaded.policy {
            Ok(p) => Some(p),
            Err(e) => fatal(t0, &e),
        }
    };
    let log = &audit.log;
    let sink = writer::get_writer(
        &log.path,
        log.max_size,
        log.max_age,
        log.max_backups,
        log.compress,
        ver.release.v136(),
    )
    .unwrap_or_else(|e| fatal(t0, &e));
    let verbosity: i64 = cl.other_last("v").and_then(|v| v.parse().ok()).unwrap_or(0);
    if sink.is_some() && policy.is_none() && verbosity >= 2 {
        klog::info(
            "audit.go:410",
            "No audit policy file provided, no events will be recorded for log backend",
        );
    }
    if validate::webhook_enabled(&audit.webhook) {
        klog::info_s(
            "standin.go:2",
            "STAND-IN: the audit webhook options are validated, but no webhook events are sent",
            &[],
        );
    }

    let rate = rate(&cl);
    // The secure port serves from here, so its requests are audited from the first.
    let backend = Arc::new(Backend::new(
        policy,
        sink,
        log.format == "legacy",
        std::env::var("STANDIN_PAUSE_FILE")
            .ok()
            .filter(|p| !p.is_empty()),
    ));
    let readiness = match (listener, tls) {
        (Some(listener), Some(tls)) => {
            let readiness = Arc::new(serve::Readiness::new(ready_after));
            let addr = listener
                .local_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            let site = Arc::new(serve::Site {
                tls,
                anonymous,
                readiness: Arc::clone(&readiness),
                version: serve::VersionInfo {
                    major: ver.major.clone(),
                    minor: ver.minor.clone(),
                    git_version: ver.text.clone(),
                },
                audit: Some(Arc::clone(&backend)),
            });
            if let Err(e) = serve::serve(listener, site) {
                fatal(
                    t0,
                    &format!("failed to start the secure serving thread: {e}"),
                );
            }
            // secure_serving.go's line, with the listener's address.
            klog::info(
                "secure_serving.go:213",
                &format!("Serving securely on {addr}"),
            );
            Some(readiness)
        }
        _ => None,
    };
    klog::info_s(
        "standin.go:3",
        "STAND-IN: simulating requests",
        &[("rate", &format!("{rate}/s")), ("auditLogPath", &log.path)],
    );
    let mut server = Server {
        backend,
        sim: Simulator::new(&ver.base),
        readiness,
    };
    run(&mut server, &signals, t0, rate);
}

/// The steady loop: requests at `rate` per second from `t0 + 0.6 s`, READY=1 after the
/// first tick, signals between ticks. With rate 0 the first tick simulates the server's
/// own start-up requests only, and nothing follows (a quiet node).
fn run(server: &mut Server, signals: &Signals, t0: Instant, rate: f64) -> ! {
    const MAX_BATCH: u64 = 10_000;
    let first = t0 + FIRST_EVENT_AFTER;
    let interval = (rate > 0.0).then(|| 1.0 / rate);
    let mut done: u64 = 0;
    let mut ready = false;
    loop {
        let now = Instant::now();
        let next_due = match (ready, interval) {
            (false, _) => first,
            (true, Some(iv)) => first + Duration::from_secs_f64(iv * done as f64),
            (true, None) => now + Duration::from_secs(1),
        };
        if next_due > now {
            let wait = (next_due - now).min(Duration::from_secs(1));
            if let Some(sig) = signals.wait(wait) {
                handle_signal(server, sig);
            }
            continue;
        }
        let due = match interval {
            Some(iv) => ((now - first).as_secs_f64() / iv).floor() as u64 + 1,
            None => 0,
        };
        if server.paused() {
            done = due.max(done);
        } else {
            let stop = due.min(done + MAX_BATCH);
            while done < stop {
                server.request();
                done += 1;
            }
            if !ready && interval.is_none() {
                for _ in 0..STARTUP_REQUESTS {
                    server.request();
                }
            }
        }
        if !ready {
            ready = true;
            if let Some(r) = &server.readiness {
                serve::start_ready_timer(r);
            }
            if matches!(sys::sd_notify("READY=1"), Ok(true)) {
                klog::info_s(
                    "standin.go:4",
                    "STAND-IN: sent READY=1 to $NOTIFY_SOCKET",
                    &[],
                );
            }
        }
        if interval.is_none()
            && let Some(sig) = signals.wait(Duration::from_secs(1))
        {
            handle_signal(server, sig);
        }
    }
}

fn handle_signal(server: &mut Server, sig: i32) {
    match sig {
        libc::SIGTERM | libc::SIGINT => {
            klog::info_s(
                "genericapiserver.go:541",
                "[graceful-termination] shutdown event",
                &[("name", "ShutdownInitiated")],
            );
            let _ = std::io::stdout().flush();
            klog::info_s(
                "standin.go:5",
                "STAND-IN: exiting on signal",
                &[("signal", sys::signal_name(sig))],
            );
            exit(0);
        }
        libc::SIGHUP => sys::die_from_signal(sig),
        libc::SIGUSR2 => {
            let state = if server.backend.toggle_pause() {
                "paused"
            } else {
                "resumed"
            };
            klog::info_s(
                "standin.go:6",
                "STAND-IN: SIGUSR2 toggled event writing",
                &[("state", state)],
            );
        }
        _ => {}
    }
}
