use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode as ProcessExit;

use clap::Parser;

use kaudit_node::check;
use kaudit_node::cli::{CheckFormat, Cli, Command, NodeArgs, OutputFormat, PolicyCommand};
use kaudit_node::error::{Error, ExitCode, Result};
use kaudit_node::policy::{self, Preset};
use kaudit_node::root::Root;
use kaudit_node::{apply, config, events, lock, logging, observe, plan, report, systemd};

fn main() -> ProcessExit {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            // --help, --version: clap prints them and exits 0.
            e.exit()
        }
        let _ = e.print();
        std::process::exit(usage_exit_code(&e))
    });
    logging::init(cli.verbose);
    // With --format json, every exit prints one object, early errors too.
    let json = matches!(
        cli.command,
        Command::Apply {
            format: OutputFormat::Json,
            ..
        } | Command::Remove {
            format: OutputFormat::Json,
            ..
        } | Command::Plan {
            format: OutputFormat::Json,
            ..
        }
    );
    match run(cli) {
        Ok(code) => ProcessExit::from(code.code() as u8),
        Err(e) => {
            if json {
                let _ = out(&format!(
                    "{:#}\n",
                    serde_json::json!({
                        "changed": false,
                        "error": e.message,
                        "exit_code": e.code.code(),
                    })
                ));
            }
            let _ = std::io::stdout().flush();
            eprintln!("kaudit-node: error: {}", e.message.replace('\n', "\n  "));
            ProcessExit::from(e.code.code() as u8)
        }
    }
}

fn settings(node: &NodeArgs) -> Result<config::Settings> {
    match &node.config {
        Some(p) => config::load(p, true),
        // Without --config, the configuration is a node file like any other.
        None => config::load(
            &Root::new(&node.root).host_path(Path::new(config::DEFAULT_PATH)),
            false,
        ),
    }
}

/// The exit code of a usage error. `check` is a monitoring plugin: a usage
/// error is UNKNOWN (3), not clap's 2, which a monitor reads as CRITICAL;
/// everything else follows sysexits: 64 (EX_USAGE). Which subcommand it
/// was comes from clap's own parse of the same argv with errors ignored
/// (an option's value is never taken for a subcommand's name).
fn usage_exit_code(e: &clap::Error) -> i32 {
    use clap::CommandFactory;
    let sub = match e.kind() {
        clap::error::ErrorKind::InvalidSubcommand => None,
        _ => Cli::command()
            .ignore_errors(true)
            .try_get_matches()
            .ok()
            .and_then(|m| m.subcommand_name().map(str::to_string)),
    };
    if sub.as_deref() == Some("check") {
        3
    } else {
        64
    }
}

/// The settings of apply and plan, refused when an input that decides
/// them is not trusted ([`kaudit_node::trust`]).
fn trusted_settings(node: &NodeArgs, root: &Root) -> Result<config::Settings> {
    let s = settings(node)?;
    let config = kaudit_node::trust::config_node_path(root, node.config.as_deref());
    kaudit_node::trust::require(root, &s, config.as_deref())?;
    Ok(s)
}

fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|_| o.flush())
        .or_else(|e| {
            // A closed pipe (`| head`) is not an error worth reporting.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(Error::io(format!("stdout: {e}")))
            }
        })
}

fn progress(msg: &str) {
    tracing::info!("{msg}");
}

/// apply and remove change a live node: root only, checked before anything.
fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::new(
            ExitCode::NoPerm,
            format!("{what} changes systemd units and restarts kube-apiserver: run it as root"),
        ));
    }
    Ok(())
}

fn print_report(r: &apply::Report, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Json => out(&format!(
            "{:#}\n",
            serde_json::to_value(r).expect("reports serialize")
        )),
        OutputFormat::Text => out(&report::apply_text(r)),
    }
}

