//! The embedded policies the tool can install.
//!
//! Each is a YAML file in `presets/`, embedded verbatim (comments kept), so
//! what is installed is byte-for-byte what is reviewed here. Tests assert
//! that each validates with no error and no warning.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A built-in policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Everything at Metadata.
    Metadata,
    /// The GCE/kubespray-style policy.
    Recommended,
    /// Security monitoring, CIS 3.2.2-minded.
    Cis,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Metadata, Preset::Recommended, Preset::Cis];

    /// The name used on the command line and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Metadata => "metadata",
            Preset::Recommended => "recommended",
            Preset::Cis => "cis",
        }
    }

    /// The policy file's text.
    pub fn text(self) -> &'static str {
        match self {
            Preset::Metadata => include_str!("presets/metadata.yaml"),
            Preset::Recommended => include_str!("presets/recommended.yaml"),
            Preset::Cis => include_str!("presets/cis.yaml"),
        }
    }

    /// One line for `--help` and listings.
    pub fn description(self) -> &'static str {
        match self {
            Preset::Metadata => "every request at Metadata: who did what, when, never a body",
            Preset::Recommended => {
                "GCE/kubespray-style: drops high-volume system traffic, Secrets and tokens at Metadata, reads at Request, writes at RequestResponse"
            }
            Preset::Cis => {
                "CIS 3.2.2-minded security monitoring: secrets never above Metadata, exec/attach/port-forward/proxy, RBAC and workload changes recorded"
            }
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown policy preset \"{s}\" (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::validate;

    #[test]
    fn every_preset_is_clean() {
        for p in Preset::ALL {
            let report = validate(p.name(), p.text().as_bytes());
            assert!(
                report.diagnostics.is_empty(),
                "{}",
                report.render_text(false)
            );
            assert!(report.is_ok(true));
            assert!(report.rules > 0);
        }
    }

    #[test]
    fn every_preset_explains_itself_in_a_header() {
        for p in Preset::ALL {
            let header = format!("# kaudit-node preset \"{}\"", p.name());
            assert!(p.text().starts_with(&header), "{}", p.name());
            assert!(!p.description().is_empty());
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
        }
        assert!(
            "Metadata"
                .parse::<Preset>()
                .unwrap_err()
                .contains("metadata, recommended, cis")
        );
    }
}
