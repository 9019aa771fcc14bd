//! The command line (clap derive). Doc comments are the `--help` text and
//! the source of the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::GoDuration;
use crate::policy::Preset;

/// Turn on kube-apiserver audit logging on a node where the apiserver is a
/// systemd service, and keep it right.
///
/// kaudit-node writes a systemd drop-in that runs the vendor's exact command
/// line plus one canonical set of --audit-* flags, installs a validated audit
/// policy, and (when logrotate owns rotation) a logrotate snippet.
#[derive(Debug, Parser)]
#[command(
    name = "kaudit-node",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success (plan: converged; apply: done, changed or not), \
2 plan: changes pending, 64 usage, 65 invalid data (policy, unit, not a kube-apiserver), \
66 missing input, 69 systemd unavailable, 70 apply failed (rolled back), 74 I/O error, \
75 another run holds the lock, 77 permission denied or an untrusted input, \
78 invalid configuration (or one the node's release cannot run).\n\
apply --detailed-exitcodes: 0 no change, 2 changed, 4 failed, 6 failed with changes.\n\
check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n\
events: 0 every file read, 66 no log, 74 a file could not be read.\n\nSee kaudit-node(8) and kaudit-node.toml(5)."
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); or set KAUDIT_NODE_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Configuration file [default: /etc/kaudit-node/config.toml; when it does
    /// not exist, the embedded defaults]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Treat DIR as the node's root: every node path (units, policy, log
    /// directory, /etc/passwd, and every path inside the configuration) is
    /// read under it. For image builds and for planning on a copy of a node.
    /// The default configuration is read under DIR too; a --config FILE is a
    /// path on this machine.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people (plan: unified diffs and actions; apply and remove: what
    /// was done; policy validate: the diagnostics).
    Text,
    /// One JSON object, for configuration management and scripts, on
    /// success and on failure alike.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `apply` would change, as unified diffs per file plus the
    /// actions (daemon-reload, restart). Exit 0 when the node is converged,
    /// 2 when there are changes.
    ///
    /// Reads only: the unit's fragment and drop-ins, kaudit-node's own files,
    /// /etc/passwd and /etc/group, all under --root.
    Plan {
        #[command(flatten)]
        node: NodeArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Turn audit logging on and keep it right: write the drop-in, policy and
    /// log directory, reload and restart the unit over D-Bus, wait until
    /// /readyz says the apiserver serves, and prove that the log works: a new
    /// audit event, or the event of a request without credentials that the
    /// policy records, or, for a policy that records no such request, the
    /// process evidence with a warning.
    /// On failure, restore the previous files and restart again, so the
    /// apiserver is never left down.
    ///
    /// Only a kube-apiserver command is changed: its release (from
    /// `--version`, recorded in the drop-in) decides which flags it can run.
    /// The vendor's own --audit-* flags are removed; one whose value
    /// kaudit-node changes or drops is a warning with both values, and a
    /// moved log path says that log shippers must follow the new one.
    ///
    /// A converged node is a no-op: no write, no reload, no restart, exit 0.
    /// Runs as root; one run at a time (a lock in /run/lock).
    Apply {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the plan (as `kaudit-node plan` does) and change nothing.
        #[arg(long, visible_alias = "diff", conflicts_with = "no_restart")]
        dry_run: bool,
        /// Write the files and reload systemd, but do not restart (image builds).
        #[arg(long)]
        no_restart: bool,
        /// Puppet's exit codes: 0 no change, 2 changed, 4 failed, 6 failed with changes.
        #[arg(long)]
        detailed_exitcodes: bool,
        /// Output format of the report.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Give the vendor command line back: remove kaudit-node's drop-in and
    /// logrotate snippet (and the policy it installed, unless --keep-policy,
    /// your own policy.file, or used by the vendor command line), reload,
    /// restart, and check the apiserver stays active; if it does not, put
    /// kaudit-node's files back and restart on them (exit 70). Audit logs are
    /// never deleted.
    Remove {
        #[command(flatten)]
        node: NodeArgs,
        /// Keep the installed audit policy file.
        #[arg(long)]
        keep_policy: bool,
        /// Print what would be removed, reloaded and restarted (unified
        /// diffs to /dev/null), and change nothing.
        #[arg(long, visible_alias = "diff")]
        dry_run: bool,
        /// Output format of the report.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Check that audit logging works now, as a monitoring plugin: the unit
    /// is active; kaudit-node's drop-in is on disk, loaded, and systemd's
    /// ExecStart is its own; the main process runs with the configured flags,
    /// each effective once; the installed policy is kaudit-node's and
    /// validates; the process holds the log open (not a deleted file); the
    /// log was written recently and its last line is an audit event; its
    /// filesystem has free space and inodes; the vendor command line has not
    /// drifted; no logrotate rule fights the rotation owner; CIS 1.2.16-1.2.19
    /// pass on the effective flags (a warning when not).
    ///
    /// Read-only and cheap: no lock, no reload, no restart; reads only the end
    /// of the log; writes nothing but the --prometheus file. Runs as any user:
    /// what it cannot read is UNKNOWN, with the reason.
    ///
    /// Exit codes (monitoring-plugin conventions): 0 OK, 1 WARNING, 2
    /// CRITICAL, 3 UNKNOWN (including a bad configuration or command line, a
    /// --prometheus file that cannot be written, or a node kaudit-node does
    /// not manage: no such unit and no drop-in). The worst probe wins, in
    /// the order CRITICAL > WARNING > UNKNOWN > OK (monitoring-plugins'
    /// max_state_alt).
    #[command(
        after_help = "Output: one summary line `AUDIT STATE - ...` with the performance \
data after `|` (log_age_seconds with the age thresholds, log_bytes, log_fs_free_bytes and \
log_fs_free_inodes with the free-space thresholds, restarts), then one line per probe."
    )]
    Check {
        #[command(flatten)]
        node: NodeArgs,
        /// Output format: monitoring-plugin text, or every probe as JSON.
        #[arg(long, value_enum, default_value_t = CheckFormat::Nagios)]
        format: CheckFormat,
        /// Also write the result in node_exporter's textfile format to FILE,
        /// atomically (a temporary file in the same directory, then rename).
        #[arg(long, value_name = "FILE")]
        prometheus: Option<PathBuf>,
        /// WARNING when the log was last written longer ago than DUR (Go
        /// duration syntax: 90s, 5m, 1h).
        #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
        warn_age: GoDuration,
        /// CRITICAL when the log was last written longer ago than DUR.
        #[arg(long, value_name = "DUR", default_value = "15m", value_parser = parse_duration)]
        crit_age: GoDuration,
        /// WARNING when less than PCT percent of the bytes or of the inodes of
        /// the log's filesystem are free.
        #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = parse_percent)]
        warn_free: f64,
        /// CRITICAL when less than PCT percent of the bytes or inodes are free.
        #[arg(long, value_name = "PCT", default_value_t = 5.0, value_parser = parse_percent)]
        crit_free: f64,
        /// Also send the request the installed policy records (without
        /// credentials: it gets 401 or 403 and changes nothing) and expect
        /// its event in the log within 5 s: an end-to-end test of the audit
        /// pipeline, whatever the traffic. CRITICAL when it does not appear.
        #[arg(long)]
        probe: bool,
    },
    /// Answer an audit log's questions: who read Secrets, who exec'd into
    /// pods, who changed RBAC, what was denied, what one user did. Reads the
    /// log the configuration names (the drop-in's --audit-log-path when
    /// kaudit-node's drop-in is installed) and every backup of it, from the
    /// apiserver (audit-<time>.log[.gz]) and from logrotate
    /// (audit.log-<date>[.gz]), gzip included, merged in time order.
    ///
    /// Filters combine with AND; a filter given twice matches either value.
    /// Each named question is the jq expression it replaces:
    ///
    ///   --secrets    select(.objectRef.resource=="secrets")
    ///
    ///   --exec       select(.objectRef.resource=="pods" and
    ///                (.objectRef.subresource|IN("exec","attach","portforward")))
    ///
    ///   --rbac       select(.objectRef.apiGroup=="rbac.authorization.k8s.io" and
    ///                (.verb|IN("create","update","patch","delete","deletecollection")))
    ///
    ///   --denied     select(.responseStatus.code|IN(401,403))
    ///
    ///   --anonymous  select(.user.username=="system:anonymous")
    ///
    /// Torn lines (a rotation cut), NUL runs (a copytruncate) and lines that
    /// are not audit events are skipped and counted on standard error (in
    /// the trailer with --format json). Exit 0 when every file was read
    /// (matches or not), 66 when there is no log, 74 when a file could not
    /// be read (it is named; the others are still read).
    #[command(
        after_help = "Times are each event's stageTimestamp (when it was written), in UTC.\n\
Examples:\n  kaudit-node events --secrets --since 1h\n  kaudit-node events --denied --by user\n  \
kaudit-node events --user alice --since 2026-12-02T05:00:00Z --until 2026-12-02T06:00:00Z\n  \
kaudit-node events --exec --follow\n  kaudit-node events --file audit.log --file audit-old.log.gz --rbac --count"
    )]
    Events(Box<EventsArgs>),
    /// Audit policies: validate a file, or print a built-in preset.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Read these files (plain or gzip) instead of the configured log and
    /// its backups; repeat for several.
    #[arg(long, value_name = "PATH")]
    pub file: Vec<PathBuf>,
    /// Events written at or after T: RFC 3339 (2026-12-02T05:00:00Z, or with
    /// an offset) or a Go duration ago (90s, 15m, 2h).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Events written before T (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// user.username matches GLOB (`*`, `?`, `[...]`); the user is who
    /// authenticated, also when they impersonated someone.
    /// jq: select(.user.username=="alice")
    #[arg(long, value_name = "GLOB")]
    pub user: Vec<String>,
    /// One of user.groups is NAME. jq: select(.user.groups|index("NAME"))
    #[arg(long, value_name = "NAME")]
    pub group: Vec<String>,
    /// The verb (get, list, watch, create, update, patch, delete,
    /// deletecollection). jq: select(.verb=="delete")
    #[arg(long, value_name = "VERB", value_delimiter = ',')]
    pub verb: Vec<String>,
    /// [group/]resource[/subresource]: `secrets`, `pods/exec`,
    /// `apps/deployments`, `rbac.authorization.k8s.io/clusterrolebindings`;
    /// without a group, any group. jq: select(.objectRef.resource=="secrets")
    #[arg(long, value_name = "RES")]
    pub resource: Vec<String>,
    /// objectRef.namespace. jq: select(.objectRef.namespace=="prod")
    #[arg(long, value_name = "NS")]
    pub namespace: Vec<String>,
    /// objectRef.name. jq: select(.objectRef.name=="web-1")
    #[arg(long, value_name = "NAME")]
    pub name: Vec<String>,
    /// responseStatus.code: exact (403) or a class (4xx).
    /// jq: select(.responseStatus.code>=400 and .responseStatus.code<500)
    #[arg(long, value_name = "CODE", value_delimiter = ',')]
    pub code: Vec<String>,
    /// The level: Metadata, Request or RequestResponse.
    #[arg(long, value_name = "LEVEL")]
    pub level: Vec<String>,
    /// The stage: RequestReceived, ResponseStarted, ResponseComplete or Panic.
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
    /// One of sourceIPs is IP. jq: select(.sourceIPs|index("10.0.0.5"))
    #[arg(long, value_name = "IP")]
    pub source_ip: Vec<String>,
    /// userAgent matches GLOB (`kubectl/*`).
    #[arg(long, value_name = "GLOB")]
    pub user_agent: Vec<String>,
    /// Any verb on Secrets.
    #[arg(long)]
    pub secrets: bool,
    /// pods/exec, pods/attach and pods/portforward.
    #[arg(long)]
    pub exec: bool,
    /// Writes (create, update, patch, delete, deletecollection) to
    /// rbac.authorization.k8s.io.
    #[arg(long)]
    pub rbac: bool,
    /// Denied: responseStatus.code 401 or 403.
    #[arg(long)]
    pub denied: bool,
    /// Requests as system:anonymous.
    #[arg(long)]
    pub anonymous: bool,
    /// text: one line an event (time, user and whom they impersonated, verb,
    /// resource, namespace/name, code, latency); json: the event lines as
    /// written, untouched, then one trailer object
    /// ({"kind":"kaudit-node.Summary",...}).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print only the number of matching events.
    #[arg(long, conflicts_with_all = ["by", "follow"])]
    pub count: bool,
    /// Count matching events by FIELD: a table, largest first.
    #[arg(long, value_enum, value_name = "FIELD", conflicts_with = "follow")]
    pub by: Option<ByField>,
    /// Keep reading the live log as it grows, across rotations (a rename by
    /// the apiserver, a truncate by logrotate's copytruncate), like
    /// `tail -F`, until interrupted. Shows earlier events only with --since.
    #[arg(long, conflicts_with = "file")]
    pub follow: bool,
}

