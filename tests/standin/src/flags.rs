//! Command-line parsing with pflag's rules (reference §2.1, §8):
//!
//! * `--name=value` and `--name value`; booleans as `--flag` or `--flag=true|false`
//!   (a boolean never takes the next argument); the last occurrence wins.
//! * The 32 audit flags of §2.1 are typed and checked like pflag does
//!   (`invalid argument "abc" for "--audit-log-maxsize" flag: strconv.ParseInt: …`).
//! * An unknown `--audit-*` flag is an error (`unknown flag: --audit-log-bogus`);
//!   every other flag is accepted and kept, so real vendor command lines work.
//! * `-h`/`--help`, `--version[=raw]`, and the shorthand `-v` for `--v`.

use std::collections::BTreeMap;

use crate::gostr::{self, format_duration, quote};

/// The Go type of a flag, which decides how its value is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Int64,
    Bool,
    Float32,
    Duration,
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "int",
            Kind::Int64 => "int",
            Kind::Bool => "",
            Kind::Float32 => "float32",
            Kind::Duration => "duration",
        }
    }
}

/// One audit flag of `k8s.io/apiserver/pkg/server/options/audit.go`.
pub struct FlagDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Default up to 1.35, as pflag would print it.
    pub default: &'static str,
    /// Default from 1.36 on (PR kubernetes/kubernetes#136478), where it differs.
    pub default_136: Option<&'static str>,
    pub usage: &'static str,
    /// Deprecated alias: the flag it sets, and pflag's deprecation note.
    pub alias_of: Option<&'static str>,
}

const fn f(name: &'static str, kind: Kind, default: &'static str, usage: &'static str) -> FlagDef {
    FlagDef {
        name,
        kind,
        default,
        default_136: None,
        usage,
        alias_of: None,
    }
}

const MODE_USAGE: &str = "Strategy for sending audit events. Blocking indicates sending events should block server responses. Batch causes the backend to buffer and write events asynchronously. Known modes are batch,blocking,blocking-strict.";

