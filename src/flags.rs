//! Settings → the `--audit-*` flags: one canonical set, in a fixed order.
//!
//! Always explicit: the policy file, the log path, maxage, maxbackup,
//! maxsize, format and mode (so CIS checks that need the flags literally
//! present pass, and the meaning does not depend on the apiserver version:
//! docs/reference.md, Duplicate flags and compliance checks, and Meaning and
//! default changes). Everything else only when configured.

use crate::config::{BackendSettings, INERT_MAXSIZE, Rotation, Settings};

/// One flag: its name without dashes, and its value (`None` for a bare
/// boolean flag such as `--audit-log-compress`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

impl Flag {
    fn new(name: &str, value: impl ToString) -> Flag {
        Flag {
            name: name.to_string(),
            value: Some(value.to_string()),
        }
    }

    fn bool(name: &str, value: bool) -> Flag {
        // A bare flag means true; false needs the explicit form for pflag.
        Flag {
            name: name.to_string(),
            value: (!value).then(|| "false".to_string()),
        }
    }

    /// The argv element, unquoted: `--audit-log-maxage=30`.
    pub fn arg(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={v}", self.name),
            None => format!("--{}", self.name),
        }
    }

    /// The value pflag ends up with (bare booleans are `true`).
    pub fn effective_value(&self) -> &str {
        self.value.as_deref().unwrap_or("true")
    }
}

/// The flags kaudit-node appends to the vendor command line.
pub fn audit_flags(s: &Settings) -> Vec<Flag> {
    let mut f = vec![
        Flag::new("audit-policy-file", s.policy_path.display()),
        Flag::new("audit-log-path", s.log.path.display()),
        Flag::new("audit-log-format", s.log.format.as_str()),
        Flag::new("audit-log-mode", s.log.mode.as_str()),
        Flag::new("audit-log-maxage", s.log.maxage),
        Flag::new("audit-log-maxbackup", s.log.maxbackup),
        Flag::new(
            "audit-log-maxsize",
            match s.log.rotation {
                Rotation::Apiserver => s.log.maxsize,
                // lumberjack made inert; logrotate owns rotation (docs/reference.md,
                // Log rotation by logrotate).
                Rotation::Logrotate => INERT_MAXSIZE,
            },
        ),
    ];
    // With logrotate owning rotation, logrotate compresses; lumberjack must not.
    if s.log.compress && s.log.rotation == Rotation::Apiserver {
        f.push(Flag::bool("audit-log-compress", true));
    }
    if let Some(v) = &s.log.version {
        f.push(Flag::new("audit-log-version", v));
    }
    backend_flags(&mut f, "audit-log", &s.log.backend);
    if let Some(w) = &s.webhook {
        f.push(Flag::new("audit-webhook-config-file", w.config.display()));
        if let Some(m) = w.mode {
            f.push(Flag::new("audit-webhook-mode", m.as_str()));
        }
        if let Some(v) = &w.version {
            f.push(Flag::new("audit-webhook-version", v));
        }
        if let Some(d) = &w.initial_backoff {
            f.push(Flag::new("audit-webhook-initial-backoff", &d.text));
        }
        backend_flags(&mut f, "audit-webhook", &w.backend);
    }
    f
}

fn backend_flags(f: &mut Vec<Flag>, prefix: &str, b: &BackendSettings) {
    let name = |n: &str| format!("{prefix}-{n}");
    if let Some(v) = b.batch_buffer_size {
        f.push(Flag::new(&name("batch-buffer-size"), v));
    }
    if let Some(v) = b.batch_max_size {
        f.push(Flag::new(&name("batch-max-size"), v));
    }
    if let Some(v) = &b.batch_max_wait {
        f.push(Flag::new(&name("batch-max-wait"), &v.text));
    }
    if let Some(v) = b.batch_throttle_enable {
        f.push(Flag::bool(&name("batch-throttle-enable"), v));
    }
    if let Some(v) = b.batch_throttle_qps {
        f.push(Flag::new(&name("batch-throttle-qps"), v));
    }
    if let Some(v) = b.batch_throttle_burst {
        f.push(Flag::new(&name("batch-throttle-burst"), v));
    }
    if let Some(v) = b.truncate_enabled {
        f.push(Flag::bool(&name("truncate-enabled"), v));
    }
    if let Some(v) = b.truncate_max_batch_size {
        f.push(Flag::new(&name("truncate-max-batch-size"), v));
    }
    if let Some(v) = b.truncate_max_event_size {
        f.push(Flag::new(&name("truncate-max-event-size"), v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Settings, from_str};

    fn args(s: &Settings) -> Vec<String> {
        audit_flags(s).iter().map(Flag::arg).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(
            args(&Settings::defaults()),
            [
                "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
                "--audit-log-path=/var/log/kubernetes/audit/audit.log",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxage=30",
                "--audit-log-maxbackup=10",
                "--audit-log-maxsize=100",
            ]
        );
    }

    #[test]
    fn logrotate_makes_lumberjack_inert_and_keeps_cis_flags() {
        let s = from_str(None, "[log]\nrotation = \"logrotate\"\ncompress = true\n").unwrap();
        let a = args(&s);
        assert!(a.contains(&"--audit-log-maxsize=2000000000".to_string()));
        assert!(a.contains(&"--audit-log-maxage=30".to_string()));
        assert!(!a.iter().any(|f| f.starts_with("--audit-log-compress")));
    }

    #[test]
    fn seed_000_flag_set_is_expressible() {
        let s = from_str(
            None,
            "[log]\nmode = \"batch\"\nbatch_max_size = 5\ncompress = true\nmaxbackup = 100\nmaxsize = 50\ntruncate_enabled = true\ntruncate_max_batch_size = 10485760\ntruncate_max_event_size = 102400\nversion = \"audit.k8s.io/v1\"\nbatch_max_wait = \"5s\"\nbatch_throttle_enable = true\nbatch_throttle_qps = 10\nbatch_throttle_burst = 15\n",
        )
        .unwrap();
        let a = args(&s);
        for want in [
            "--audit-log-batch-max-size=5",
            "--audit-log-compress",
            "--audit-log-mode=batch",
            "--audit-log-truncate-enabled",
            "--audit-log-truncate-max-batch-size=10485760",
            "--audit-log-truncate-max-event-size=102400",
            "--audit-log-version=audit.k8s.io/v1",
            "--audit-log-batch-max-wait=5s",
            "--audit-log-batch-throttle-enable",
            "--audit-log-batch-throttle-qps=10",
            "--audit-log-batch-throttle-burst=15",
        ] {
            assert!(a.contains(&want.to_string()), "{want} missing from {a:?}");
        }
    }

    #[test]
    fn webhook_flags() {
        let s = from_str(
            None,
            "[webhook]\nconfig = \"/etc/kubernetes/audit-webhook.kubeconfig\"\nmode = \"batch\"\ninitial_backoff = \"5s\"\nbatch_max_wait = \"5s\"\nbatch_max_size = 100\nbatch_throttle_enable = false\n",
        )
        .unwrap();
        let a = args(&s);
        assert!(a.contains(
            &"--audit-webhook-config-file=/etc/kubernetes/audit-webhook.kubeconfig".to_string()
        ));
        assert!(a.contains(&"--audit-webhook-batch-throttle-enable=false".to_string()));
        assert!(a.contains(&"--audit-webhook-initial-backoff=5s".to_string()));
    }
}
