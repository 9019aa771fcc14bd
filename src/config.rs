//! Configuration: `/etc/kaudit-node/config.toml` → validated [`Settings`].
//!
//! Two stages, as in zincati: the raw serde structs (`raw::*`, every key
//! optional, unknown keys refused, every value carrying its span) and the
//! validated [`Settings`], which cannot hold a value kube-apiserver would
//! refuse. Validation follows upstream's `AuditLogOptions.Validate()` and
//! `AuditWebhookOptions.Validate()` (docs/reference.md, Validation), including the
//! combinations upstream checks, plus kaudit-node's own rules (absolute
//! normalised paths, one rotation owner, sane upper bounds).
//!
//! Every error names the file, the line and column, and the key:
//! `config.toml:7:8: log.mode: invalid value "bogus": …`.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::apiserver::version::{OLDEST_SUPPORTED, Version};
use crate::error::{Error, Result};
use crate::policy::Preset;

/// The configuration file read when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/kaudit-node/config.toml";

/// The only audit API version kube-apiserver ≥1.24 accepts.
pub const AUDIT_V1: &str = "audit.k8s.io/v1";

/// The lumberjack size (MB) that makes the apiserver's own rotation inert,
/// as upstream's GCE setup does (docs/reference.md, Log rotation by logrotate).
pub const INERT_MAXSIZE: u64 = 2_000_000_000;

/// CIS Kubernetes Benchmark 1.2.17–1.2.19 minimums.
pub const CIS_MAXAGE: u32 = 30;
pub const CIS_MAXBACKUP: u32 = 10;
pub const CIS_MAXSIZE: u64 = 100;

mod raw {
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        pub unit: Option<Spanned<String>>,
        pub policy: Option<Policy>,
        pub log: Option<Log>,
        pub logrotate: Option<Logrotate>,
        pub webhook: Option<Webhook>,
        pub apply: Option<Apply>,
        pub apiserver: Option<Apiserver>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Apiserver {
        pub version: Option<Spanned<String>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Policy {
        pub preset: Option<Spanned<String>>,
        pub file: Option<Spanned<String>>,
        pub path: Option<Spanned<String>>,
    }

    /// Declares a backend table: its own keys plus the batch and truncate
    /// keys both backends share. (`#[serde(flatten)]` would lose the spans.)
    macro_rules! backend_table {
        ($name:ident { $($field:ident: $ty:ty,)* }) => {
            #[derive(Debug, Default, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $name {
                $(pub $field: $ty,)*
                pub batch_buffer_size: Option<Spanned<i64>>,
                pub batch_max_size: Option<Spanned<i64>>,
                pub batch_max_wait: Option<Spanned<String>>,
                pub batch_throttle_enable: Option<Spanned<bool>>,
                pub batch_throttle_qps: Option<Spanned<f64>>,
                pub batch_throttle_burst: Option<Spanned<i64>>,
                pub truncate_enabled: Option<Spanned<bool>>,
                pub truncate_max_batch_size: Option<Spanned<i64>>,
                pub truncate_max_event_size: Option<Spanned<i64>>,
            }

            impl $name {
                pub fn backend(&self) -> Backend {
                    Backend {
                        batch_buffer_size: self.batch_buffer_size.clone(),
                        batch_max_size: self.batch_max_size.clone(),
                        batch_max_wait: self.batch_max_wait.clone(),
                        batch_throttle_enable: self.batch_throttle_enable.clone(),
                        batch_throttle_qps: self.batch_throttle_qps.clone(),
                        batch_throttle_burst: self.batch_throttle_burst.clone(),
                        truncate_enabled: self.truncate_enabled.clone(),
                        truncate_max_batch_size: self.truncate_max_batch_size.clone(),
                        truncate_max_event_size: self.truncate_max_event_size.clone(),
                    }
                }
            }
        };
    }

    backend_table!(Log {
        path: Option<Spanned<String>>,
        format: Option<Spanned<String>>,
        mode: Option<Spanned<String>>,
        version: Option<Spanned<String>>,
        maxage: Option<Spanned<i64>>,
        maxbackup: Option<Spanned<i64>>,
        maxsize: Option<Spanned<i64>>,
        compress: Option<bool>,
        rotation: Option<Spanned<String>>,
        dir_mode: Option<Spanned<String>>,
        file_mode: Option<Spanned<String>>,
        group: Option<Spanned<String>>,
    });

    backend_table!(Webhook {
        config: Option<Spanned<String>>,
        mode: Option<Spanned<String>>,
        version: Option<Spanned<String>>,
        initial_backoff: Option<Spanned<String>>,
    });

    /// The batch and truncate keys of one backend.
    #[derive(Debug, Default)]
    pub struct Backend {
        pub batch_buffer_size: Option<Spanned<i64>>,
        pub batch_max_size: Option<Spanned<i64>>,
        pub batch_max_wait: Option<Spanned<String>>,
        pub batch_throttle_enable: Option<Spanned<bool>>,
        pub batch_throttle_qps: Option<Spanned<f64>>,
        pub batch_throttle_burst: Option<Spanned<i64>>,
        pub truncate_enabled: Option<Spanned<bool>>,
        pub truncate_max_batch_size: Option<Spanned<i64>>,
        pub truncate_max_event_size: Option<Spanned<i64>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Logrotate {
        pub path: Option<Spanned<String>>,
        pub frequency: Option<Spanned<String>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Apply {
        pub verify_timeout: Option<Spanned<String>>,
        pub rollback: Option<bool>,
    }
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicySource {
    Preset(Preset),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Batch,
    Blocking,
    BlockingStrict,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Blocking => "blocking",
            Mode::BlockingStrict => "blocking-strict",
        }
    }
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Legacy => "legacy",
        }
    }
}

/// Who rotates the audit log: exactly one owner, never both (docs/reference.md,
/// Log rotation by logrotate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// lumberjack inside the apiserver, with explicit CIS values.
    Apiserver,
    /// logrotate with `copytruncate` on the exact path; lumberjack made inert.
    Logrotate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Hourly,
    Daily,
    Weekly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Hourly => "hourly",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
        }
    }
}