/// All 32 audit flags (reference §2.1): 1 policy + 17 log + 14 webhook.
pub const AUDIT_FLAGS: [FlagDef; 32] = [
    f(
        "audit-policy-file",
        Kind::Str,
        "",
        "Path to the file that defines the audit policy configuration.",
    ),
    // --- log backend (17)
    f(
        "audit-log-path",
        Kind::Str,
        "",
        "If set, all requests coming to the apiserver will be logged to this file.  '-' means standard out.",
    ),
    FlagDef {
        default_136: Some("366"),
        ..f(
            "audit-log-maxage",
            Kind::Int,
            "0",
            "The maximum number of days to retain old audit log files based on the timestamp encoded in their filename.",
        )
    },
    FlagDef {
        default_136: Some("100"),
        ..f(
            "audit-log-maxbackup",
            Kind::Int,
            "0",
            "The maximum number of old audit log files to retain. Setting a value of 0 will mean there's no restriction on the number of files.",
        )
    },
    FlagDef {
        default_136: Some("100"),
        ..f(
            "audit-log-maxsize",
            Kind::Int,
            "0",
            "The maximum size in megabytes of the audit log file before it gets rotated.",
        )
    },
    f(
        "audit-log-compress",
        Kind::Bool,
        "false",
        "If set, the rotated log files will be compressed using gzip.",
    ),
    f(
        "audit-log-format",
        Kind::Str,
        "json",
        "Format of saved audits. \"legacy\" indicates 1-line text format for each event. \"json\" indicates structured json format. Known formats are legacy,json.",
    ),
    f(
        "audit-log-version",
        Kind::Str,
        "audit.k8s.io/v1",
        "API group and version used for serializing audit events written to log.",
    ),
    f("audit-log-mode", Kind::Str, "blocking", MODE_USAGE),
    f(
        "audit-log-batch-buffer-size",
        Kind::Int,
        "10000",
        "The size of the buffer to store events before batching and writing. Only used in batch mode.",
    ),
    f(
        "audit-log-batch-max-size",
        Kind::Int,
        "1",
        "The maximum size of a batch. Only used in batch mode.",
    ),
    f(
        "audit-log-batch-max-wait",
        Kind::Duration,
        "0s",
        "The amount of time to wait before force writing the batch that hadn't reached the max size. Only used in batch mode.",
    ),
    f(
        "audit-log-batch-throttle-enable",
        Kind::Bool,
        "false",
        "Whether batching throttling is enabled. Only used in batch mode.",
    ),
    f(
        "audit-log-batch-throttle-qps",
        Kind::Float32,
        "0",
        "Maximum average number of batches per second. Only used in batch mode.",
    ),
    f(
        "audit-log-batch-throttle-burst",
        Kind::Int,
        "0",
        "Maximum number of requests sent at the same moment if ThrottleQPS was not utilized before. Only used in batch mode.",
    ),
    f(
        "audit-log-truncate-enabled",
        Kind::Bool,
        "false",
        "Whether event and batch truncating is enabled.",
    ),
    f(
        "audit-log-truncate-max-batch-size",
        Kind::Int64,
        "10485760",
        "Maximum size of the batch sent to the underlying backend. Actual serialized size can be several hundreds of bytes greater. If a batch exceeds this limit, it is split into several batches of smaller size.",
    ),
    f(
        "audit-log-truncate-max-event-size",
        Kind::Int64,
        "102400",
        "Maximum size of the audit event sent to the underlying backend. If the size of an event is greater than this number, first request and response are removed, and if this doesn't reduce the size enough, event is discarded.",
    ),
    // --- webhook backend (14)
    f(
        "audit-webhook-config-file",
        Kind::Str,
        "",
        "Path to a kubeconfig formatted file that defines the audit webhook configuration.",
    ),
    f(
        "audit-webhook-initial-backoff",
        Kind::Duration,
        "10s",
        "The amount of time to wait before retrying the first failed request.",
    ),
    FlagDef {
        alias_of: Some("audit-webhook-initial-backoff"),
        ..f(
            "audit-webhook-batch-initial-backoff",
            Kind::Duration,
            "10s",
            "Deprecated, use --audit-webhook-initial-backoff instead.",
        )
    },
    f(
        "audit-webhook-version",
        Kind::Str,
        "audit.k8s.io/v1",
        "API group and version used for serializing audit events written to webhook.",
    ),
    f("audit-webhook-mode", Kind::Str, "batch", MODE_USAGE),
    f(
        "audit-webhook-batch-buffer-size",
        Kind::Int,
        "10000",
        "The size of the buffer to store events before batching and writing. Only used in batch mode.",
    ),
    f(
        "audit-webhook-batch-max-size",
        Kind::Int,
        "400",
        "The maximum size of a batch. Only used in batch mode.",
    ),
    f(
        "audit-webhook-batch-max-wait",
        Kind::Duration,
        "30s",
        "The amount of time to wait before force writing the batch that hadn't reached the max size. Only used in batch mode.",
    ),
    f(
        "audit-webhook-batch-throttle-enable",
        Kind::Bool,
        "true",
        "Whether batching throttling is enabled. Only used in batch mode.",
    ),
    f(
        "audit-webhook-batch-throttle-qps",
        Kind::Float32,
        "10",
        "Maximum average number of batches per second. Only used in batch mode.",
    ),
    f(
        "audit-webhook-batch-throttle-burst",
        Kind::Int,
        "15",
        "Maximum number of requests sent at the same moment if ThrottleQPS was not utilized before. Only used in batch mode.",
    ),
    f(
        "audit-webhook-truncate-enabled",
        Kind::Bool,
        "false",
        "Whether event and batch truncating is enabled.",
    ),
    f(
        "audit-webhook-truncate-max-batch-size",
        Kind::Int64,
        "10485760",
        "Maximum size of the batch sent to the underlying backend. Actual serialized size can be several hundreds of bytes greater. If a batch exceeds this limit, it is split into several batches of smaller size.",
    ),
    f(
        "audit-webhook-truncate-max-event-size",
        Kind::Int64,
        "102400",
        "Maximum size of the audit event sent to the underlying backend. If the size of an event is greater than this number, first request and response are removed, and if this doesn't reduce the size enough, event is discarded.",
    ),
];

