//! Upstream's checks: what makes the apiserver refuse the policy at start.
//!
//! Mirrors `LoadPolicyFromBytes` (`pkg/audit/policy/reader.go`) and
//! `ValidatePolicy` (`pkg/apis/audit/validation/validation.go`) of
//! k8s.io/apiserver, with upstream's message texts. Field paths carry the
//! index of `resources[j]` where upstream prints only `resources` (a more
//! precise path, same field).
//!
//! Two points checked against upstream's code rather than its docs:
//! `resources[].group: "*"` is rejected (it is no DNS-1123 subdomain, and the
//! policy checker compares groups exactly, so there is no group wildcard);
//! policy-level `omitStages` are validated like per-rule ones (newer
//! releases do, and 1.28 was observed to).

use super::decode::{Policy, Rule};
use super::{Diagnostic, quote};
use crate::suggest::closest;

pub(crate) const API_VERSION: &str = "audit.k8s.io/v1";
pub(crate) const LEVELS: &[&str] = &["None", "Metadata", "Request", "RequestResponse"];
pub(crate) const STAGES: &[&str] = &[
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

/// Runs every check, appending to `diags`; marks rules with errors tainted.
pub(crate) fn validate(policy: &mut Policy, diags: &mut Vec<Diagnostic>) {
    check_type_meta(policy, diags);
    check_stages(&policy.omit_stages, "omitStages", None, diags);
    for rule in &mut policy.rules {
        let before = diags.len();
        check_rule(rule, diags);
        if diags.len() != before {
            rule.tainted = true;
        }
    }
    if policy.rules.is_empty() {
        let pos = policy.rules_pos.unwrap_or(policy.pos);
        let mut d = Diagnostic::error(pos, "rules", None, "loaded illegal policy with 0 rules");
        d.suggestion = Some("add at least one rule, e.g. rules: [{level: Metadata}]".to_string());
        diags.push(d);
    }
}

fn check_type_meta(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    match &policy.api_version {
        None => {
            let mut d = Diagnostic::error(
                policy.pos,
                "apiVersion",
                None,
                "missing apiVersion: the apiserver refuses the policy (unknown group version field audit.k8s.io/__internal, Kind=Policy in policy)",
            );
            d.suggestion = Some(format!("add apiVersion: {API_VERSION}"));
            diags.push(d);
        }
        Some(v) if v.value == API_VERSION => {}
        Some(v) if v.value == "audit.k8s.io/v1beta1" || v.value == "audit.k8s.io/v1alpha1" => {
            let mut d = Diagnostic::error(
                v.pos,
                "apiVersion",
                None,
                format!(
                    "Invalid value: \"{0}\": {0} was removed in Kubernetes 1.24 and the apiserver refuses to start with it (no kind \"Policy\" is registered for version \"{0}\")",
                    v.value
                ),
            );
            d.suggestion = Some(format!(
                "use apiVersion: {API_VERSION}; the Policy fields are the same"
            ));
            diags.push(d);
        }
        Some(v) => {
            let mut d = Diagnostic::error(
                v.pos,
                "apiVersion",
                None,
                format!(
                    "Invalid value: {}: the only supported version is {API_VERSION}",
                    quote(&v.value)
                ),
            );
            d.suggestion = Some(format!("use apiVersion: {API_VERSION}"));
            diags.push(d);
        }
    }
    match &policy.kind {
        None => {
            let mut d = Diagnostic::error(
                policy.pos,
                "kind",
                None,
                "missing kind: Object 'Kind' is missing",
            );
            d.suggestion = Some("add kind: Policy".to_string());
            diags.push(d);
        }
        Some(k) if k.value == "Policy" => {}
        Some(k) => {
            let mut d = Diagnostic::error(
                k.pos,
                "kind",
                None,
                format!(
                    "Invalid value: {}: kind must be \"Policy\"",
                    quote(&k.value)
                ),
            );
            d.suggestion = Some("use kind: Policy".to_string());
            diags.push(d);
        }
    }
}

fn check_stages(
    stages: &[super::decode::Spanned<String>],
    path: &str,
    rule: Option<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    for (i, s) in stages.iter().enumerate() {
        if STAGES.contains(&s.value.as_str()) {
            continue;
        }
        let mut d = Diagnostic::error(
            s.pos,
            format!("{path}[{i}]"),
            rule,
            format!(
                "Invalid value: {}: allowed stages are {}",
                quote(&s.value),
                STAGES.join(",")
            ),
        );
        d.suggestion = closest(&s.value, STAGES).map(|c| format!("did you mean \"{c}\"?"));
        diags.push(d);
    }
}

fn quoted_list(items: &[super::decode::Spanned<String>]) -> String {
    let mut inner: Vec<String> = items.iter().take(8).map(|s| quote(&s.value)).collect();
    if items.len() > 8 {
        inner.push("…".to_string());
    }
    format!("[{}]", inner.join(", "))
}

fn check_rule(rule: &Rule, diags: &mut Vec<Diagnostic>) {
    if !rule.is_map {
        return;
    }
    let i = rule.index;
    let r = Some(i);
    let path = format!("rules[{i}]");

    match &rule.level {
        None if rule.level_error => {}
        None => {
            let mut d = Diagnostic::error(rule.pos, format!("{path}.level"), r, "Required value");
            d.suggestion = Some(format!("add level: one of {}", LEVELS.join(", ")));
            diags.push(d);
        }
        Some(l) if LEVELS.contains(&l.value.as_str()) => {}
        Some(l) => {
            let supported: Vec<String> = LEVELS.iter().map(|l| format!("{l:?}")).collect();
            let mut d = Diagnostic::error(
                l.pos,
                format!("{path}.level"),
                r,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    quote(&l.value),
                    supported.join(", ")
                ),
            );
            d.suggestion = closest(&l.value, LEVELS)
                .map(|c| format!("did you mean \"{c}\"? levels are case-sensitive"));
            diags.push(d);
        }
    }

    for (k, url) in rule.non_resource_urls.iter().enumerate() {
        let u = url.value.as_str();
        if u == "*" {
            continue;
        }
        let upath = format!("{path}.nonResourceURLs[{k}]");
        if !u.starts_with('/') {
            let mut d = Diagnostic::error(
                url.pos,
                &upath,
                r,
                format!(
                    "Invalid value: {}: non-resource URL rules must begin with a '/' character",
                    quote(u)
                ),
            );
            d.suggestion = (!u.is_empty()).then(|| format!("write {}", quote(&format!("/{u}"))));
            diags.push(d);
        }
        // Everything but the last character (char-aware: never split UTF-8).
        let head = u.char_indices().last().map_or("", |(last, _)| &u[..last]);
        if head.contains('*') {
            let mut d = Diagnostic::error(
                url.pos,
                &upath,
                r,
                format!(
                    "Invalid value: {}: non-resource URL wildcards '*' must be the final character of the rule",
                    quote(u)
                ),
            );
            let prefix = &u[..u.find('*').unwrap_or(u.len())];
            d.suggestion = Some(format!(
                "a trailing '*' matches any suffix: {}",
                quote(&format!("{prefix}*"))
            ));
            diags.push(d);
        }
    }

    for gr in &rule.resources {
        let gpath = format!("{path}.resources[{}]", gr.index);
        let group = gr.group.value.as_str();
        if !group.is_empty() {
            let msgs = dns1123_subdomain_errors(group);
            if !msgs.is_empty() {
                let mut d = Diagnostic::error(
                    gr.group.pos,
                    format!("{gpath}.group"),
                    r,
                    format!("Invalid value: {}: {}", quote(group), msgs.join(",")),
                );
                d.suggestion = group_suggestion(group);
                diags.push(d);
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            let pos = gr.resource_names_pos.unwrap_or(gr.pos);
            let mut d = Diagnostic::error(
                pos,
                format!("{gpath}.resourceNames"),
                r,
                format!(
                    "Invalid value: {}: using resourceNames requires at least one resource",
                    quoted_list(&gr.resource_names)
                ),
            );
            d.suggestion =
                Some("add resources: [...] naming the resource these names belong to".to_string());
            diags.push(d);
        }
    }

    check_stages(&rule.omit_stages, &format!("{path}.omitStages"), r, diags);

    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        let pos = rule.non_resource_urls_pos.unwrap_or(rule.pos);
        let mut d = Diagnostic::error(
            pos,
            format!("{path}.nonResourceURLs"),
            r,
            format!(
                "Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
                quoted_list(&rule.non_resource_urls)
            ),
        );
        d.suggestion = Some(
            "split it into two rules: one with resources/namespaces, one with nonResourceURLs"
                .to_string(),
        );
        diags.push(d);
    }
}

