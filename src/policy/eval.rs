//! How kube-apiserver decides what it records of a request: the first rule
//! that matches wins, and with none the level is `None`.
//!
//! Written by hand because it must follow upstream exactly
//! (`pkg/audit/policy/checker.go`: `EvaluatePolicyRule`, `ruleMatches`,
//! `ruleMatchesResource`, `ruleMatchesNonResource`, `pathMatches`): users
//! and userGroups (a request without a user matches neither), verbs (no
//! wildcard), namespaces (`""` for cluster-scoped), resources by group with
//! `*`, `*/sub`, `res/*` and resourceNames, non-resource URLs with a
//! trailing `*`. The policy's own omitStages are merged into every rule.
//! The lints ask this matcher too, so what `policy validate` says of a rule
//! is what the probe relies on.

use super::decode::{Policy, Rule};

/// An audit level, ordered as upstream orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// The user of a request, as authentication left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User<'a> {
    pub name: &'a str,
    pub groups: &'a [&'a str],
}

/// What the audit policy sees of a request (`authorizer.Attributes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// `None` when authentication failed (a 401): `"user":{}` in the event.
    pub user: Option<User<'a>>,
    pub verb: &'a str,
    pub target: Target<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Resource {
        group: &'a str,
        resource: &'a str,
        subresource: &'a str,
        /// `""` for a cluster-scoped request.
        namespace: &'a str,
        name: &'a str,
    },
    NonResource {
        path: &'a str,
    },
}

/// The upstream resource pattern match of one `resources` entry against a
/// resource and subresource.
pub fn resource_pattern_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    let combined = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    pattern == combined
        || pattern == "*"
        || (!subresource.is_empty() && pattern.strip_prefix("*/") == Some(subresource))
        || pattern.strip_suffix("/*") == Some(resource)
}

/// `pathMatches`: `*`, an exact path, or a prefix before a trailing `*`.
pub fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|p| path.starts_with(p.trim_end_matches('*')))
}

fn has(list: &[super::decode::Spanned<String>], s: &str) -> bool {
    list.iter().any(|v| v.value == s)
}

/// `ruleMatches`.
pub(crate) fn rule_matches(r: &Rule, req: &Request) -> bool {
    if !r.users.is_empty() && !req.user.as_ref().is_some_and(|u| has(&r.users, u.name)) {
        return false;
    }
    if !r.user_groups.is_empty()
        && !req
            .user
            .as_ref()
            .is_some_and(|u| u.groups.iter().any(|g| has(&r.user_groups, g)))
    {
        return false;
    }
    if !r.verbs.is_empty() && !has(&r.verbs, req.verb) {
        return false;
    }
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        let Target::Resource {
            group,
            resource,
            subresource,
            namespace,
            name,
        } = req.target
        else {
            return false;
        };
        if !r.namespaces.is_empty() && !has(&r.namespaces, namespace) {
            return false;
        }
        if r.resources.is_empty() {
            return true;
        }
        return r.resources.iter().any(|gr| {
            gr.group.value == group
                && (gr.resources.is_empty()
                    || ((gr.resource_names.is_empty() || has(&gr.resource_names, name))
                        && gr
                            .resources
                            .iter()
                            .any(|p| resource_pattern_matches(&p.value, resource, subresource))))
        });
    }
    if !r.non_resource_urls.is_empty() {
        let Target::NonResource { path } = req.target else {
            return false;
        };
        return r
            .non_resource_urls
            .iter()
            .any(|s| path_matches(path, &s.value));
    }
    true
}

/// What the policy records of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub level: Level,
    /// The stages not written: the rule's and the policy's.
    pub omit_stages: Vec<String>,
    /// The index of the rule that matched.
    pub rule: Option<usize>,
}

impl Verdict {
    /// Whether an event is written at `stage`.
    pub fn records(&self, stage: &str) -> bool {
        self.level > Level::None && !self.omit_stages.iter().any(|s| s == stage)
    }
}

/// `EvaluatePolicyRule`: the first rule that matches decides; a rule
/// whose level cannot be read (already an error) is skipped.
pub(crate) fn evaluate(p: &Policy, req: &Request) -> Verdict {
    let policy_omits: Vec<String> = p.omit_stages.iter().map(|s| s.value.clone()).collect();
    for r in p.rules.iter().filter(|r| !r.tainted) {
        if rule_matches(r, req) {
            let mut omit = policy_omits.clone();
            omit.extend(r.omit_stages.iter().map(|s| s.value.clone()));
            return Verdict {
                level: r
                    .level
                    .as_ref()
                    .and_then(|l| Level::parse(&l.value))
                    .unwrap_or(Level::None),
                omit_stages: omit,
                rule: Some(r.index),
            };
        }
    }
    Verdict {
        level: Level::None,
        omit_stages: policy_omits,
        rule: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_upstream() {
        assert!(resource_pattern_matches("pods/exec", "pods", "exec"));
        assert!(resource_pattern_matches("*/exec", "pods", "exec"));
        assert!(resource_pattern_matches("pods/*", "pods", "exec"));
        assert!(resource_pattern_matches("pods/*", "pods", ""));
        assert!(resource_pattern_matches("*", "pods", "exec"));
        assert!(!resource_pattern_matches("pods", "pods", "exec"));
        assert!(!resource_pattern_matches("*/exec", "pods", ""));
        assert!(path_matches("/readyz", "/readyz*"));
        assert!(path_matches("/apis/x", "/apis/*"));
        assert!(path_matches("/x", "*"));
        assert!(!path_matches("/readyz", "/livez*"));
    }
}
