//! kube-apiserver releases, and which audit flags and values each accepts.
//!
//! The table is upstream's history of `pkg/server/options/audit.go` in
//! `k8s.io/apiserver`, read at the `.0` tag of every minor release from
//! 1.12 on; docs/reference.md cites the tags. It is written by hand because
//! it is a fact about Kubernetes, not something a crate knows.

use std::fmt;

use crate::flags::Flag;

/// A kube-apiserver release, as `--version` prints it (`v1.32.0-rc.0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The part after `-` (`rc.0`, `standin`), as printed.
    pub pre: Option<String>,
}

/// The oldest release kaudit-node configures: the first with the
/// `audit.k8s.io/v1` policy API, which every preset and accepted policy uses.
pub const OLDEST_SUPPORTED: (u32, u32) = (1, 12);

impl Version {
    /// Parses `v1.32.0`, `1.32.0`, `v1.32.0-rc.0` or `v1.32` (patch 0).
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) if !p.is_empty() && !p.chars().any(char::is_whitespace) => {
                (c, Some(p.to_string()))
            }
            Some(_) => return None,
            None => (t, None),
        };
        let mut parts = core.split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let major = num(parts.next())?;
        let minor = num(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            p => num(p)?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Reads the first line kube-apiserver prints for `--version`:
    /// `Kubernetes v1.32.0` (`k8s.io/component-base/version/verflag`).
    pub fn from_version_output(stdout: &str) -> Option<Version> {
        let line = stdout.lines().next()?.trim();
        let v = line.strip_prefix("Kubernetes ")?;
        v.starts_with('v').then(|| Version::parse(v)).flatten()
    }

    /// Whether this release is `major.minor` or later (pre-releases of
    /// `major.minor` count as that release: an rc has its flags).
    pub fn at_least(&self, (major, minor): (u32, u32)) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

/// An audit flag that not every supported release has: the first release
/// with it, and the first without it again.
struct FlagSpan {
    name: &'static str,
    since: (u32, u32),
    until: Option<(u32, u32)>,
}

/// Every other `--audit-*` flag kaudit-node writes is in all releases from
/// [`OLDEST_SUPPORTED`] to the newest read (1.37.0-beta.0).
const FLAG_SPANS: [FlagSpan; 2] = [
    // AuditLogOptions.AddFlags, from kubernetes-1.20.0.
    FlagSpan {
        name: "audit-log-compress",
        since: (1, 20),
        until: None,
    },
    // AuditDynamicOptions.AddFlags, kubernetes-1.13.0 to 1.18; gone in 1.19.
    FlagSpan {
        name: "audit-dynamic-configuration",
        since: (1, 13),
        until: Some((1, 19)),
    },
];

/// A value that not every supported release accepts.
struct ValueSpan {
    flag: &'static str,
    value: &'static str,
    since: (u32, u32),
}

const VALUE_SPANS: [ValueSpan; 2] = [
    // AllowedModes gains blocking-strict at kubernetes-1.13.0.
    ValueSpan {
        flag: "audit-log-mode",
        value: "blocking-strict",
        since: (1, 13),
    },
    ValueSpan {
        flag: "audit-webhook-mode",
        value: "blocking-strict",
        since: (1, 13),
    },
];

/// Flags that give the configured meaning on release `v` where its
/// defaults differ: before 1.13 the log and webhook backends write
/// `audit.k8s.io/v1beta1` events by default (`NewAuditOptions` at
/// kubernetes-1.12.0), so kaudit-node asks for `audit.k8s.io/v1`, the
/// format its configuration means and its verification reads.
pub fn adapt(v: &Version, flags: &mut Vec<Flag>) {
    if v.at_least((1, 13)) {
        return;
    }
    for backend in ["audit-log", "audit-webhook"] {
        let version = format!("{backend}-version");
        let enabled = flags.iter().any(|f| {
            f.name == format!("{backend}-path") || f.name == format!("{backend}-config-file")
        });
        if enabled && !flags.iter().any(|f| f.name == version) {
            flags.push(Flag {
                name: version,
                value: Some("audit.k8s.io/v1".into()),
            });
        }
    }
}

/// Why a release cannot run a flag kaudit-node would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The flag as kaudit-node would write it: `--audit-log-compress`.
    pub flag: String,
    /// "needs kube-apiserver ≥ 1.20", "was removed in kube-apiserver 1.19".
    pub needs: String,
}