/// `--root` must be a directory: a missing one is its own error, not a
/// missing unit under it.
fn require_root_dir(node: &NodeArgs) -> Result<()> {
    match std::fs::metadata(&node.root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::new(
            ExitCode::NoInput,
            format!("--root {}: not a directory", node.root.display()),
        )),
        Err(e) => Err(Error::new(
            ExitCode::NoInput,
            format!("--root {}: {e}", node.root.display()),
        )),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Apply { node, .. } | Command::Remove { node, .. } | Command::Plan { node, .. } => {
            require_root_dir(node)?
        }
        _ => {}
    }
    match cli.command {
        Command::Apply {
            node,
            dry_run,
            no_restart,
            detailed_exitcodes,
            format,
        } => {
            let root = Root::new(&node.root);
            let s = trusted_settings(&node, &root)?;
            if dry_run {
                let p = plan::plan(&s, &observe::observe(&root, &s)?)?;
                print_plan(&p, format)?;
                // Nothing changed; with --detailed-exitcodes, 2 says changes are pending.
                return Ok(if detailed_exitcodes && !p.is_converged() {
                    ExitCode::Changes
                } else {
                    ExitCode::Ok
                });
            }
            let _lock = lock_for(&root, "apply")?;
            kaudit_node::failpoint::hit("after-lock");
            let observed = observe::observe(&root, &s)?;
            let p = plan::plan(&s, &observed)?;
            let r = execute(
                &root,
                &s,
                &observed.paths,
                &p,
                apply::Options { no_restart },
            )?;
            print_report(&r, format)?;
            Ok(if detailed_exitcodes {
                ExitCode::Raw(apply::detailed_exit(&r))
            } else {
                r.exit_code()
            })
        }
        Command::Remove {
            node,
            keep_policy,
            dry_run,
            format,
        } => {
            let s = settings(&node)?;
            let root = Root::new(&node.root);
            if dry_run {
                let p = plan::plan_remove(&s, &observe::observe_removal(&root, &s)?, keep_policy);
                print_plan(&p, format)?;
                return Ok(ExitCode::Ok);
            }
            let _lock = lock_for(&root, "remove")?;
            let observed = observe::observe_removal(&root, &s)?;
            let p = plan::plan_remove(&s, &observed, keep_policy);
            let r = execute(&root, &s, &observed.paths, &p, apply::Options::default())?;
            print_report(&r, format)?;
            Ok(r.exit_code())
        }
        Command::Plan { node, format } => {
            let root = Root::new(&node.root);
            let s = trusted_settings(&node, &root)?;
            let p = plan::plan(&s, &observe::observe(&root, &s)?)?;
            print_plan(&p, format)?;
            Ok(if p.is_converged() {
                ExitCode::Ok
            } else {
                ExitCode::Changes
            })
        }
        Command::Check {
            node,
            format,
            prometheus,
            warn_age,
            crit_age,
            warn_free,
            crit_free,
            probe,
        } => Ok(run_check(
            &node,
            format,
            prometheus.as_deref(),
            &check::Thresholds {
                warn_age: warn_age.as_std(),
                crit_age: crit_age.as_std(),
                warn_free,
                crit_free,
            },
            probe,
        )),
        Command::Events(a) => run_events(&a),
        Command::Policy(PolicyCommand::Show { preset }) => {
            out(preset.text())?;
            Ok(ExitCode::Ok)
        }
        Command::Policy(PolicyCommand::List) => {
            let mut t = String::new();
            for p in Preset::ALL {
                t.push_str(&format!("{:<12} {}\n", p.name(), p.description()));
            }
            out(&t)?;
            Ok(ExitCode::Ok)
        }
        Command::Policy(PolicyCommand::Validate {
            file,
            strict,
            format,
        }) => validate_policy(&file, strict, format),
    }
}

/// `check`: a monitoring plugin's verdict, as text (or JSON) on stdout and
/// the exit code, and the Prometheus textfile when asked. What it cannot
/// read is UNKNOWN, the configuration included.
fn run_check(
    node: &NodeArgs,
    format: CheckFormat,
    prometheus: Option<&Path>,
    t: &check::Thresholds,
    probe: bool,
) -> ExitCode {
    let root = Root::new(&node.root);
    let verdict = match t
        .validate()
        .map_err(str::to_string)
        .and_then(|()| settings(node).map_err(|e| e.message))
    {
        Err(why) => check::Verdict::config_failed(&why),
        Ok(s) => {
            let status = systemd::Dbus::connect(std::time::Duration::from_secs(10))
                .and_then(|mut d| systemd::Systemd::status(&mut d, &s.unit))
                .map_err(|e| e.message);
            check::verdict(&root, node.config.as_deref(), &s, status, t, probe)
        }
    };
    let text = match format {
        CheckFormat::Json => format!("{:#}\n", check::render::json(&verdict)),
        CheckFormat::Nagios => check::render::nagios(&verdict),
    };
    let mut state = verdict.state();
    let _ = out(&text);
    if let Some(p) = prometheus
        && let Err(e) = kaudit_node::effects::write_host_file_atomic(
            p,
            check::render::prometheus(&verdict).as_bytes(),
            0o644,
        )
    {
        eprintln!(
            "kaudit-node: error: {}: cannot write the Prometheus file: {e}",
            p.display()
        );
        state = check::State::Unknown;
    }
    state.exit()
}