/// A Go duration as kube-apiserver parses it (`5s`, `1m30s`, `250ms`), kept
/// in its canonical text so the flag is rendered exactly as configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoDuration {
    pub text: String,
    #[serde(skip)]
    pub nanos: u128,
}

impl GoDuration {
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos.min(u64::MAX as u128) as u64)
    }

    /// Parses Go's `time.ParseDuration` syntax, without sign (negative
    /// durations make no sense for any setting here).
    pub fn parse(s: &str) -> std::result::Result<GoDuration, String> {
        if s == "0" {
            return Ok(GoDuration {
                text: s.into(),
                nanos: 0,
            });
        }
        if s.is_empty() {
            return Err("empty duration".into());
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: f64 = 0.0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if start == i {
                return Err(format!("expected a number at {:?}", &s[start..]));
            }
            let num: f64 = s[start..i]
                .parse()
                .map_err(|_| format!("invalid number {:?}", &s[start..i]))?;
            let ustart = i;
            while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let unit = &s[ustart..i];
            let scale = match unit {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => {
                    return Err(format!(
                        "missing unit after {:?} (use ms, s, m or h)",
                        &s[start..i]
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown unit {other:?} (use ns, us, ms, s, m or h)"
                    ));
                }
            };
            total += num * scale;
        }
        if total > 1e18 {
            return Err("duration too large".into());
        }
        Ok(GoDuration {
            text: s.into(),
            nanos: total as u128,
        })
    }
}

/// Batch and truncate settings of one backend. `None` means "not
/// configured": the flag is not emitted and upstream's default applies.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BackendSettings {
    pub batch_buffer_size: Option<u32>,
    pub batch_max_size: Option<u32>,
    pub batch_max_wait: Option<GoDuration>,
    pub batch_throttle_enable: Option<bool>,
    pub batch_throttle_qps: Option<f64>,
    pub batch_throttle_burst: Option<u32>,
    pub truncate_enabled: Option<bool>,
    pub truncate_max_batch_size: Option<u64>,
    pub truncate_max_event_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogSettings {
    pub path: PathBuf,
    pub format: Format,
    pub mode: Mode,
    pub version: Option<String>,
    pub maxage: u32,
    pub maxbackup: u32,
    pub maxsize: u64,
    pub compress: bool,
    pub rotation: Rotation,
    pub dir_mode: u32,
    pub file_mode: u32,
    /// Group of the log directory and file (for log shippers); `None`
    /// means the service's group.
    pub group: Option<String>,
    pub backend: BackendSettings,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogrotateSettings {
    pub path: PathBuf,
    pub frequency: Frequency,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WebhookSettings {
    pub config: PathBuf,
    pub mode: Option<Mode>,
    pub version: Option<String>,
    pub initial_backoff: Option<GoDuration>,
    pub backend: BackendSettings,
}

/// What the configuration says of the apiserver itself.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ApiserverSettings {
    /// `apiserver.version`: the unit's command is a kube-apiserver of this
    /// release (a wrapper, for example); `--version` is not run.
    pub version: Option<Version>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApplySettings {
    pub verify_timeout: GoDuration,
    pub rollback: bool,
}

/// Validated settings: every value is one kube-apiserver accepts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// The file the settings were read from, or `None` for the embedded defaults.
    pub source: Option<PathBuf>,
    pub unit: String,
    pub policy: PolicySource,
    pub policy_path: PathBuf,
    pub log: LogSettings,
    pub logrotate: LogrotateSettings,
    pub webhook: Option<WebhookSettings>,
    pub apply: ApplySettings,
    pub apiserver: ApiserverSettings,
    /// Valid but questionable choices (CIS minimums not met, batch mode on
    /// the log backend, settings that have no effect).
    pub warnings: Vec<String>,
}

impl Settings {
    /// The embedded defaults: a CIS-compliant setup for a stock
    /// `kube-apiserver.service`.
    pub fn defaults() -> Settings {
        from_str(None, "").expect("the embedded defaults are valid")
    }
}

/// Reads the configuration. A missing file at the default path means the
/// embedded defaults; a missing file given with `--config` is an error.
pub fn load(path: &Path, explicit: bool) -> Result<Settings> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| {
                Error::config(format!(
                    "{}: not valid UTF-8 (byte {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ))
            })?;
            from_str(Some(path), &text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Settings::defaults()),
        Err(e) => Err(Error::read(&path.display().to_string(), &e)),
    }
}

/// Parses and validates configuration text. `path` labels messages.
pub fn from_str(path: Option<&Path>, text: &str) -> Result<Settings> {
    let label = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(embedded defaults)".into());
    // serde_path_to_error names the key an error is on (`log.maxage`),
    // dotted keys and inline tables included; toml gives its span.
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(&label, text, &e, None))?;
    let raw: raw::Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = key_path(e.path());
        toml_error(&label, text, e.inner(), Some(&path))
    })?;
    let mut v = Validator {
        label: &label,
        text,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let settings = v.settings(path, raw);
    if v.errors.is_empty() {
        let mut s = settings.expect("no errors means settings were built");
        s.warnings = v.warnings;
        Ok(s)
    } else {
        Err(Error::config(v.errors.join("\n")))
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The dotted key of a serde path, without the private fields toml's
/// `Spanned` wraps each value in.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key.starts_with("$__serde_spanned") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    out
}

/// A TOML or type error as kaudit-node words it. `path`: the key it is on,
/// from serde_path_to_error (`log.maxage`; `.` for the top level); `None`
/// for a syntax error, which has no key yet.
fn toml_error(label: &str, text: &str, e: &toml::de::Error, path: Option<&str>) -> Error {
    let message = e.message().trim().to_string();
    let key = path.filter(|p| !p.is_empty() && *p != ".");
    let at = match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{label}:{line}:{col}")
        }
        None => label.to_string(),
    };
    // serde's "unknown field `x`, expected one of …" becomes our wording.
    let message = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        // The path ends at the unknown key itself.
        let table = key
            .and_then(|k| k.rsplit_once('.'))
            .map(|(t, _)| format!(" in [{t}]"))
            .unwrap_or_default();
        let expected = expected.trim_start_matches(", ").replace('`', "\"");
        let hint = suggest_key(field, &expected)
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        format!("unknown key \"{field}\"{table}{hint}; {expected}")
    } else {
        match key {
            Some(k) => format!("{k}: {message}"),
            None => message,
        }
    };
    Error::config(format!("{at}: {message}"))
}