fn dotted((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}

/// The flags of `flags` that release `v` cannot run, in order.
pub fn unsupported(v: &Version, flags: &[Flag]) -> Vec<Unsupported> {
    let mut out = Vec::new();
    for f in flags {
        if let Some(span) = FLAG_SPANS.iter().find(|s| s.name == f.name) {
            if !v.at_least(span.since) {
                out.push(Unsupported {
                    flag: f.arg(),
                    needs: format!("needs kube-apiserver ≥ {}", dotted(span.since)),
                });
                continue;
            }
            if let Some(until) = span.until.filter(|u| v.at_least(*u)) {
                out.push(Unsupported {
                    flag: f.arg(),
                    needs: format!("was removed in kube-apiserver {}", dotted(until)),
                });
                continue;
            }
        }
        if let Some(span) = VALUE_SPANS
            .iter()
            .find(|s| s.flag == f.name && Some(s.value) == f.value.as_deref())
            && !v.at_least(span.since)
        {
            out.push(Unsupported {
                flag: f.arg(),
                needs: format!("needs kube-apiserver ≥ {}", dotted(span.since)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: &str) -> Version {
        Version::parse(t).unwrap()
    }

    #[test]
    fn parses_what_kube_apiserver_prints() {
        assert_eq!(
            Version::from_version_output("Kubernetes v1.32.0-rc.0\n"),
            Some(Version {
                major: 1,
                minor: 32,
                patch: 0,
                pre: Some("rc.0".into())
            })
        );
        assert_eq!(
            Version::from_version_output("Kubernetes v1.28.7-standin\n")
                .unwrap()
                .to_string(),
            "v1.28.7-standin"
        );
        for bad in [
            "",
            "kube-apiserver 1.32",
            "Kubernetes 1.32.0",
            "Kubernetes v1.x.0",
            "Kubernetes v1.32.0.1",
            "OpenShift v3.11.0\nKubernetes v1.11.0",
            "Kubernetes v1.32.0-",
        ] {
            assert_eq!(Version::from_version_output(bad), None, "{bad:?}");
        }
        assert_eq!(v("1.32").to_string(), "v1.32.0");
        assert!(v("v1.20.0-alpha.1").at_least((1, 20)));
        assert!(!v("v1.19.16").at_least((1, 20)));
        assert!(v("v2.0.0").at_least((1, 99)));
    }

    #[test]
    fn v1_events_asked_for_where_they_are_not_the_default() {
        let base = vec![Flag {
            name: "audit-log-path".into(),
            value: Some("/var/log/a.log".into()),
        }];
        let mut f = base.clone();
        adapt(&v("1.12.10"), &mut f);
        assert_eq!(
            f.last().unwrap().arg(),
            "--audit-log-version=audit.k8s.io/v1"
        );
        assert_eq!(f.len(), 2);
        let mut f = base.clone();
        adapt(&v("1.13.0"), &mut f);
        assert_eq!(f, base);
    }

    #[test]
    fn flags_by_release() {
        let compress = Flag {
            name: "audit-log-compress".into(),
            value: None,
        };
        let strict = Flag {
            name: "audit-log-mode".into(),
            value: Some("blocking-strict".into()),
        };
        let dynamic = Flag {
            name: "audit-dynamic-configuration".into(),
            value: None,
        };
        let all = [compress, strict, dynamic];
        let names = |t: &str| -> Vec<String> {
            unsupported(&v(t), &all)
                .into_iter()
                .map(|u| format!("{} {}", u.flag, u.needs))
                .collect()
        };
        assert_eq!(
            names("1.12.0"),
            [
                "--audit-log-compress needs kube-apiserver ≥ 1.20",
                "--audit-log-mode=blocking-strict needs kube-apiserver ≥ 1.13",
                "--audit-dynamic-configuration needs kube-apiserver ≥ 1.13",
            ]
        );
        assert_eq!(
            names("1.19.16"),
            [
                "--audit-log-compress needs kube-apiserver ≥ 1.20",
                "--audit-dynamic-configuration was removed in kube-apiserver 1.19"
            ]
        );
        assert_eq!(
            names("1.18.20"),
            ["--audit-log-compress needs kube-apiserver ≥ 1.20"]
        );
        assert_eq!(
            names("v1.32.0"),
            ["--audit-dynamic-configuration was removed in kube-apiserver 1.19"]
        );
    }
}