/// Boolean flags of a real kube-apiserver (and klog) that are not audit flags: like
/// pflag, `--allow-privileged foo` does not take `foo` as the value of these.
const OTHER_BOOL_FLAGS: &[&str] = &[
    "add-dir-header",
    "aggregator-reject-forwarding-redirect",
    "allow-privileged",
    "alsologtostderr",
    "anonymous-auth",
    "contention-profiling",
    "disable-http2-serving",
    "enable-aggregator-routing",
    "enable-bootstrap-token-auth",
    "enable-garbage-collector",
    "enable-logs-handler",
    "enable-priority-and-fairness",
    "enable-swagger-ui",
    "encryption-provider-config-automatic-reload",
    "kubelet-https",
    "log-json-split-stream",
    "log-text-split-stream",
    "logtostderr",
    "one-output",
    "permit-address-sharing",
    "permit-port-sharing",
    "profiling",
    "service-account-extend-token-expiration",
    "service-account-lookup",
    "shutdown-send-retry-after",
    "skip-headers",
    "skip-log-headers",
    "watch-cache",
];

/// Stand-in-only flags (not in kube-apiserver).
pub const STANDIN_RATE_FLAG: &str = "standin-rate";

pub fn audit_flag(name: &str) -> Option<&'static FlagDef> {
    AUDIT_FLAGS.iter().find(|d| d.name == name)
}

/// A typed flag value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    F32(f32),
    Dur(i64),
}

fn parse_value(kind: Kind, s: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Str => Value::Str(s.to_string()),
        Kind::Int | Kind::Int64 => Value::Int(gostr::parse_int(s)?),
        Kind::Bool => Value::Bool(gostr::parse_bool(s)?),
        Kind::Float32 => Value::F32(gostr::parse_float(s, 32)? as f32),
        Kind::Duration => Value::Dur(gostr::parse_duration(s)?),
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchOptions {
    pub mode: String,
    pub buffer_size: i64,
    pub max_batch_size: i64,
    pub max_batch_wait_ns: i64,
    pub throttle_enable: bool,
    pub throttle_qps: f32,
    pub throttle_burst: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TruncateOptions {
    pub enabled: bool,
    pub max_batch_size: i64,
    pub max_event_size: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogOptions {
    pub path: String,
    pub max_age: i64,
    pub max_backups: i64,
    pub max_size: i64,
    pub compress: bool,
    pub format: String,
    pub version: String,
    pub batch: BatchOptions,
    pub truncate: TruncateOptions,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookOptions {
    pub config_file: String,
    pub initial_backoff_ns: i64,
    pub version: String,
    pub batch: BatchOptions,
    pub truncate: TruncateOptions,
}

/// `AuditOptions` of audit.go, filled from the flags.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditOptions {
    pub policy_file: String,
    pub log: LogOptions,
    pub webhook: WebhookOptions,
}

/// What was on the command line.
#[derive(Clone, Debug, Default)]
pub struct CommandLine {
    /// Audit flag values by name: the defaults, overwritten by the last occurrence.
    values: BTreeMap<&'static str, Value>,
    /// Every non-audit flag in order, as (name, value); `None` for a bare boolean.
    pub other: Vec<(String, Option<String>)>,
    pub help: bool,
    /// The value of `--version` (`"true"` when given bare).
    pub version: Option<String>,
    pub positional: Vec<String>,
    /// Messages pflag prints while parsing (deprecated flags).
    pub notices: Vec<String>,
    pub standin_rate: Option<f64>,
}

impl CommandLine {
    fn str(&self, name: &str) -> String {
        match self.values.get(name) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }
    fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        }
    }
    fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }
    fn f32(&self, name: &str) -> f32 {
        match self.values.get(name) {
            Some(Value::F32(v)) => *v,
            _ => 0.0,
        }
    }
    fn dur(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Dur(v)) => *v,
            _ => 0,
        }
    }

    /// The last value given for a non-audit flag (`--advertise-address`, `--v`, …).
    pub fn other_last(&self, name: &str) -> Option<&str> {
        self.other
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or("true"))
    }

    fn batch(&self, plugin: &str) -> BatchOptions {
        let p = |s: &str| format!("audit-{plugin}-{s}");
        BatchOptions {
            mode: self.str(&p("mode")),
            buffer_size: self.int(&p("batch-buffer-size")),
            max_batch_size: self.int(&p("batch-max-size")),
            max_batch_wait_ns: self.dur(&p("batch-max-wait")),
            throttle_enable: self.bool(&p("batch-throttle-enable")),
            throttle_qps: self.f32(&p("batch-throttle-qps")),
            throttle_burst: self.int(&p("batch-throttle-burst")),
        }
    }

    fn truncate(&self, plugin: &str) -> TruncateOptions {
        let p = |s: &str| format!("audit-{plugin}-{s}");
        TruncateOptions {
            enabled: self.bool(&p("truncate-enabled")),
            max_batch_size: self.int(&p("truncate-max-batch-size")),
            max_event_size: self.int(&p("truncate-max-event-size")),
        }
    }

    pub fn audit(&self) -> AuditOptions {
        AuditOptions {
            policy_file: self.str("audit-policy-file"),
            log: LogOptions {
                path: self.str("audit-log-path"),
                max_age: self.int("audit-log-maxage"),
                max_backups: self.int("audit-log-maxbackup"),
                max_size: self.int("audit-log-maxsize"),
                compress: self.bool("audit-log-compress"),
                format: self.str("audit-log-format"),
                version: self.str("audit-log-version"),
                batch: self.batch("log"),
                truncate: self.truncate("log"),
            },
            webhook: WebhookOptions {
                config_file: self.str("audit-webhook-config-file"),
                initial_backoff_ns: self.dur("audit-webhook-initial-backoff"),
                version: self.str("audit-webhook-version"),
                batch: self.batch("webhook"),
                truncate: self.truncate("webhook"),
            },
        }
    }
}

