//! Command-line parsing with pflag's rules (docs/reference.md, Audit flags by release, and
//! Duplicate flags and compliance checks):
//!
//! * `--name=value` and `--name value`; booleans as `--flag` or `--flag=true|false`
//!   (a boolean never takes the next argument); the last occurrence wins.
//! * Flag names are normalised like `cliflag.WordSepNormalizeFunc`, which component-base's
//!   `cli.Run` sets on kube-apiserver's whole flag set: `_` reads as `-`, so
//!   `--audit_log_path` is `--audit-log-path` and the last occurrence wins across spellings.
//! * Each audit flag is registered only by the releases that have it (`introduced`,
//!   `removed`, from the `AddFlags` methods of `k8s.io/apiserver/pkg/server/options/audit.go`
//!   at each `kubernetes-1.N.0` tag): any other `--audit-*` flag is `unknown flag`.
//! * The 32 audit flags of current releases are typed and checked like pflag does
//!   (`invalid argument "abc" for "--audit-log-maxsize" flag: strconv.ParseInt: …`).
//! * An unknown `--audit-*` flag is an error (`unknown flag: --audit-log-bogus`);
//!   every other flag is accepted and kept, so real vendor command lines work.
//! * `-h`/`--help`, `--version[=raw]`, and the shorthand `-v` for `--v`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

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

/// A Kubernetes minor release (`1.28` for `v1.28.7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

impl Release {
    pub const fn new(major: u32, minor: u32) -> Release {
        Release { major, minor }
    }

    /// `v1.28.7`, `1.19`, `v1.32.0-rc.0-standin` → the minor release.
    pub fn parse(s: &str) -> Option<Release> {
        let mut parts = s.trim_start_matches('v').split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Release { major, minor })
    }

    /// 1.36 or later: the new rotation defaults and `maxsize=0` meaning no rotation.
    pub fn v136(self) -> bool {
        self >= Release::new(1, 36)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest release whose flag set the table below was checked against
/// (`kubernetes-1.12.0`). "Introduced 1.12" means "already there in 1.12"; an older
/// `STANDIN_VERSION` gets the 1.12 set.
pub const OLDEST_TABLED: Release = Release::new(1, 12);

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
    /// The first release that registers the flag.
    pub introduced: Release,
    /// The first release that no longer registers it.
    pub removed: Option<Release>,
}

impl FlagDef {
    /// Whether `release` registers the flag (releases before 1.12 count as 1.12).
    pub fn registered_in(&self, release: Release) -> bool {
        let r = release.max(OLDEST_TABLED);
        r >= self.introduced && self.removed.is_none_or(|gone| r < gone)
    }
}

const fn f(name: &'static str, kind: Kind, default: &'static str, usage: &'static str) -> FlagDef {
    FlagDef {
        name,
        kind,
        default,
        default_136: None,
        usage,
        alias_of: None,
        introduced: OLDEST_TABLED,
        removed: None,
    }
}

const MODE_USAGE: &str = "Strategy for sending audit events. Blocking indicates sending events should block server responses. Batch causes the backend to buffer and write events asynchronously. Known modes are batch,blocking,blocking-strict.";

/// Every audit flag any release from 1.12 on registers: the 32 of today (1 policy + 17
/// log + 14 webhook) and `--audit-dynamic-configuration` (`AuditDynamicOptions.AddFlags`,
/// `kubernetes-1.13.0` to `kubernetes-1.18.0`).
pub const AUDIT_FLAGS: [FlagDef; 33] = [
    f(
        "audit-policy-file",
        Kind::Str,
        "",
        "Path to the file that defines the audit policy configuration.",
    ),
    FlagDef {
        introduced: Release::new(1, 13),
        removed: Some(Release::new(1, 19)),
        ..f(
            "audit-dynamic-configuration",
            Kind::Bool,
            "false",
            "Enables dynamic audit configuration. This feature also requires the DynamicAuditing feature flag",
        )
    },
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
    // AuditLogOptions.AddFlags from kubernetes-1.20.0.
    FlagDef {
        introduced: Release::new(1, 20),
        ..f(
            "audit-log-compress",
            Kind::Bool,
            "false",
            "If set, the rotated log files will be compressed using gzip.",
        )
    },
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

/// Value flags of kube-apiserver, outside the audit set, that the stand-in reads: their
/// values are checked like pflag does, and they always take a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OtherKind {
    /// `fs.IntVar`.
    Int,
    /// `fs.IPVar` (`net.ParseIP` of the trimmed value).
    Ip,
    /// `fs.StringSliceVar`: comma-separated, and each occurrence appends.
    StringSlice,
}