fn group_suggestion(group: &str) -> Option<String> {
    if group == "*" {
        return Some(
            "audit policies have no group wildcard; omit resources to match every group, or list the groups"
                .to_string(),
        );
    }
    if let Some((g, _version)) = group.split_once('/')
        && dns1123_subdomain_errors(g).is_empty()
    {
        return Some(format!("drop the version: group: {}", quote(g)));
    }
    let lower = group.to_ascii_lowercase();
    if lower != group && dns1123_subdomain_errors(&lower).is_empty() {
        return Some(format!(
            "API groups are lower case: group: {}",
            quote(&lower)
        ));
    }
    None
}

/// `validation.IsDNS1123Subdomain` of apimachinery: its messages, or none.
pub(crate) fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if !value.split('.').all(label_ok) {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_string(),
        );
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::validate as validate_bytes;

    fn errors(src: &str) -> Vec<String> {
        validate_bytes("t.yaml", src.as_bytes())
            .errors()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.field, d.message))
            .collect()
    }

    const HEAD: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

    #[test]
    fn dns_subdomain() {
        assert!(dns1123_subdomain_errors("rbac.authorization.k8s.io").is_empty());
        assert!(dns1123_subdomain_errors("apps").is_empty());
        assert!(!dns1123_subdomain_errors("rbac.authorization.k8s.io/v1").is_empty());
        assert!(!dns1123_subdomain_errors("*").is_empty());
        assert!(!dns1123_subdomain_errors("Apps").is_empty());
        assert!(!dns1123_subdomain_errors("a..b").is_empty());
        assert!(!dns1123_subdomain_errors("-a").is_empty());
        assert!(!dns1123_subdomain_errors(&"a".repeat(254)).is_empty());
    }

    #[test]
    fn level_required_and_supported() {
        let e = errors(&format!("{HEAD}rules:\n- verbs: [get]\n"));
        assert_eq!(e, ["4:3: rules[0].level: Required value"]);
        let e = errors(&format!("{HEAD}rules:\n- level: metadata\n"));
        assert_eq!(
            e,
            [
                "4:10: rules[0].level: Unsupported value: \"metadata\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\""
            ]
        );
    }

    #[test]
    fn stages() {
        let e = errors(&format!(
            "{HEAD}omitStages: [RequestReceived, Bogus]\nrules:\n- level: None\n  omitStages: [Panik]\n"
        ));
        assert_eq!(
            e,
            [
                "3:31: omitStages[1]: Invalid value: \"Bogus\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic",
                "6:16: rules[0].omitStages[0]: Invalid value: \"Panik\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic",
            ]
        );
    }

    #[test]
    fn non_resource_urls() {
        let e = errors(&format!(
            "{HEAD}rules:\n- level: None\n  nonResourceURLs: [\"*\", /ok*, healthz, /a*b, \"\"]\n"
        ));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains(
            "nonResourceURLs[2]: Invalid value: \"healthz\": non-resource URL rules must begin"
        ));
        assert!(
            e[1].contains(
                "nonResourceURLs[3]: Invalid value: \"/a*b\": non-resource URL wildcards"
            )
        );
        assert!(e[2].contains(
            "nonResourceURLs[4]: Invalid value: \"\": non-resource URL rules must begin"
        ));
    }

    #[test]
    fn urls_with_resources_or_namespaces() {
        let e = errors(&format!(
            "{HEAD}rules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [/x]\n"
        ));
        assert_eq!(
            e,
            [
                "6:3: rules[0].nonResourceURLs: Invalid value: [\"/x\"]: rules cannot apply to both regular resources and non-resource URLs"
            ]
        );
    }

    #[test]
    fn groups_and_resource_names() {
        let e = errors(&format!(
            "{HEAD}rules:\n- level: None\n  resources:\n  - group: rbac.authorization.k8s.io/v1\n  - group: apps\n    resourceNames: [x]\n"
        ));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("6:12: rules[0].resources[0].group: Invalid value: \"rbac.authorization.k8s.io/v1\": a lowercase RFC 1123"));
        assert_eq!(
            e[1],
            "8:5: rules[0].resources[1].resourceNames: Invalid value: [\"x\"]: using resourceNames requires at least one resource"
        );
    }

    #[test]
    fn type_meta() {
        assert_eq!(
            errors("kind: Policy\nrules:\n- level: None\n")[0],
            "1:1: apiVersion: missing apiVersion: the apiserver refuses the policy (unknown group version field audit.k8s.io/__internal, Kind=Policy in policy)"
        );
        assert!(
            errors("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n")[0]
                .contains("removed in Kubernetes 1.24")
        );
        assert_eq!(
            errors("apiVersion: audit.k8s.io/v1\nkind: Pod\nrules:\n- level: None\n"),
            ["2:7: kind: Invalid value: \"Pod\": kind must be \"Policy\""]
        );
    }

    #[test]
    fn zero_rules() {
        assert_eq!(
            errors(&format!("{HEAD}rules: []\n")),
            ["3:1: rules: loaded illegal policy with 0 rules"]
        );
        assert_eq!(
            errors(HEAD),
            ["1:1: rules: loaded illegal policy with 0 rules"]
        );
    }

    #[test]
    fn valid_minimal_policy() {
        assert!(errors(&format!("{HEAD}rules:\n- level: Metadata\n")).is_empty());
    }
}