fn default_for(def: &FlagDef, v136: bool) -> &'static str {
    match (v136, def.default_136) {
        (true, Some(d)) => d,
        _ => def.default,
    }
}

fn invalid_argument(value: &str, flag: &str, err: &str) -> String {
    format!(
        "invalid argument {} for {} flag: {err}",
        quote(value),
        quote(flag)
    )
}

/// Parses `args` (without argv\[0\]) as pflag would. `v136` selects the 1.36 defaults.
/// An `Err` is the text cobra prints after `Error: `.
pub fn parse(args: &[String], v136: bool) -> Result<CommandLine, String> {
    let mut cl = CommandLine::default();
    for def in AUDIT_FLAGS.iter().filter(|d| d.alias_of.is_none()) {
        let v = parse_value(def.kind, default_for(def, v136)).expect("defaults parse");
        cl.values.insert(def.name, v);
    }
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            cl.positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            if body.starts_with('-') || body.starts_with('=') || body.is_empty() {
                return Err(format!("bad flag syntax: {arg}"));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if let Some(def) = audit_flag(name) {
                let value = match (inline, def.kind) {
                    (Some(v), _) => v,
                    (None, Kind::Bool) => "true".to_string(),
                    (None, _) => {
                        if i < args.len() {
                            i += 1;
                            args[i - 1].clone()
                        } else {
                            return Err(format!("flag needs an argument: {arg}"));
                        }
                    }
                };
                let parsed = parse_value(def.kind, &value)
                    .map_err(|e| invalid_argument(&value, &format!("--{name}"), &e))?;
                let target = def.alias_of.unwrap_or(def.name);
                if def.alias_of.is_some() {
                    cl.notices
                        .push(format!("Flag --{name} has been deprecated, {}", def.usage));
                }
                let target = audit_flag(target).map(|d| d.name).unwrap_or(def.name);
                cl.values.insert(target, parsed);
                continue;
            }
            if name.starts_with("audit-") {
                return Err(format!("unknown flag: --{name}"));
            }
            match name {
                "help" => {
                    let v = inline.as_deref().unwrap_or("true");
                    cl.help =
                        gostr::parse_bool(v).map_err(|e| invalid_argument(v, "-h, --help", &e))?;
                }
                "version" => cl.version = Some(inline.unwrap_or_else(|| "true".into())),
                STANDIN_RATE_FLAG => {
                    let value = match inline {
                        Some(v) => v,
                        None if i < args.len() => {
                            i += 1;
                            args[i - 1].clone()
                        }
                        None => return Err(format!("flag needs an argument: {arg}")),
                    };
                    let rate = gostr::parse_float(&value, 64)
                        .map_err(|e| invalid_argument(&value, "--standin-rate", &e))?;
                    cl.standin_rate = Some(rate);
                }
                _ => {
                    let value = match inline {
                        Some(v) => Some(v),
                        None if OTHER_BOOL_FLAGS.contains(&name) => None,
                        None => match args.get(i) {
                            Some(next) if !next.starts_with('-') || looks_negative(next) => {
                                i += 1;
                                Some(next.clone())
                            }
                            _ => None,
                        },
                    };
                    cl.other.push((name.to_string(), value));
                }
            }
            continue;
        }
        if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap_or('-');
            let rest = &short[c.len_utf8()..];
            match c {
                'h' => cl.help = true,
                'v' => {
                    let value = if let Some(v) = rest.strip_prefix('=') {
                        v.to_string()
                    } else if !rest.is_empty() {
                        rest.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("flag needs an argument: 'v' in -{short}"));
                    };
                    cl.other.push(("v".into(), Some(value)));
                }
                _ => return Err(format!("unknown shorthand flag: '{c}' in -{short}")),
            }
            continue;
        }
        cl.positional.push(arg.clone());
    }
    Ok(cl)
}