/// The closest expected key to an unknown one (`expected` is toml's list of
/// quoted key names).
fn suggest_key(field: &str, expected: &str) -> Option<String> {
    let keys: Vec<&str> = expected.split('"').skip(1).step_by(2).collect();
    crate::suggest::closest(field, &keys).map(str::to_string)
}

/// Upstream's defaults for a backend's batching flags (`pkg/server/options/
/// audit.go`): what an unset key means, for the checks that depend on it.
#[derive(Clone, Copy)]
struct BackendDefaults {
    batch_buffer_size: i64,
    batch_max_size: i64,
    /// Throttling is on by default for the webhook, off for the log.
    throttle_enable: bool,
}

impl BackendDefaults {
    const LOG: BackendDefaults = BackendDefaults {
        batch_buffer_size: 10_000,
        batch_max_size: 1,
        throttle_enable: false,
    };
    const WEBHOOK: BackendDefaults = BackendDefaults {
        batch_buffer_size: 10_000,
        batch_max_size: 400,
        throttle_enable: true,
    };
}

/// The log backend's modes, as upstream names them.
const MODES: [(&str, Mode); 3] = [
    ("batch", Mode::Batch),
    ("blocking", Mode::Blocking),
    ("blocking-strict", Mode::BlockingStrict),
];

const DEFAULT_LOG_PATH: &str = "/var/log/kubernetes/audit/audit.log";