/// `events`: the query checked first, then the files (the `--file`s, or
/// the log the node writes and its backups), then the answer on stdout.
fn run_events(a: &kaudit_node::cli::EventsArgs) -> Result<ExitCode> {
    let filter = events::selection(a)?;
    let live = if a.file.is_empty() {
        require_root_dir(&a.node)?;
        let s = settings(&a.node)?;
        Some(events::live_log(&Root::new(&a.node.root), &s)?)
    } else {
        None
    };
    let paths = events::sources(a, live.as_deref())?;
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    events::run(a, &filter, &paths, &mut stdout, &mut std::io::stderr())
}

/// A plan, as `plan` prints it (and `apply --dry-run`, `remove --dry-run`).
fn print_plan(p: &plan::Plan, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Text => out(&report::plan_text(p)),
        OutputFormat::Json => out(&format!("{:#}\n", report::plan_json(p))),
    }
}

/// Root, and the node's lock (one apply or remove at a time), for `what`.
fn lock_for(root: &Root, what: &str) -> Result<lock::Lock> {
    require_root(what)?;
    lock::acquire(root, std::time::Duration::from_secs(300), &mut |m| {
        progress(m)
    })
}

/// The executor on the live node, over the system bus.
fn execute(
    root: &Root,
    s: &config::Settings,
    before: &std::collections::BTreeMap<std::path::PathBuf, observe::PathState>,
    p: &plan::Plan,
    opts: apply::Options,
) -> Result<apply::Report> {
    let mut sd = systemd::Dbus::connect(std::time::Duration::from_secs(30))?;
    Ok(apply::execute(
        root,
        &mut sd,
        s,
        before,
        p,
        opts,
        &mut |m| progress(m),
    ))
}

/// `policy validate FILE|-`: upstream's checks and the lints, as text or
/// JSON; exit 65 when invalid (or, with --strict, when it has warnings).
fn validate_policy(file: &Path, strict: bool, format: OutputFormat) -> Result<ExitCode> {
    let (label, bytes) = if file == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .take(observe::MAX_POLICY_BYTES + 1)
            .read_to_end(&mut b)
            .map_err(|e| Error::io(format!("standard input: {e}")))?;
        ("(stdin)".to_string(), b)
    } else {
        let label = file.display().to_string();
        let md = std::fs::metadata(file).map_err(|e| Error::read(&label, &e))?;
        if md.len() > observe::MAX_POLICY_BYTES {
            return Err(Error::data(format!(
                "{label}: {} bytes; kaudit-node refuses policies over {} bytes",
                md.len(),
                observe::MAX_POLICY_BYTES
            )));
        }
        (
            label.clone(),
            std::fs::read(file).map_err(|e| Error::read(&label, &e))?,
        )
    };
    let r = policy::validate(&label, &bytes);
    let ok = r.is_ok(strict);
    match format {
        OutputFormat::Text => {
            let mut t = r.render_text(strict);
            let (e, w) = (r.errors().count(), r.warnings().count());
            let n = |k: usize, one: &str, many: &str| {
                format!("{k} {}", if k == 1 { one } else { many })
            };
            if ok {
                t.push_str(&format!(
                    "{label}: valid ({}, {})\n",
                    n(r.rules, "rule", "rules"),
                    n(w, "warning", "warnings")
                ));
            } else {
                t.push_str(&format!(
                    "{label}: invalid ({}, {})\n",
                    n(e, "error", "errors"),
                    n(w, "warning", "warnings")
                ));
            }
            if ok { out(&t)? } else { eprint!("{t}") }
        }
        OutputFormat::Json => {
            let v = serde_json::json!({"file": label, "valid": ok, "strict": strict, "rules": r.rules, "diagnostics": r.diagnostics});
            out(&format!("{v:#}\n"))?;
        }
    }
    Ok(if ok { ExitCode::Ok } else { ExitCode::DataErr })
}