fn looks_negative(s: &str) -> bool {
    s.len() > 1 && s.starts_with('-') && s[1..].bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

/// cobra's `Args` check of kube-apiserver: positional arguments are refused.
pub fn check_positional(cl: &CommandLine) -> Result<(), String> {
    let given: Vec<String> = cl
        .positional
        .iter()
        .filter(|a| !a.is_empty())
        .cloned()
        .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} does not take any arguments, got {}",
        quote("kube-apiserver"),
        gostr::quote_slice(&cl.positional)
    ))
}

/// The `--help` text: a stand-in banner and pflag-style help for the flags it implements.
pub fn help_text(version: &str, v136: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "kube-apiserver {version}: TEST STAND-IN for kube-apiserver.\n\
         \n\
         This is NOT a Kubernetes API server. It is a test double used by kaudit-node's\n\
         tests: it parses and validates the audit flags and policy exactly like upstream\n\
         kube-apiserver, creates and writes the audit log (lumberjack-style rotation), and\n\
         writes simulated audit events. It serves no API. Never install it on a real node.\n\
         \n\
         Usage:\n  kube-apiserver [flags]\n\nAudit flags:\n\n"
    ));
    let rows: Vec<(String, String)> = AUDIT_FLAGS
        .iter()
        .filter(|d| d.alias_of.is_none())
        .map(|d| {
            let left = match d.kind {
                Kind::Bool => format!("      --{}", d.name),
                k => format!("      --{} {}", d.name, k.type_name()),
            };
            let default = default_for(d, v136);
            let show_default = match d.kind {
                Kind::Str => !default.is_empty(),
                Kind::Bool => default != "false",
                Kind::Duration => default != "0s",
                _ => default != "0",
            };
            let default = if d.kind == Kind::Duration {
                format_duration(gostr::parse_duration(default).unwrap_or(0))
            } else if d.kind == Kind::Str {
                quote(default)
            } else {
                default.to_string()
            };
            let right = if show_default {
                format!("{} (default {default})", d.usage)
            } else {
                d.usage.to_string()
            };
            (left, right)
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 3;
    for (l, r) in rows {
        s.push_str(&format!("{l:width$}{r}\n"));
    }
    s.push_str(
        "\nOther flags:\n\n\
         \x20     --version version[=true]   --version, --version=raw prints version information and quits\n\
         \x20 -h, --help                     help for kube-apiserver\n\
         \x20 Any other --flag[=value] (e.g. --advertise-address, --etcd-servers, --v) is accepted\n\
         \x20 and ignored, except that --advertise-address/--bind-address are needed where the\n\
         \x20 machine has no default route, as upstream.\n\
         \n\
         Stand-in test hooks (not in kube-apiserver):\n\
         \n\
         \x20     --standin-rate float           simulated requests per second (default 10; env STANDIN_RATE)\n\
         \x20 STANDIN_FAIL=1                     fail at start-up with a realistic fatal error\n\
         \x20 STANDIN_FAIL_FILE=PATH             the same, while PATH exists\n\
         \x20 STANDIN_FAIL_IF_ARG=ARG            the same, when an argument equals ARG (ARG* = prefix)\n\
         \x20 STANDIN_FAIL_MESSAGE=TEXT          the error text for the three hooks above\n\
         \x20 STANDIN_PAUSE_FILE=PATH            write no events while PATH exists; SIGUSR2 toggles a pause\n\
         \x20 STANDIN_VERSION=v1.36.0            behave as that version (1.36+: new rotation defaults)\n\
         \x20 STANDIN_SKIP_ROUTE_CHECK=1         do not require a default route\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn audit_of(a: &[&str]) -> AuditOptions {
        parse(&args(a), false).expect("parses").audit()
    }

    #[test]
    fn there_are_32_audit_flags() {
        assert_eq!(AUDIT_FLAGS.len(), 32);
        let log = AUDIT_FLAGS
            .iter()
            .filter(|d| d.name.starts_with("audit-log-"))
            .count();
        let webhook = AUDIT_FLAGS
            .iter()
            .filter(|d| d.name.starts_with("audit-webhook-"))
            .count();
        assert_eq!((log, webhook), (17, 14));
    }

    #[test]
    fn defaults_up_to_1_35() {
        let o = audit_of(&[]);
        assert_eq!(o.policy_file, "");
        assert_eq!(o.log.path, "");
        assert_eq!(
            (o.log.max_age, o.log.max_backups, o.log.max_size),
            (0, 0, 0)
        );
        assert_eq!(o.log.format, "json");
        assert_eq!(o.log.version, "audit.k8s.io/v1");
        assert_eq!(o.log.batch.mode, "blocking");
        assert_eq!(o.log.batch.buffer_size, 10000);
        assert_eq!(o.log.batch.max_batch_size, 1);
        assert_eq!(o.log.truncate.max_batch_size, 10_485_760);
        assert_eq!(o.log.truncate.max_event_size, 102_400);
        assert_eq!(o.webhook.batch.mode, "batch");
        assert_eq!(o.webhook.batch.max_batch_size, 400);
        assert_eq!(o.webhook.batch.max_batch_wait_ns, 30_000_000_000);
        assert!(o.webhook.batch.throttle_enable);
        assert_eq!(o.webhook.batch.throttle_qps, 10.0);
        assert_eq!(o.webhook.batch.throttle_burst, 15);
        assert_eq!(o.webhook.initial_backoff_ns, 10_000_000_000);
    }

    #[test]
    fn defaults_from_1_36() {
        let o = parse(&[], true).unwrap().audit();
        assert_eq!(
            (o.log.max_age, o.log.max_backups, o.log.max_size),
            (366, 100, 100)
        );
    }

    #[test]
    fn both_value_forms_and_last_wins() {
        let o = audit_of(&[
            "--audit-log-path=/a.log",
            "--audit-log-maxage",
            "30",
            "--audit-log-maxage=31",
            "--audit-log-path",
            "/b.log",
        ]);
        assert_eq!(o.log.path, "/b.log");
        assert_eq!(o.log.max_age, 31);
    }

    #[test]
    fn booleans() {
        assert!(audit_of(&["--audit-log-compress"]).log.compress);
        assert!(
            !audit_of(&["--audit-log-compress", "--audit-log-compress=false"])
                .log
                .compress
        );
        let cl = parse(&args(&["--audit-log-compress", "false"]), false).unwrap();
        assert!(
            cl.audit().log.compress,
            "a boolean never takes the next argument"
        );
        assert_eq!(cl.positional, vec!["false".to_string()]);
        assert_eq!(
            check_positional(&cl).unwrap_err(),
            "\"kube-apiserver\" does not take any arguments, got [\"false\"]"
        );
    }

    #[test]
    fn value_flag_takes_next_argument_even_with_dashes() {
        let o = audit_of(&["--audit-log-path", "--audit-log-maxage=3"]);
        assert_eq!(o.log.path, "--audit-log-maxage=3");
    }

    #[test]
    fn errors_as_pflag() {
        let e = |a: &[&str]| parse(&args(a), false).unwrap_err();
        assert_eq!(
            e(&["--audit-log-bogus=1"]),
            "unknown flag: --audit-log-bogus"
        );
        assert_eq!(e(&["--audit-bogus"]), "unknown flag: --audit-bogus");
        assert_eq!(
            e(&["--audit-log-maxsize=abc"]),
            "invalid argument \"abc\" for \"--audit-log-maxsize\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            e(&["--audit-log-compress=yes"]),
            "invalid argument \"yes\" for \"--audit-log-compress\" flag: strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            e(&["--audit-log-batch-max-wait=5"]),
            "invalid argument \"5\" for \"--audit-log-batch-max-wait\" flag: time: missing unit in duration \"5\""
        );
        assert_eq!(
            e(&["--audit-log-path"]),
            "flag needs an argument: --audit-log-path"
        );
        assert_eq!(e(&["-x"]), "unknown shorthand flag: 'x' in -x");
        assert_eq!(e(&["---x"]), "bad flag syntax: ---x");
    }

    #[test]
    fn other_flags_are_accepted() {
        let cl = parse(
            &args(&[
                "--advertise-address=10.0.0.1",
                "--etcd-servers",
                "https://10.0.0.1:2379",
                "--allow-privileged",
                "--v=2",
                "-v",
                "4",
                "--enable-admission-plugins=NodeRestriction",
                "--audit-log-maxbackup=10",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(cl.other_last("advertise-address"), Some("10.0.0.1"));
        assert_eq!(cl.other_last("etcd-servers"), Some("https://10.0.0.1:2379"));
        assert_eq!(cl.other_last("allow-privileged"), Some("true"));
        assert_eq!(cl.other_last("v"), Some("4"));
        assert!(cl.positional.is_empty());
        assert_eq!(cl.audit().log.max_backups, 10);
    }

    #[test]
    fn deprecated_alias_sets_the_new_flag() {
        let cl = parse(&args(&["--audit-webhook-batch-initial-backoff=3s"]), false).unwrap();
        assert_eq!(cl.audit().webhook.initial_backoff_ns, 3_000_000_000);
        assert_eq!(
            cl.notices,
            vec![
                "Flag --audit-webhook-batch-initial-backoff has been deprecated, Deprecated, use --audit-webhook-initial-backoff instead."
                    .to_string()
            ]
        );
    }

    #[test]
    fn help_version_and_rate() {
        let cl = parse(&args(&["--help"]), false).unwrap();
        assert!(cl.help);
        let cl = parse(&args(&["--version"]), false).unwrap();
        assert_eq!(cl.version.as_deref(), Some("true"));
        let cl = parse(&args(&["--standin-rate", "250"]), false).unwrap();
        assert_eq!(cl.standin_rate, Some(250.0));
        let text = help_text("v1.28.7-standin", false);
        assert!(text.contains("TEST STAND-IN"));
        assert!(text.contains("--audit-log-maxsize int"));
        assert!(text.contains("(default \"json\")"));
        assert!(!text.contains("--audit-webhook-batch-initial-backoff"));
    }
}