/// What `events --by` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByField {
    /// user.username ("(none)" for a failed authentication).
    User,
    Verb,
    /// [group/]resource[/subresource], or the path of a non-resource request.
    Resource,
    /// responseStatus.code.
    Code,
    /// objectRef.namespace ("(none)" for cluster-scoped requests).
    Namespace,
    /// The first of sourceIPs.
    SourceIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Monitoring-plugin text (Nagios, Icinga, Sensu): a summary line with
    /// performance data, then one line per probe.
    Nagios,
    /// Every probe with its state, reason and metrics, as one JSON object.
    Json,
}

fn parse_duration(s: &str) -> Result<GoDuration, String> {
    GoDuration::parse(s)
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("\"{s}\": expected a percentage from 0 to 100")),
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate an audit policy file with kube-apiserver's rules, and
    /// stricter: unknown and duplicate fields are errors (kube-apiserver
    /// drops them and the rule silently widens). Lints (unknown verbs, rules
    /// shadowed by an earlier catch-all, Secrets/ConfigMaps/TokenReviews
    /// above Metadata, no catch-all rule) are warnings, errors with --strict.
    ///
    /// Exit 0 when valid, 65 when not, 66 when FILE cannot be read.
    Validate {
        /// The policy file (`-` for standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Treat lint warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Print a built-in preset policy: metadata, recommended or cis.
    Show {
        /// The preset.
        #[arg(value_name = "PRESET", value_parser = parse_preset)]
        preset: Preset,
    },
    /// List the built-in presets.
    List,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse::<Preset>().map_err(|_| {
        let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        format!(
            "unknown preset \"{s}\": expected one of {}",
            names.join(", ")
        )
    })
}

/// The clap command, for the man page and completions generator.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        super::command().debug_assert();
    }
}