const TYPED_OTHER_FLAGS: &[(&str, OtherKind)] = &[
    // SecureServingOptions.AddFlags (k8s.io/apiserver/pkg/server/options/serving.go).
    ("secure-port", OtherKind::Int),
    ("bind-address", OtherKind::Ip),
    // BuiltInAuthorizationOptions.AddFlags (pkg/kubeapiserver/options/authorization.go).
    ("authorization-mode", OtherKind::StringSlice),
];

/// kube-apiserver's default `--secure-port` (`NewSecureServingOptions` in
/// pkg/kubeapiserver/options/serving.go).
pub const DEFAULT_SECURE_PORT: i64 = 6443;

/// Stand-in-only flags (not in kube-apiserver).
pub const STANDIN_RATE_FLAG: &str = "standin-rate";

/// `cliflag.WordSepNormalizeFunc` (k8s.io/component-base/cli/flag/flags.go): `_` → `-`.
pub fn normalize(name: &str) -> String {
    name.replace('_', "-")
}

fn other_kind(name: &str) -> Option<OtherKind> {
    TYPED_OTHER_FLAGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// Go's `net.ParseIP(strings.TrimSpace(s))`, as pflag's `ipValue.Set` does.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| format!("failed to parse IP: {}", quote(s)))
}

fn check_other(name: &str, value: &str) -> Result<(), String> {
    let checked = if OTHER_BOOL_FLAGS.contains(&name) {
        gostr::parse_bool(value).map(|_| ())
    } else {
        match other_kind(name) {
            Some(OtherKind::Int) => gostr::parse_int(value).map(|_| ()),
            Some(OtherKind::Ip) => parse_ip(value).map(|_| ()),
            Some(OtherKind::StringSlice) | None => Ok(()),
        }
    };
    checked.map_err(|e| invalid_argument(value, &format!("--{name}"), &e))
}

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

    /// The last value given for a non-audit flag (`--advertise-address`, `--v`, …), by its
    /// normalised name.
    pub fn other_last(&self, name: &str) -> Option<&str> {
        self.other
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or("true"))
    }

    /// `--secure-port` (checked as an int while parsing).
    pub fn secure_port(&self) -> i64 {
        self.other_last("secure-port")
            .and_then(|v| gostr::parse_int(v).ok())
            .unwrap_or(DEFAULT_SECURE_PORT)
    }

    /// `--bind-address`, default 0.0.0.0 (`NewSecureServingOptions`).
    pub fn bind_address(&self) -> IpAddr {
        self.other_last("bind-address")
            .and_then(|v| parse_ip(v).ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// `--anonymous-auth`, default true (`BuiltInAuthenticationOptions.WithAnonymous`).
    pub fn anonymous_auth(&self) -> bool {
        self.other_last("anonymous-auth")
            .and_then(|v| gostr::parse_bool(v).ok())
            .unwrap_or(true)
    }

    /// The authorization modes in force: every `--authorization-mode` occurrence appended
    /// (pflag's string slice), else `AlwaysAllow` unless `--authorization-config` is given
    /// (`BuiltInAuthorizationOptions.Complete`; the default of releases before it).
    pub fn authorization_modes(&self) -> Vec<String> {
        let given: Vec<&str> = self
            .other
            .iter()
            .filter(|(n, _)| n == "authorization-mode")
            .map(|(_, v)| v.as_deref().unwrap_or(""))
            .collect();
        if given.is_empty() {
            if self.other_last("authorization-config").is_some() {
                return Vec::new();
            }
            return vec!["AlwaysAllow".to_string()];
        }
        given
            .iter()
            .filter(|v| !v.is_empty())
            .flat_map(|v| v.split(','))
            .map(str::to_string)
            .collect()
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

/// Parses `args` (without argv\[0\]) as pflag would with the flag set of `release`
/// (which also selects the 1.36 defaults). An `Err` is the text cobra prints after `Error: `.
pub fn parse(args: &[String], release: Release) -> Result<CommandLine, String> {
    let v136 = release.v136();
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
            let (raw, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            // pflag looks the normalised name up; "unknown flag" names it as written.
            let name = normalize(raw);
            let name = name.as_str();
            if let Some(def) = audit_flag(name).filter(|d| d.registered_in(release)) {
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
                // pflag's FlagSet.Set names the flag by its registered (normalised) name.
                let parsed = parse_value(def.kind, &value)
                    .map_err(|e| invalid_argument(&value, &format!("--{}", def.name), &e))?;
                let target = def.alias_of.unwrap_or(def.name);
                if def.alias_of.is_some() {
                    cl.notices.push(format!(
                        "Flag --{} has been deprecated, {}",
                        def.name, def.usage
                    ));
                }
                let target = audit_flag(target).map(|d| d.name).unwrap_or(def.name);
                cl.values.insert(target, parsed);
                continue;
            }
            if name.starts_with("audit-") {
                return Err(format!("unknown flag: --{raw}"));
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
                        None if other_kind(name).is_some() => match args.get(i) {
                            Some(next) => {
                                i += 1;
                                Some(next.clone())
                            }
                            None => return Err(format!("flag needs an argument: {arg}")),
                        },
                        None => match args.get(i) {
                            Some(next) if !next.starts_with('-') || looks_negative(next) => {
                                i += 1;
                                Some(next.clone())
                            }
                            _ => None,
                        },
                    };
                    if let Some(v) = &value {
                        check_other(name, v)?;
                    }
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
pub fn help_text(version: &str, release: Release) -> String {
    let v136 = release.v136();
    let mut s = String::new();
    s.push_str(&format!(
        "kube-apiserver {version}: TEST STAND-IN for kube-apiserver.\n\
         \n\
         This is NOT a Kubernetes API server. It is a test double used by kaudit-node's\n\
         tests: it parses and validates the audit flags and policy exactly like upstream\n\
         kube-apiserver, creates and writes the audit log (lumberjack-style rotation), and\n\
         writes simulated audit events. It serves no API but /readyz, /livez, /healthz and\n\
         /version on its secure port. Never install it on a real node.\n\
         \n\
         Usage:\n  kube-apiserver [flags]\n\nAudit flags (those release {release} registers):\n\n"
    ));
    let rows: Vec<(String, String)> = AUDIT_FLAGS
        .iter()
        .filter(|d| d.alias_of.is_none() && d.registered_in(release))
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
        "\nSecure serving (checked like kube-apiserver):\n\n\
         \x20     --bind-address ip              address of the secure port (default 0.0.0.0: all IPv4 and IPv6)\n\
         \x20     --secure-port int              the HTTPS port (default 6443); 0 is refused, as upstream\n\
         \x20     --anonymous-auth               anonymous requests allowed (default true); forced off when\n\
         \x20                                    --authorization-mode includes AlwaysAllow, its default\n\
         \x20     --authorization-mode strings   default AlwaysAllow unless --authorization-config is\n\
         \x20                                    given; only AlwaysAllow is looked at\n\
         \x20 The certificate is always a self-signed one generated in memory at start-up: the\n\
         \x20 stand-in ignores --tls-cert-file, --tls-private-key-file and --cert-dir (a test\n\
         \x20 sandbox has no certificates). Anonymous GET /readyz, /livez, /healthz (checks as\n\
         \x20 upstream, 500 until ready, then 200 \"ok\"; ?verbose lists them) and /version are\n\
         \x20 allowed (system:public-info-viewer); any other anonymous request gets 403. With\n\
         \x20 anonymous auth off, or with a bearer token, every request gets 401. These requests\n\
         \x20 are audited as upstream audits them (a 401: one ResponseStarted event with no user;\n\
         \x20 anonymous: RequestReceived, ResponseStarted for exec/attach/log/watch…, ResponseComplete),\n\
         \x20 under the policy and into the log of the simulated requests.\n\
         \n\
         Other flags:\n\n\
         \x20     --version version[=true]   --version, --version=raw prints version information and quits\n\
         \x20 -h, --help                     help for kube-apiserver\n\
         \x20 Any other --flag[=value] (e.g. --advertise-address, --etcd-servers, --v) is accepted\n\
         \x20 and ignored, except that --advertise-address/--bind-address are needed where the\n\
         \x20 machine has no default route, as upstream. In every flag name `_` reads as `-`.\n\
         \n\
         Stand-in test hooks (not in kube-apiserver):\n\
         \n\
         \x20     --standin-rate float           simulated requests per second (default 10; env STANDIN_RATE);\n\
         \x20                                    0: only the server's own start-up requests, then none\n\
         \x20 STANDIN_FAIL=1                     fail at start-up with a realistic fatal error\n\
         \x20 STANDIN_FAIL_FILE=PATH             the same, while PATH exists\n\
         \x20 STANDIN_FAIL_IF_ARG=ARG            the same, when an argument equals ARG (ARG* = prefix)\n\
         \x20 STANDIN_FAIL_MESSAGE=TEXT          the error text for the three hooks above\n\
         \x20 STANDIN_PAUSE_FILE=PATH            write no events while PATH exists; SIGUSR2 toggles a pause\n\
         \x20 STANDIN_VERSION=v1.36.0            behave as that release: its audit flag set (1.12 to 1.37;\n\
         \x20                                    older counts as 1.12), 1.36+ rotation defaults; unset:\n\
         \x20                                    the first line of EXECUTABLE.version, else v1.28.7\n\
         \x20 STANDIN_SKIP_ROUTE_CHECK=1         do not require a default route\n\
         \x20 STANDIN_READY_AFTER=DURATION       ready (/readyz 200) this long after the first audit event\n\
         \x20                                    (Go duration: 1s, 300ms; default 1s); \"never\": never ready\n\
         \x20 STANDIN_SERVE=0                    open no secure port at all (impossible upstream)\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const R128: Release = Release::new(1, 28);
    const R136: Release = Release::new(1, 36);

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn audit_of(a: &[&str]) -> AuditOptions {
        parse(&args(a), R128).expect("parses").audit()
    }

    fn registered(r: Release) -> Vec<&'static str> {
        AUDIT_FLAGS
            .iter()
            .filter(|d| d.registered_in(r))
            .map(|d| d.name)
            .collect()
    }

    #[test]
    fn there_are_32_audit_flags_today() {
        assert_eq!(AUDIT_FLAGS.len(), 33);
        for r in [R128, Release::new(1, 20), Release::new(1, 32), R136] {
            let set = registered(r);
            assert_eq!(set.len(), 32, "{r}");
            let log = set.iter().filter(|n| n.starts_with("audit-log-")).count();
            let webhook = set
                .iter()
                .filter(|n| n.starts_with("audit-webhook-"))
                .count();
            assert_eq!((log, webhook), (17, 14), "{r}");
            assert!(!set.contains(&"audit-dynamic-configuration"));
        }
    }

    #[test]
    fn flag_sets_by_release() {
        let has = |r: Release, n: &str| registered(r).contains(&n);
        // --audit-dynamic-configuration: 1.13 to 1.18.
        assert!(!has(Release::new(1, 12), "audit-dynamic-configuration"));
        assert!(has(Release::new(1, 13), "audit-dynamic-configuration"));
        assert!(has(Release::new(1, 18), "audit-dynamic-configuration"));
        assert!(!has(Release::new(1, 19), "audit-dynamic-configuration"));
        // --audit-log-compress: from 1.20.
        assert!(!has(Release::new(1, 19), "audit-log-compress"));
        assert!(has(Release::new(1, 20), "audit-log-compress"));
        // --audit-webhook-initial-backoff and its deprecated alias: in every tabled release.
        for r in [Release::new(1, 12), Release::new(1, 19), R136] {
            assert!(has(r, "audit-webhook-initial-backoff"), "{r}");
            assert!(has(r, "audit-webhook-batch-initial-backoff"), "{r}");
        }
        // Sizes (with the deprecated alias): 1.12 has 31 (neither dynamic nor compress),
        // 1.13 to 1.18 32, 1.19 31, 1.20 on 32.
        let sizes: Vec<usize> = [12, 13, 18, 19, 20, 37]
            .iter()
            .map(|m| registered(Release::new(1, *m)).len())
            .collect();
        assert_eq!(sizes, vec![31, 32, 32, 31, 32, 32]);
        // Older than the table: treated as 1.12.
        assert_eq!(
            registered(Release::new(1, 9)),
            registered(Release::new(1, 12))
        );
    }

    #[test]
    fn parse_refuses_flags_of_other_releases() {
        let e = |a: &[&str], r: Release| parse(&args(a), r).unwrap_err();
        let ok = |a: &[&str], r: Release| parse(&args(a), r).is_ok();
        assert_eq!(
            e(&["--audit-dynamic-configuration"], Release::new(1, 32)),
            "unknown flag: --audit-dynamic-configuration"
        );
        assert_eq!(
            e(&["--audit-dynamic-configuration=true"], Release::new(1, 19)),
            "unknown flag: --audit-dynamic-configuration"
        );
        assert!(ok(&["--audit-dynamic-configuration"], Release::new(1, 18)));
        assert!(ok(
            &["--audit-dynamic-configuration=false"],
            Release::new(1, 13)
        ));
        assert_eq!(
            e(
                &["--audit-dynamic-configuration=maybe"],
                Release::new(1, 18)
            ),
            "invalid argument \"maybe\" for \"--audit-dynamic-configuration\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        // A bool in the releases that have it: it never takes the next argument.
        let cl = parse(
            &args(&["--audit-dynamic-configuration", "--audit-log-path=/a"]),
            Release::new(1, 18),
        )
        .unwrap();
        assert_eq!(cl.audit().log.path, "/a");
        assert_eq!(
            e(&["--audit-log-compress"], Release::new(1, 19)),
            "unknown flag: --audit-log-compress"
        );
        assert_eq!(
            e(&["--audit_log_compress=true"], Release::new(1, 19)),
            "unknown flag: --audit_log_compress"
        );
        assert!(ok(&["--audit-log-compress"], Release::new(1, 20)));
        assert!(ok(
            &["--audit-webhook-initial-backoff=5s"],
            Release::new(1, 12)
        ));
    }

    #[test]
    fn release_parsing() {
        assert_eq!(Release::parse("v1.28.7"), Some(R128));
        assert_eq!(Release::parse("1.19"), Some(Release::new(1, 19)));
        assert_eq!(
            Release::parse("v1.32.0-rc.0-standin"),
            Some(Release::new(1, 32))
        );
        assert_eq!(Release::parse("bogus"), None);
        assert!(R136.v136() && !R128.v136());
        assert!(Release::new(2, 0).v136());
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize("audit_log_path"), "audit-log-path");
        // Three spellings of one flag: the last wins.
        let o = audit_of(&[
            "--audit_log_path=/x",
            "--audit-log_path",
            "/y",
            "--audit-log-maxage=3",
            "--audit_log_maxage",
            "4",
        ]);
        assert_eq!((o.log.path.as_str(), o.log.max_age), ("/y", 4));
        let o = audit_of(&["--audit-log-path=/y", "--audit_log_path=/x"]);
        assert_eq!(o.log.path, "/x");
        // Errors name the normalised flag, as the real v1.32 does.
        let e = |a: &[&str]| parse(&args(a), Release::new(1, 32)).unwrap_err();
        assert_eq!(
            e(&["--audit_log_maxage=abc"]),
            "invalid argument \"abc\" for \"--audit-log-maxage\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        // ... but "unknown flag" and "needs an argument" quote it as written.
        assert_eq!(
            e(&["--audit_log_bogus=1"]),
            "unknown flag: --audit_log_bogus"
        );
        assert_eq!(
            e(&["--audit_log_path"]),
            "flag needs an argument: --audit_log_path"
        );
        // Booleans and deprecated aliases too.
        assert!(audit_of(&["--audit_log_compress"]).log.compress);
        let cl = parse(&args(&["--audit_webhook_batch_initial_backoff=3s"]), R128).unwrap();
        assert_eq!(cl.audit().webhook.initial_backoff_ns, 3_000_000_000);
        assert_eq!(
            cl.notices,
            vec![
                "Flag --audit-webhook-batch-initial-backoff has been deprecated, Deprecated, use --audit-webhook-initial-backoff instead."
                    .to_string()
            ]
        );
        // Every other flag as well.
        let cl = parse(
            &args(&[
                "--etcd_servers=https://10.0.0.1:2379",
                "--advertise_address",
                "10.0.0.2",
                "--allow_privileged",
                "--secure_port=7443",
                "--bind_address",
                "127.0.0.1",
            ]),
            R128,
        )
        .unwrap();
        assert_eq!(cl.other_last("etcd-servers"), Some("https://10.0.0.1:2379"));
        assert_eq!(cl.other_last("advertise-address"), Some("10.0.0.2"));
        assert_eq!(cl.other_last("allow-privileged"), Some("true"));
        assert_eq!(cl.secure_port(), 7443);
        assert_eq!(cl.bind_address().to_string(), "127.0.0.1");
        assert!(cl.positional.is_empty());
        let cl = parse(&args(&["--standin_rate=5", "--version_=raw"]), R128);
        assert!(cl.is_ok());
        let cl = parse(&args(&["--standin_rate=5"]), R128).unwrap();
        assert_eq!(cl.standin_rate, Some(5.0));
    }

    #[test]
    fn serving_and_auth_flags() {
        let p = |a: &[&str]| parse(&args(a), R128).unwrap();
        let e = |a: &[&str]| parse(&args(a), R128).unwrap_err();
        let cl = p(&[]);
        assert_eq!(cl.secure_port(), 6443);
        assert_eq!(cl.bind_address().to_string(), "0.0.0.0");
        assert!(cl.anonymous_auth());
        assert_eq!(cl.authorization_modes(), vec!["AlwaysAllow".to_string()]);
        let cl = p(&["--secure-port", "0x1bb", "--bind-address", " ::1 "]);
        assert_eq!(cl.secure_port(), 443);
        assert_eq!(cl.bind_address().to_string(), "::1");
        assert_eq!(
            e(&["--secure-port=abc"]),
            "invalid argument \"abc\" for \"--secure-port\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            e(&["--bind-address=10.0.0.300"]),
            "invalid argument \"10.0.0.300\" for \"--bind-address\" flag: failed to parse IP: \"10.0.0.300\""
        );
        assert_eq!(
            e(&["--secure-port"]),
            "flag needs an argument: --secure-port"
        );
        // A value flag takes the next argument whatever it looks like.
        assert_eq!(
            e(&["--secure-port", "--v=2"]),
            "invalid argument \"--v=2\" for \"--secure-port\" flag: strconv.ParseInt: parsing \"--v=2\": invalid syntax"
        );
        assert!(!p(&["--anonymous-auth=false"]).anonymous_auth());
        assert!(p(&["--anonymous-auth=false", "--anonymous_auth"]).anonymous_auth());
        assert_eq!(
            e(&["--anonymous-auth=no"]),
            "invalid argument \"no\" for \"--anonymous-auth\" flag: strconv.ParseBool: parsing \"no\": invalid syntax"
        );
        let modes = |a: &[&str]| p(a).authorization_modes();
        assert_eq!(
            modes(&["--authorization-mode=Node,RBAC"]),
            vec!["Node", "RBAC"]
        );
        assert_eq!(
            modes(&["--authorization-mode=Node", "--authorization_mode", "RBAC"]),
            vec!["Node", "RBAC"]
        );
        assert!(modes(&["--authorization-mode="]).is_empty());
        assert!(modes(&["--authorization-config=/etc/authz.yaml"]).is_empty());
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
        let o = parse(&[], R136).unwrap().audit();
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
        let cl = parse(&args(&["--audit-log-compress", "false"]), R128).unwrap();
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
        let e = |a: &[&str]| parse(&args(a), R128).unwrap_err();
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
            R128,
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
        let cl = parse(&args(&["--audit-webhook-batch-initial-backoff=3s"]), R128).unwrap();
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
        let cl = parse(&args(&["--help"]), R128).unwrap();
        assert!(cl.help);
        let cl = parse(&args(&["--version"]), R128).unwrap();
        assert_eq!(cl.version.as_deref(), Some("true"));
        let cl = parse(&args(&["--standin-rate", "250"]), R128).unwrap();
        assert_eq!(cl.standin_rate, Some(250.0));
        let text = help_text("v1.28.7-standin", R128);
        assert!(text.contains("TEST STAND-IN"));
        assert!(text.contains("--audit-log-maxsize int"));
        assert!(text.contains("(default \"json\")"));
        assert!(!text.contains("--audit-webhook-batch-initial-backoff"));
    }
}