struct Validator<'a> {
    label: &'a str,
    text: &'a str,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, message: impl AsRef<str>) {
        let (line, col) = line_col(self.text, span.start);
        self.errors.push(format!(
            "{}:{line}:{col}: {key}: {}",
            self.label,
            message.as_ref()
        ));
    }

    fn warn(&mut self, span: Option<Range<usize>>, key: &str, message: impl AsRef<str>) {
        let at = match span {
            Some(s) => {
                let (line, col) = line_col(self.text, s.start);
                format!("{}:{line}:{col}: ", self.label)
            }
            None => String::new(),
        };
        self.warnings
            .push(format!("{at}{key}: {}", message.as_ref()));
    }

    fn choice<T: Copy>(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: T,
        allowed: &[(&str, T)],
        upstream: Option<&str>,
    ) -> T {
        let Some(v) = v else { return default };
        match allowed.iter().find(|(name, _)| *name == v.get_ref()) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<String> = allowed.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                let up = upstream
                    .map(|u| format!(" (kube-apiserver: {u})"))
                    .unwrap_or_default();
                self.err(
                    v.span(),
                    key,
                    format!(
                        "invalid value \"{}\": expected one of {}{up}",
                        v.get_ref().escape_debug(),
                        names.join(", ")
                    ),
                );
                default
            }
        }
    }

    /// An absolute, normalised node path: no `..`, `.`, empty components,
    /// trailing slash or control characters.
    fn path(&mut self, v: &Option<Spanned<String>>, key: &str, default: &str) -> PathBuf {
        let Some(v) = v else {
            return PathBuf::from(default);
        };
        match check_node_path(v.get_ref()) {
            Ok(p) => p,
            Err(why) => {
                self.err(
                    v.span(),
                    key,
                    format!("{why}: \"{}\"", v.get_ref().escape_debug()),
                );
                PathBuf::from(default)
            }
        }
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
        default: i64,
        negative_msg: Option<&str>,
    ) -> i64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if n < 0 && min >= 0 {
            let up = negative_msg
                .map(|m| {
                    format!(
                        " (kube-apiserver: {m})",
                        m = m.replace("{}", &n.to_string())
                    )
                })
                .unwrap_or_default();
            self.err(
                v.span(),
                key,
                format!("{n} is negative; it must be at least {min}{up}"),
            );
            return default;
        }
        if n < min {
            self.err(
                v.span(),
                key,
                format!("{n} is too small; it must be at least {min}"),
            );
            return default;
        }
        if n > max {
            self.err(
                v.span(),
                key,
                format!("{n} is too large; it must be at most {max}"),
            );
            return default;
        }
        n
    }

    fn mode_bits(&mut self, v: &Option<Spanned<String>>, key: &str, default: u32) -> u32 {
        let Some(v) = v else { return default };
        let s = v.get_ref();
        let parsed = (s.len() == 4 && s.starts_with('0'))
            .then(|| u32::from_str_radix(s, 8).ok())
            .flatten();
        match parsed {
            Some(m) if m & 0o7000 == 0 && m & 0o002 == 0 => m,
            Some(_) => {
                self.err(v.span(), key, format!("\"{s}\" is not allowed: audit logs must not be world-writable or setuid/setgid/sticky"));
                default
            }
            None => {
                self.err(
                    v.span(),
                    key,
                    format!(
                        "\"{}\" is not an octal mode like \"0750\" (a string of four octal digits)",
                        s.escape_debug()
                    ),
                );
                default
            }
        }
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, key: &str) -> Option<GoDuration> {
        let v = v.as_ref()?;
        match GoDuration::parse(v.get_ref()) {
            Ok(d) => Some(d),
            Err(why) => {
                self.err(
                    v.span(),
                    key,
                    format!("invalid duration \"{}\": {why}", v.get_ref().escape_debug()),
                );
                None
            }
        }
    }

    fn version(&mut self, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
        let v = v.as_ref()?;
        if v.get_ref() == AUDIT_V1 {
            Some(AUDIT_V1.to_string())
        } else {
            self.err(
                v.span(),
                key,
                format!(
                    "invalid value \"{}\": only \"{AUDIT_V1}\" is accepted since Kubernetes 1.24 (kube-apiserver: invalid group version, allowed versions are [\"{AUDIT_V1}\"])",
                    v.get_ref().escape_debug()
                ),
            );
            None
        }
    }

    /// Batch and truncate settings with upstream's rules. `prefix` is the
    /// TOML table (`log` or `webhook`); `defaults` are upstream's.
    fn backend(
        &mut self,
        raw: &raw::Backend,
        prefix: &str,
        batch_mode: bool,
        defaults: BackendDefaults,
    ) -> BackendSettings {
        let k = |name: &str| format!("{prefix}.{name}");
        let max_i32 = i32::MAX as i64;
        let bs = raw.batch_buffer_size.as_ref().map(|_| {
            self.int(
                &raw.batch_buffer_size,
                &k("batch_buffer_size"),
                1,
                max_i32,
                defaults.batch_buffer_size,
                None,
            ) as u32
        });
        let bm = raw.batch_max_size.as_ref().map(|_| {
            self.int(
                &raw.batch_max_size,
                &k("batch_max_size"),
                1,
                max_i32,
                defaults.batch_max_size,
                None,
            ) as u32
        });
        let wait = self.duration(&raw.batch_max_wait, &k("batch_max_wait"));
        let throttle = raw.batch_throttle_enable.as_ref().map(|s| *s.get_ref());
        let qps = match &raw.batch_throttle_qps {
            Some(q)
                if !q.get_ref().is_finite()
                    || *q.get_ref() < 0.0
                    || *q.get_ref() > f32::MAX as f64 =>
            {
                self.err(
                    q.span(),
                    &k("batch_throttle_qps"),
                    format!(
                        "{} is not a valid rate: it must be a positive number",
                        q.get_ref()
                    ),
                );
                None
            }
            Some(q) => Some(*q.get_ref()),
            None => None,
        };
        let burst = raw.batch_throttle_burst.as_ref().map(|_| {
            self.int(
                &raw.batch_throttle_burst,
                &k("batch_throttle_burst"),
                0,
                max_i32,
                0,
                None,
            ) as u32
        });
        // Upstream: throttle QPS and burst must be positive if throttling is enabled (batch mode).
        if batch_mode && throttle.unwrap_or(defaults.throttle_enable) {
            let qps_ok = qps.map(|q| q > 0.0).unwrap_or(defaults.throttle_enable);
            let burst_ok = burst.map(|b| b > 0).unwrap_or(defaults.throttle_enable);
            let span = raw
                .batch_throttle_enable
                .as_ref()
                .map(|s| s.span())
                .unwrap_or(0..0);
            if !qps_ok {
                let at = raw
                    .batch_throttle_qps
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or(span.clone());
                self.err(at, &k("batch_throttle_qps"), "must be a positive number when batch throttling is enabled (kube-apiserver: invalid audit batch throttle QPS, must be a positive number)");
            }
            if !burst_ok {
                let at = raw
                    .batch_throttle_burst
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or(span);
                self.err(at, &k("batch_throttle_burst"), "must be a positive number when batch throttling is enabled (kube-apiserver: invalid audit batch throttle burst, must be a positive number)");
            }
        }
        if !batch_mode {
            let batch_keys = [
                (
                    "batch_buffer_size",
                    raw.batch_buffer_size.as_ref().map(|s| s.span()),
                ),
                (
                    "batch_max_size",
                    raw.batch_max_size.as_ref().map(|s| s.span()),
                ),
                (
                    "batch_max_wait",
                    raw.batch_max_wait.as_ref().map(|s| s.span()),
                ),
                (
                    "batch_throttle_enable",
                    raw.batch_throttle_enable.as_ref().map(|s| s.span()),
                ),
                (
                    "batch_throttle_qps",
                    raw.batch_throttle_qps.as_ref().map(|s| s.span()),
                ),
                (
                    "batch_throttle_burst",
                    raw.batch_throttle_burst.as_ref().map(|s| s.span()),
                ),
            ];
            for (name, span) in batch_keys {
                if let Some(span) = span {
                    self.warn(
                        Some(span),
                        &k(name),
                        format!("has no effect unless {prefix}.mode = \"batch\""),
                    );
                }
            }
        }
        let trunc = raw.truncate_enabled.as_ref().map(|s| *s.get_ref());
        let max_i64 = i64::MAX;
        let tb = raw.truncate_max_batch_size.as_ref().map(|_| {
            self.int(
                &raw.truncate_max_batch_size,
                &k("truncate_max_batch_size"),
                1,
                max_i64,
                10_485_760,
                None,
            ) as u64
        });
        let te = raw.truncate_max_event_size.as_ref().map(|_| {
            self.int(
                &raw.truncate_max_event_size,
                &k("truncate_max_event_size"),
                1,
                max_i64,
                102_400,
                None,
            ) as u64
        });
        // Upstream checks this even when truncation is disabled.
        let (eb, ee) = (tb.unwrap_or(10_485_760), te.unwrap_or(102_400));
        if eb < ee {
            let span = raw
                .truncate_max_batch_size
                .as_ref()
                .or(raw.truncate_max_event_size.as_ref())
                .map(|s| s.span())
                .unwrap_or(0..0);
            self.err(
                span,
                &k("truncate_max_batch_size"),
                format!("{eb} is smaller than {prefix}.truncate_max_event_size {ee}; it must be greater than or equal to it (kube-apiserver checks this even when truncation is disabled: invalid audit truncate max batch size {eb}, must be greater than max event size {ee})"),
            );
        }
        BackendSettings {
            batch_buffer_size: bs,
            batch_max_size: bm,
            batch_max_wait: wait,
            batch_throttle_enable: throttle,
            batch_throttle_qps: qps,
            batch_throttle_burst: burst,
            truncate_enabled: trunc,
            truncate_max_batch_size: tb,
            truncate_max_event_size: te,
        }
    }

    fn settings(&mut self, source: Option<&Path>, raw: raw::Config) -> Option<Settings> {
        let unit = self.unit(&raw.unit);
        let (policy, policy_path) = self.policy_table(raw.policy.unwrap_or_default());
        let log = self.log_table(raw.log.unwrap_or_default(), &policy_path);
        let logrotate = self.logrotate_table(raw.logrotate.unwrap_or_default(), log.rotation);
        // A [webhook] table without `config` refuses the whole configuration.
        let webhook = self.webhook_table(raw.webhook)?;
        let apply = self.apply_table(raw.apply.unwrap_or_default())?;
        let apiserver = self.apiserver_table(raw.apiserver.unwrap_or_default());
        Some(Settings {
            source: source.map(Path::to_path_buf),
            unit,
            policy,
            policy_path,
            log,
            logrotate,
            webhook,
            apply,
            apiserver,
            warnings: Vec::new(),
        })
    }

    fn unit(&mut self, raw: &Option<Spanned<String>>) -> String {
        match raw {
            None => "kube-apiserver.service".to_string(),
            Some(u) => match crate::unit::validate_unit_name(u.get_ref()) {
                Ok(()) => u.get_ref().clone(),
                Err(e) => {
                    self.err(u.span(), "unit", e.message);
                    "kube-apiserver.service".to_string()
                }
            },
        }
    }

    /// `[policy]`: a preset or a file (not both), and where it goes.
    fn policy_table(&mut self, rp: raw::Policy) -> (PolicySource, PathBuf) {
        let policy = match (&rp.preset, &rp.file) {
            (Some(p), Some(f)) => {
                let (pl, _) = line_col(self.text, p.span().start);
                self.err(
                    f.span(),
                    "policy.file",
                    format!("policy.preset (line {pl}) and policy.file are both set; choose one"),
                );
                PolicySource::Preset(Preset::Recommended)
            }
            (Some(p), None) => match p.get_ref().parse::<Preset>() {
                Ok(preset) => PolicySource::Preset(preset),
                Err(_) => {
                    let names: Vec<String> = Preset::ALL
                        .iter()
                        .map(|p| format!("\"{}\"", p.name()))
                        .collect();
                    self.err(
                        p.span(),
                        "policy.preset",
                        format!(
                            "unknown preset \"{}\": expected one of {} (or set policy.file)",
                            p.get_ref().escape_debug(),
                            names.join(", ")
                        ),
                    );
                    PolicySource::Preset(Preset::Recommended)
                }
            },
            (None, Some(_)) => PolicySource::File(self.path(&rp.file, "policy.file", "/")),
            (None, None) => PolicySource::Preset(Preset::Recommended),
        };
        let policy_path = self.path(&rp.path, "policy.path", "/etc/kubernetes/audit-policy.yaml");
        (policy, policy_path)
    }

    /// `[log]`: the log backend's flags, the rotation owner and its checks
    /// (CIS minimums), the directory's and file's modes and group.
    fn log_table(&mut self, rl: raw::Log, policy_path: &Path) -> LogSettings {
        let log_path = match &rl.path {
            // Upstream's stdout, refused with its own reason (not as a
            // relative path).
            Some(p) if p.get_ref() == "-" => {
                self.err(p.span(), "log.path", "\"-\" (stdout) is not supported: under systemd it mixes audit events into the journal with klog output and its rate limits; give a file path");
                PathBuf::from(DEFAULT_LOG_PATH)
            }
            _ => self.path(&rl.path, "log.path", DEFAULT_LOG_PATH),
        };
        if let Some(p) = &rl.path
            && p.get_ref() != "-"
            && log_path.parent() == Some(Path::new("/"))
        {
            self.err(
                p.span(),
                "log.path",
                "the audit log needs a directory of its own, not \"/\"",
            );
        }
        if log_path == *policy_path {
            let span = rl.path.as_ref().map(|s| s.span()).unwrap_or(0..0);
            self.err(span, "log.path", "is the same file as policy.path");
        }
        let format = self.choice(
            &rl.format,
            "log.format",
            Format::Json,
            &[("json", Format::Json), ("legacy", Format::Legacy)],
            Some("allowed formats are \"legacy,json\""),
        );
        let mode = self.choice(
            &rl.mode,
            "log.mode",
            Mode::Blocking,
            &MODES,
            Some("allowed modes are \"batch,blocking,blocking-strict\""),
        );
        let version = self.version(&rl.version, "log.version");
        let maxage = self.int(
            &rl.maxage,
            "log.maxage",
            0,
            36_500,
            CIS_MAXAGE as i64,
            Some("--audit-log-maxage {} can't be a negative number"),
        ) as u32;
        let maxbackup = self.int(
            &rl.maxbackup,
            "log.maxbackup",
            0,
            100_000,
            CIS_MAXBACKUP as i64,
            Some("--audit-log-maxbackup {} can't be a negative number"),
        ) as u32;
        let maxsize = self.int(
            &rl.maxsize,
            "log.maxsize",
            0,
            INERT_MAXSIZE as i64,
            CIS_MAXSIZE as i64,
            Some("--audit-log-maxsize {} can't be a negative number"),
        ) as u64;
        let rotation = self.choice(
            &rl.rotation,
            "log.rotation",
            Rotation::Apiserver,
            &[
                ("apiserver", Rotation::Apiserver),
                ("logrotate", Rotation::Logrotate),
            ],
            None,
        );
        let dir_mode = self.mode_bits(&rl.dir_mode, "log.dir_mode", 0o700);
        let file_mode = self.mode_bits(&rl.file_mode, "log.file_mode", 0o600);
        if dir_mode & 0o700 != 0o700 {
            let span = rl.dir_mode.as_ref().map(|s| s.span()).unwrap_or(0..0);
            self.err(span, "log.dir_mode", "the service user needs rwx on the log directory (lumberjack renames and creates files there)");
        }
        if file_mode & 0o600 != 0o600 || file_mode & 0o111 != 0 {
            let span = rl.file_mode.as_ref().map(|s| s.span()).unwrap_or(0..0);
            self.err(
                span,
                "log.file_mode",
                "the log file must be readable and writable by the service user and not executable",
            );
        }
        let group = match &rl.group {
            Some(g) if !is_valid_name(g.get_ref()) => {
                self.err(
                    g.span(),
                    "log.group",
                    format!(
                        "\"{}\" is not a valid group name",
                        g.get_ref().escape_debug()
                    ),
                );
                None
            }
            Some(g) => Some(g.get_ref().clone()),
            None => None,
        };
        let backend = self.backend(
            &rl.backend(),
            "log",
            mode == Mode::Batch,
            BackendDefaults::LOG,
        );
        if mode == Mode::Batch {
            let span = rl.mode.as_ref().map(|s| s.span());
            self.warn(span, "log.mode", "\"batch\" buffers up to batch_buffer_size events in memory and drops events when the buffer is full; upstream does not recommend it for the log backend (use \"blocking\")");
        }
        if mode == Mode::BlockingStrict {
            let span = rl.mode.as_ref().map(|s| s.span());
            self.warn(span, "log.mode", "\"blocking-strict\" fails every API request with 500 when the audit log cannot be written (disk full, read-only); monitor the disk with `kaudit-node check`");
        }
        self.rotation_checks(&rl, rotation, maxage, maxbackup, maxsize);
        LogSettings {
            path: log_path,
            format,
            mode,
            version,
            maxage,
            maxbackup,
            maxsize,
            compress: rl.compress.unwrap_or(rotation == Rotation::Logrotate),
            rotation,
            dir_mode,
            file_mode,
            group,
            backend,
        }
    }

    /// What each rotation owner needs of maxage, maxbackup and maxsize:
    /// errors for what cannot work, warnings below the CIS minimums.
    fn rotation_checks(
        &mut self,
        rl: &raw::Log,
        rotation: Rotation,
        maxage: u32,
        maxbackup: u32,
        maxsize: u64,
    ) {
        match rotation {
            Rotation::Apiserver => {
                if maxsize == 0 {
                    let span = rl.maxsize.as_ref().map(|s| s.span()).unwrap_or(0..0);
                    self.err(span, "log.maxsize", "0 means 100 MB before Kubernetes 1.36 and \"never rotate\" since; set an explicit size (CIS asks for at least 100)");
                }
                if maxage < CIS_MAXAGE {
                    self.warn(
                        rl.maxage.as_ref().map(|s| s.span()),
                        "log.maxage",
                        format!(
                            "{maxage} is below CIS 1.2.17's minimum of {CIS_MAXAGE} days{}",
                            if maxage == 0 {
                                " (0 keeps backups of every age)"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                if maxbackup < CIS_MAXBACKUP {
                    self.warn(
                        rl.maxbackup.as_ref().map(|s| s.span()),
                        "log.maxbackup",
                        format!(
                            "{maxbackup} is below CIS 1.2.18's minimum of {CIS_MAXBACKUP}{}",
                            if maxbackup == 0 {
                                " (0 keeps every backup)"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                if maxsize > 0 && maxsize < CIS_MAXSIZE {
                    self.warn(
                        rl.maxsize.as_ref().map(|s| s.span()),
                        "log.maxsize",
                        format!("{maxsize} MB is below CIS 1.2.19's minimum of {CIS_MAXSIZE}"),
                    );
                }
            }
            Rotation::Logrotate => {
                if maxbackup == 0 {
                    let span = rl.maxbackup.as_ref().map(|s| s.span()).unwrap_or(0..0);
                    self.err(span, "log.maxbackup", "logrotate needs a number of rotations to keep (logrotate's `rotate`); 0 would delete every rotated file");
                }
                if maxsize == 0 {
                    let span = rl.maxsize.as_ref().map(|s| s.span()).unwrap_or(0..0);
                    self.err(span, "log.maxsize", "with rotation = \"logrotate\", maxsize is logrotate's `maxsize` in MB and must be positive");
                }
                if maxage < CIS_MAXAGE {
                    self.warn(
                        rl.maxage.as_ref().map(|s| s.span()),
                        "log.maxage",
                        format!("{maxage} is below CIS 1.2.17's minimum of {CIS_MAXAGE} days"),
                    );
                }
                if maxbackup > 0 && maxbackup < CIS_MAXBACKUP {
                    self.warn(
                        rl.maxbackup.as_ref().map(|s| s.span()),
                        "log.maxbackup",
                        format!("{maxbackup} is below CIS 1.2.18's minimum of {CIS_MAXBACKUP}"),
                    );
                }
            }
        }
    }

    /// `[logrotate]`: the snippet's path and frequency, used only when
    /// logrotate owns rotation.
    fn logrotate_table(&mut self, rr: raw::Logrotate, rotation: Rotation) -> LogrotateSettings {
        let lr_path = self.path(&rr.path, "logrotate.path", "/etc/logrotate.d/kaudit-node");
        let frequency = self.choice(
            &rr.frequency,
            "logrotate.frequency",
            Frequency::Daily,
            &[
                ("hourly", Frequency::Hourly),
                ("daily", Frequency::Daily),
                ("weekly", Frequency::Weekly),
            ],
            None,
        );
        if rotation == Rotation::Apiserver && (rr.path.is_some() || rr.frequency.is_some()) {
            let span = rr.path.as_ref().or(rr.frequency.as_ref()).map(|s| s.span());
            self.warn(
                span,
                "logrotate",
                "has no effect unless log.rotation = \"logrotate\"",
            );
        }
        LogrotateSettings {
            path: lr_path,
            frequency,
        }
    }

    /// `[webhook]`: the second backend. `None` when the table lacks its
    /// `config` (the configuration is refused); `Some(None)` without a table.
    fn webhook_table(&mut self, raw: Option<raw::Webhook>) -> Option<Option<WebhookSettings>> {
        Some(match raw {
            None => None,
            Some(rw) => {
                let Some(cfg) = &rw.config else {
                    let span = rw
                        .mode
                        .as_ref()
                        .or(rw.version.as_ref())
                        .or(rw.initial_backoff.as_ref())
                        .map(|s| s.span())
                        .unwrap_or(0..0);
                    self.err(
                        span,
                        "webhook.config",
                        "the [webhook] table needs `config`, the path of the webhook kubeconfig",
                    );
                    return None;
                };
                let config = self.path(&Some(cfg.clone()), "webhook.config", "/");
                let mode = rw.mode.as_ref().map(|_| {
                    self.choice(
                        &rw.mode,
                        "webhook.mode",
                        Mode::Batch,
                        &MODES,
                        Some("allowed modes are \"batch,blocking,blocking-strict\""),
                    )
                });
                let version = self.version(&rw.version, "webhook.version");
                let initial_backoff = self.duration(&rw.initial_backoff, "webhook.initial_backoff");
                let batch = mode.unwrap_or(Mode::Batch) == Mode::Batch;
                let backend =
                    self.backend(&rw.backend(), "webhook", batch, BackendDefaults::WEBHOOK);
                Some(WebhookSettings {
                    config,
                    mode,
                    version,
                    initial_backoff,
                    backend,
                })
            }
        })
    }

    /// `[apply]`: how long apply waits, and whether it rolls back.
    fn apply_table(&mut self, ra: raw::Apply) -> Option<ApplySettings> {
        let verify_timeout = match self.duration(&ra.verify_timeout, "apply.verify_timeout") {
            Some(d) if d.nanos < 1_000_000_000 || d.nanos > 3_600_000_000_000 => {
                let span = ra.verify_timeout.as_ref().map(|s| s.span()).unwrap_or(0..0);
                self.err(
                    span,
                    "apply.verify_timeout",
                    format!(
                        "\"{}\" is out of range: it must be between 1s and 1h",
                        d.text
                    ),
                );
                GoDuration::parse("60s").ok()?
            }
            Some(d) => d,
            None => GoDuration::parse("60s").ok()?,
        };
        let rollback = ra.rollback.unwrap_or(true);
        Some(ApplySettings {
            verify_timeout,
            rollback,
        })
    }

    /// `[apiserver]`: the release, for a command kaudit-node cannot ask.
    fn apiserver_table(&mut self, rapi: raw::Apiserver) -> ApiserverSettings {
        let apiserver_version = rapi.version.as_ref().and_then(|v| {
            match Version::parse(v.get_ref()) {
                Some(ver) if ver.at_least(OLDEST_SUPPORTED) => Some(ver),
                Some(ver) => {
                    self.err(
                        v.span(),
                        "apiserver.version",
                        format!(
                            "{ver} is older than {}.{}, the oldest release kaudit-node configures (the first with the audit.k8s.io/v1 policy API)",
                            OLDEST_SUPPORTED.0, OLDEST_SUPPORTED.1
                        ),
                    );
                    None
                }
                None => {
                    self.err(
                        v.span(),
                        "apiserver.version",
                        format!(
                            "invalid value \"{}\": give the release as kube-apiserver --version prints it, e.g. \"v1.32.0\"",
                            v.get_ref()
                        ),
                    );
                    None
                }
            }
        });
        ApiserverSettings {
            version: apiserver_version,
        }
    }
}

/// A user or group name as shadow-utils accepts it.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks that `s` is an absolute, normalised path fit to be written into a
/// unit file and a logrotate snippet.
pub fn check_node_path(s: &str) -> std::result::Result<PathBuf, &'static str> {
    if s.is_empty() {
        return Err("empty path");
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("the path contains a control character (newline, tab, …)");
    }
    if !s.starts_with('/') {
        return Err("the path must be absolute");
    }
    if s.len() > 1 && s.ends_with('/') {
        return Err("the path must name a file, without a trailing \"/\"");
    }
    if s.contains("//") {
        return Err("the path contains an empty component (\"//\")");
    }
    let p = PathBuf::from(s);
    for c in p.components() {
        match c {
            Component::ParentDir => return Err("the path must not contain \"..\""),
            Component::CurDir => return Err("the path must not contain \".\" components"),
            _ => {}
        }
    }
    if s.split('/').any(|c| c == ".") {
        return Err("the path must not contain \".\" components");
    }
    if s.chars().any(|c| {
        matches!(
            c,
            '"' | '\'' | '\\' | '*' | '?' | '[' | ']' | '{' | '}' | '#'
        )
    }) {
        return Err(
            "the path contains a quote, backslash, glob or comment character, which logrotate and unit files would read differently",
        );
    }
    if s.chars().any(char::is_whitespace) {
        return Err("the path contains whitespace, which logrotate cannot match exactly");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        from_str(Some(Path::new("c.toml")), text)
            .unwrap_err()
            .message
    }

    #[test]
    fn defaults_are_cis_compliant_and_quiet() {
        let s = Settings::defaults();
        assert_eq!(s.unit, "kube-apiserver.service");
        assert_eq!(s.policy, PolicySource::Preset(Preset::Recommended));
        assert_eq!(
            s.log.path,
            PathBuf::from("/var/log/kubernetes/audit/audit.log")
        );
        assert_eq!(
            (s.log.maxage, s.log.maxbackup, s.log.maxsize),
            (30, 10, 100)
        );
        assert_eq!(s.log.mode, Mode::Blocking);
        assert_eq!(s.log.rotation, Rotation::Apiserver);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.apply.verify_timeout.nanos, 60_000_000_000);
    }

    #[test]
    fn unknown_key_names_line_table_and_suggestion() {
        let e = err("[log]\nmaxage = 30\nmax_age = 3\n");
        assert!(
            e.starts_with(
                "c.toml:3:1: unknown key \"max_age\" in [log] (did you mean \"maxage\"?)"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let e = err("unitt = \"x.service\"\n");
        assert!(
            e.starts_with("c.toml:1:1: unknown key \"unitt\" (did you mean \"unit\"?)"),
            "{e}"
        );
    }

    /// Dotted keys and inline tables name the key where it is, not the
    /// nearest `[table]` header above.
    #[test]
    fn key_paths_of_dotted_keys_and_inline_tables() {
        let e = err("unit = \"kube-apiserver.service\"\nlog.maxage = \"thirty\"\n");
        assert!(
            e.starts_with("c.toml:2:14: log.maxage: invalid type"),
            "{e}"
        );
        let e = err("log = { maxage = 30, max_age = 3 }\n");
        assert!(
            e.contains("unknown key \"max_age\" in [log] (did you mean \"maxage\"?)"),
            "{e}"
        );
        let e = err("[policy]\npreset = \"cis\"\n[log]\nrotation = { a = 1 }\n");
        assert!(e.contains(": log.rotation: "), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let e = err("[log]\nmaxage = \"thirty\"\n");
        assert!(
            e.starts_with("c.toml:2:10: log.maxage: invalid type: string \"thirty\", expected i64"),
            "{e}"
        );
    }

    #[test]
    fn invalid_mode_names_upstream_message() {
        let e = err("[log]\nmode = \"bogus\"\n");
        assert_eq!(
            e,
            "c.toml:2:8: log.mode: invalid value \"bogus\": expected one of \"batch\", \"blocking\", \"blocking-strict\" (kube-apiserver: allowed modes are \"batch,blocking,blocking-strict\")"
        );
    }

    #[test]
    fn negative_maxage() {
        let e = err("[log]\nmaxage = -1\n");
        assert!(
            e.contains("c.toml:2:10: log.maxage: -1 is negative")
                && e.contains("--audit-log-maxage -1 can't be a negative number"),
            "{e}"
        );
    }

    #[test]
    fn all_errors_reported_together() {
        let e = err("[log]\nmaxage = -1\nformat = \"xml\"\n");
        assert_eq!(e.lines().count(), 2, "{e}");
    }

    #[test]
    fn preset_and_file_both() {
        let e = err("[policy]\npreset = \"cis\"\nfile = \"/etc/p.yaml\"\n");
        assert!(
            e.contains(
                "c.toml:3:8: policy.file: policy.preset (line 2) and policy.file are both set"
            ),
            "{e}"
        );
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        assert!(err("[log]\npath = \"var/log/a.log\"\n").contains("must be absolute"));
        assert!(err("[log]\npath = \"/var/log/../etc/a.log\"\n").contains("\"..\""));
        assert!(err("[log]\npath = \"/var/log/a\\nb.log\"\n").contains("control character"));
        assert!(err("[log]\npath = \"-\"\n").contains("stdout"));
        assert!(err("[policy]\npath = \"/etc/kubernetes/\"\n").contains("trailing"));
    }

    #[test]
    fn truncate_batch_must_cover_event() {
        let e = err("[log]\ntruncate_max_event_size = 20971520\n");
        assert!(e.contains("log.truncate_max_batch_size: 10485760 is smaller than log.truncate_max_event_size 20971520"), "{e}");
        assert!(err("[log]\ntruncate_max_event_size = 0\n").contains("0 is too small"));
    }

    #[test]
    fn throttle_needs_positive_values_in_batch_mode() {
        let e = err("[log]\nmode = \"batch\"\nbatch_throttle_enable = true\n");
        assert!(
            e.contains("log.batch_throttle_qps: must be a positive number"),
            "{e}"
        );
        assert!(
            e.contains("log.batch_throttle_burst: must be a positive number"),
            "{e}"
        );
        let ok = from_str(None, "[log]\nmode = \"batch\"\nbatch_throttle_enable = true\nbatch_throttle_qps = 5.5\nbatch_throttle_burst = 10\n").unwrap();
        assert_eq!(ok.log.backend.batch_throttle_qps, Some(5.5));
        // The webhook backend throttles by default (10 QPS, burst 15): a zero burst is refused.
        let e = err(
            "[webhook]\nconfig = \"/etc/kubernetes/wh.kubeconfig\"\nbatch_throttle_burst = 0\n",
        );
        assert!(
            e.contains("webhook.batch_throttle_burst: must be a positive number"),
            "{e}"
        );
    }

    #[test]
    fn batch_buffer_must_be_positive() {
        let e = err("[log]\nmode = \"batch\"\nbatch_buffer_size = 0\n");
        assert!(e.contains("log.batch_buffer_size: 0 is too small"), "{e}");
    }

    #[test]
    fn version_only_v1() {
        let e = err("[log]\nversion = \"audit.k8s.io/v1beta1\"\n");
        assert!(e.contains("only \"audit.k8s.io/v1\""), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(GoDuration::parse("1m30s").unwrap().nanos, 90_000_000_000);
        assert_eq!(GoDuration::parse("250ms").unwrap().nanos, 250_000_000);
        assert!(GoDuration::parse("5").is_err());
        assert!(GoDuration::parse("5x").is_err());
        assert!(GoDuration::parse("").is_err());
        assert!(err("[apply]\nverify_timeout = \"0s\"\n").contains("between 1s and 1h"));
        assert!(err("[apply]\nverify_timeout = \"soon\"\n").contains("invalid duration"));
    }

    #[test]
    fn cis_warnings_not_errors() {
        let s = from_str(None, "[log]\nmaxage = 7\nmaxbackup = 3\nmaxsize = 50\n").unwrap();
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("CIS 1.2.17"));
    }

    #[test]
    fn logrotate_mode_needs_retention() {
        assert!(err("[log]\nrotation = \"logrotate\"\nmaxbackup = 0\n").contains("log.maxbackup"));
        let s = from_str(None, "[log]\nrotation = \"logrotate\"\n").unwrap();
        assert_eq!(s.log.rotation, Rotation::Logrotate);
    }

    #[test]
    fn modes_are_octal_and_safe() {
        assert!(err("[log]\ndir_mode = \"750\"\n").contains("octal mode"));
        assert!(err("[log]\nfile_mode = \"0666\"\n").contains("world-writable"));
        assert!(err("[log]\ndir_mode = \"0500\"\n").contains("rwx"));
        assert_eq!(
            from_str(
                None,
                "[log]\ndir_mode = \"0750\"\nfile_mode = \"0640\"\ngroup = \"adm\"\n"
            )
            .unwrap()
            .log
            .file_mode,
            0o640
        );
    }

    #[test]
    fn unit_name_is_validated() {
        assert!(err("unit = \"../x.service\"\n").contains("c.toml:1:8: unit:"));
    }

    #[test]
    fn toml_syntax_error_has_location() {
        let e = err("[log\npath = 1\n");
        assert!(e.starts_with("c.toml:1:"), "{e}");
    }
}
