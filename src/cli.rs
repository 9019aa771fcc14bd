//! The command line (clap derive). Doc comments are the `--help` text and
//! the source of the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    after_help = "Exit codes: 0 success (plan: converged; apply: no change), 2 plan: changes \
pending (apply with --detailed-exitcodes: changed), 64 usage, 65 invalid data (policy, unit), \
66 missing input, 69 systemd unavailable, 70 apply failed (rolled back), 74 I/O error, \
75 another run holds the lock, 77 permission, 78 invalid configuration.\n\nSee kaudit-node(8) and kaudit-node.toml(5)."
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
    /// directory, /etc/passwd) is read under it. For image builds and for
    /// planning on a copy of a node.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: unified diffs, actions, warnings.
    Text,
    /// One JSON object, for configuration management.
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
    /// log directory, reload and restart the unit over D-Bus, and prove that
    /// new audit events appear. On failure, restore the previous files and
    /// restart again, so the apiserver is never left down.
    ///
    /// A converged node is a no-op: no write, no reload, no restart, exit 0.
    /// Runs as root; one run at a time (a lock in /run/lock).
    Apply {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the plan (as `kaudit-node plan` does) and change nothing.
        #[arg(long, alias = "diff", conflicts_with = "no_restart")]
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
    /// logrotate snippet (and the policy it installed, unless --keep-policy),
    /// reload, restart, and check the apiserver is active. Audit logs are
    /// never deleted.
    Remove {
        #[command(flatten)]
        node: NodeArgs,
        /// Keep the installed audit policy file.
        #[arg(long)]
        keep_policy: bool,
        /// Output format of the report.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Audit policies: validate a file, or print a built-in preset.
    #[command(subcommand)]
    Policy(PolicyCommand),
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
