//! Lints: policies the apiserver accepts but that do not do what they say.
//!
//! All are warnings (errors under `--strict`). They run on the rules as the
//! apiserver would load them (unknown fields dropped) and skip rules that
//! have errors of their own (`tainted`).
//!
//! * **Verbs.** Upstream never checks verbs; an unknown one never matches.
//!   The verb of an audit event is the request verb computed by the
//!   apiserver's `RequestInfoFactory`: for resource requests `get`, `list`,
//!   `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`
//!   (and `proxy` for the legacy `/proxy/` paths); for non-resource URLs the
//!   lower-cased HTTP method (`get`, `head`, `post`, `put`, `patch`,
//!   `delete`, `options`). RBAC-only verbs (`impersonate`, `bind`,
//!   `escalate`, `approve`, `sign`, `attest`, `use`) are checked by the
//!   authorizer inside a request but are never the request's own verb, so
//!   an audit rule naming them never matches. `*` is no wildcard for verbs.
//! * **Literal wildcards.** `users`, `userGroups` and `namespaces` are
//!   compared exactly; `prod-*` matches only a namespace named `prod-*`.
//! * **Resources.** A well-known resource listed under the wrong API group
//!   (e.g. `tokenreviews` in the core group) or a near-miss spelling
//!   (`pod`, `pods/logs`) never matches. Only built-in groups are checked.
//! * **Unreachable rules.** The first matching rule wins, so a rule whose
//!   every request is already matched by an earlier rule is dead. A rule
//!   with no users/userGroups/verbs/resources/namespaces/nonResourceURLs is
//!   a catch-all and makes every later rule dead. Coverage is computed
//!   exactly on each dimension (users, groups, verbs, namespaces, group and
//!   resource patterns with resourceNames, URL prefixes); when unsure it
//!   answers "not covered", so it never reports a live rule as dead. Past
//!   `MAX_PAIRWISE_RULES` rules (the check is quadratic) only catch-alls
//!   are looked for.
//! * **Sensitive resources (CIS 3.2.2).** Secrets, ConfigMaps and
//!   TokenReviews should be logged at Metadata at most (their bodies hold
//!   the secrets); `serviceaccounts/token` at Request at most (its response
//!   holds a token). First-match approximation: walking the rules in order,
//!   a rule "may match" such a resource when its resource part could match
//!   it, whatever its users, groups, verbs and namespaces; each rule that
//!   may match it at a higher level is reported; the walk stops at the
//!   first rule that matches every request for the resource (no users,
//!   groups, verbs, namespaces or resourceNames restriction). Dead rules
//!   are skipped. On the same walk, a `level: None` rule that may match
//!   Secrets for every user (no users/userGroups) is reported: CIS 3.2.2
//!   wants access to Secrets audited.
//! * **No catch-all.** Requests that match no rule are not logged at all.
//!   (Rules with errors count here: a catch-all with a misspelled level is
//!   reported for its level, not as missing.)
//! * **ResponseComplete omitted.** That stage is the only event of most
//!   requests; omitting it drops them.

use super::decode::{GroupResources, Policy, Rule, Spanned};
use super::{Diagnostic, quote};
use crate::suggest::closest;
use std::collections::{BTreeMap, HashSet};

/// Above this many rules, unreachable rules are found only behind
/// catch-alls (pairwise coverage is quadratic).
pub(crate) const MAX_PAIRWISE_RULES: usize = 2000;

/// Verbs of resource requests.
pub(crate) const RESOURCE_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
];
/// Verbs of non-resource requests: lower-cased HTTP methods.
pub(crate) const NON_RESOURCE_VERBS: &[&str] =
    &["get", "head", "post", "put", "patch", "delete", "options"];
/// Verbs RBAC checks inside a request; never the verb of a request.
pub(crate) const RBAC_ONLY_VERBS: &[&str] = &[
    "impersonate",
    "bind",
    "escalate",
    "approve",
    "sign",
    "attest",
    "use",
];

use super::eval::{self, Level};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Matches resource and non-resource requests.
    Any,
    /// Has resources or namespaces: resource requests only.
    Resource,
    /// Has nonResourceURLs only.
    NonResource,
}

fn scope(r: &Rule) -> Scope {
    if !r.resources.is_empty() || !r.namespaces.is_empty() {
        Scope::Resource
    } else if !r.non_resource_urls.is_empty() {
        Scope::NonResource
    } else {
        Scope::Any
    }
}

fn is_catch_all(r: &Rule) -> bool {
    r.users.is_empty() && r.user_groups.is_empty() && r.verbs.is_empty() && scope(r) == Scope::Any
}

fn level(r: &Rule) -> Option<Level> {
    r.level.as_ref().and_then(|l| Level::parse(&l.value))
}

pub(crate) fn lint(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    let live: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| r.is_map && !r.tainted)
        .collect();
    for r in &live {
        lint_verbs(r, diags);
        lint_literal_wildcards(r, diags);
        lint_resources(r, diags);
    }
    let dead = lint_unreachable(&live, diags);
    lint_sensitive(&live, &dead, diags);
    lint_catch_all(policy, diags);
    lint_stages(policy, &live, diags);
}

fn lint_verbs(r: &Rule, diags: &mut Vec<Diagnostic>) {
    let i = r.index;
    let sc = scope(r);
    for (k, v) in r.verbs.iter().enumerate() {
        let verb = v.value.as_str();
        let valid: &[&str] = match sc {
            Scope::Resource => RESOURCE_VERBS,
            Scope::NonResource => NON_RESOURCE_VERBS,
            Scope::Any => &[],
        };
        let known_any = RESOURCE_VERBS.contains(&verb) || NON_RESOURCE_VERBS.contains(&verb);
        let ok = if sc == Scope::Any {
            known_any
        } else {
            valid.contains(&verb)
        };
        if ok {
            continue;
        }
        let (why, suggestion) = if verb == "*" {
            (
                "audit policy verbs have no wildcard".to_string(),
                Some("omit verbs to match every verb".to_string()),
            )
        } else if RBAC_ONLY_VERBS.contains(&verb) {
            (
                "it is an RBAC authorization verb, never the verb of a request".to_string(),
                Some(
                    match verb {
                        "bind" | "escalate" => "changes to (Cluster)RoleBindings are audited as create, update, patch or delete",
                        "approve" | "sign" => "CSR approval is audited as an update of certificatesigningrequests/approval",
                        "impersonate" => "an impersonated request is audited with its own verb and an impersonatedUser field",
                        _ => "audit events carry the request's verb (get, list, create, update, …)",
                    }
                    .to_string(),
                ),
            )
        } else if sc == Scope::Resource && NON_RESOURCE_VERBS.contains(&verb) {
            let to = match verb {
                "post" => "create",
                "put" => "update",
                _ => "get",
            };
            (
                "resource requests carry API verbs (get, list, watch, create, update, patch, delete, deletecollection), not HTTP methods"
                    .to_string(),
                Some(format!("did you mean \"{to}\"?")),
            )
        } else if sc == Scope::NonResource && RESOURCE_VERBS.contains(&verb) {
            (
                "non-resource URL requests carry the lower-case HTTP method (get, head, post, put, patch, delete, options)"
                    .to_string(),
                None,
            )
        } else {
            let candidates: Vec<&str> = match sc {
                Scope::Any => RESOURCE_VERBS
                    .iter()
                    .chain(NON_RESOURCE_VERBS)
                    .copied()
                    .collect(),
                _ => valid.to_vec(),
            };
            (
                "unknown verb".to_string(),
                closest(verb, &candidates)
                    .map(|c| format!("did you mean \"{c}\"? verbs are case-sensitive")),
            )
        };
        let mut d = Diagnostic::warning(
            v.pos,
            format!("rules[{i}].verbs[{k}]"),
            Some(i),
            format!("verb {} never matches: {why}", quote(verb)),
        );
        d.suggestion = suggestion;
        diags.push(d);
    }
}

fn lint_literal_wildcards(r: &Rule, diags: &mut Vec<Diagnostic>) {
    let i = r.index;
    let fields: [(&str, &[Spanned<String>]); 3] = [
        ("users", &r.users),
        ("userGroups", &r.user_groups),
        ("namespaces", &r.namespaces),
    ];
    for (field, values) in fields {
        for (k, v) in values.iter().enumerate() {
            if !v.value.contains('*') {
                continue;
            }
            let value = v.value.as_str();
            let suggestion = if value == "*" {
                format!("omit {field} to match everyone")
            } else if field == "users" {
                match value
                    .strip_prefix("system:serviceaccount:")
                    .or_else(|| value.strip_prefix("system:serviceaccounts:"))
                {
                    Some("*") => {
                        "use userGroups: [\"system:serviceaccounts\"] for every service account"
                            .to_string()
                    }
                    Some(rest) if rest.ends_with(":*") => format!(
                        "use userGroups: [{}] for every service account of that namespace",
                        quote(&format!(
                            "system:serviceaccounts:{}",
                            rest.trim_end_matches(":*")
                        ))
                    ),
                    _ => "list the user names exactly".to_string(),
                }
            } else if field == "userGroups" && value.starts_with("system:serviceaccounts") {
                "system:serviceaccounts (all) and system:serviceaccounts:NAMESPACE are the service account groups"
                    .to_string()
            } else {
                format!("list the {field} exactly")
            };
            let mut d = Diagnostic::warning(
                v.pos,
                format!("rules[{i}].{field}[{k}]"),
                Some(i),
                format!(
                    "{} is compared literally: audit policy {field} have no wildcards",
                    quote(value)
                ),
            );
            d.suggestion = Some(suggestion);
            diags.push(d);
        }
    }
}

/// Built-in API groups and their resources (Kubernetes 1.24–1.36, plus
/// the old `extensions` group). Used only to catch wrong groups and typos.
const BUILTIN: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "bindings",
            "componentstatuses",
            "configmaps",
            "endpoints",
            "events",
            "limitranges",
            "namespaces",
            "nodes",
            "persistentvolumeclaims",
            "persistentvolumes",
            "pods",
            "podtemplates",
            "replicationcontrollers",
            "resourcequotas",
            "secrets",
            "serviceaccounts",
            "services",
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
        ],
    ),
    ("apiextensions.k8s.io", &["customresourcedefinitions"]),
    ("apiregistration.k8s.io", &["apiservices"]),
    (
        "apps",
        &[
            "controllerrevisions",
            "daemonsets",
            "deployments",
            "replicasets",
            "statefulsets",
        ],
    ),
    (
        "authentication.k8s.io",
        &["tokenreviews", "selfsubjectreviews"],
    ),
    (
        "authorization.k8s.io",
        &[
            "localsubjectaccessreviews",
            "selfsubjectaccessreviews",
            "selfsubjectrulesreviews",
            "subjectaccessreviews",
        ],
    ),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("batch", &["cronjobs", "jobs"]),
    (
        "certificates.k8s.io",
        &[
            "certificatesigningrequests",
            "clustertrustbundles",
            "podcertificaterequests",
        ],
    ),
    ("coordination.k8s.io", &["leases", "leasecandidates"]),
    ("discovery.k8s.io", &["endpointslices"]),
    ("events.k8s.io", &["events"]),
    (
        "extensions",
        &[
            "daemonsets",
            "deployments",
            "ingresses",
            "networkpolicies",
            "podsecuritypolicies",
            "replicasets",
        ],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["flowschemas", "prioritylevelconfigurations"],
    ),
    (
        "networking.k8s.io",
        &[
            "ingressclasses",
            "ingresses",
            "ipaddresses",
            "networkpolicies",
            "servicecidrs",
        ],
    ),
    ("node.k8s.io", &["runtimeclasses"]),
    ("policy", &["poddisruptionbudgets", "podsecuritypolicies"]),
    (
        "rbac.authorization.k8s.io",
        &[
            "clusterrolebindings",
            "clusterroles",
            "rolebindings",
            "roles",
        ],
    ),
    (
        "resource.k8s.io",
        &[
            "deviceclasses",
            "resourceclaims",
            "resourceclaimtemplates",
            "resourceslices",
        ],
    ),
    ("scheduling.k8s.io", &["priorityclasses"]),
    (
        "storage.k8s.io",
        &[
            "csidrivers",
            "csinodes",
            "csistoragecapacities",
            "storageclasses",
            "volumeattachments",
            "volumeattributesclasses",
        ],
    ),
];

/// Known subresources of the resources people audit most.
const SUBRESOURCES: &[(&str, &str, &[&str])] = &[
    (
        "",
        "pods",
        &[
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status",
        ],
    ),
    ("", "nodes", &["proxy", "status"]),
    ("", "services", &["proxy", "status"]),
    ("", "namespaces", &["finalize", "status"]),
    ("", "serviceaccounts", &["token"]),
    ("", "persistentvolumeclaims", &["status"]),
    ("", "persistentvolumes", &["status"]),
    ("", "replicationcontrollers", &["scale", "status"]),
    ("", "resourcequotas", &["status"]),
    ("apps", "deployments", &["scale", "status"]),
    ("apps", "replicasets", &["scale", "status"]),
    ("apps", "statefulsets", &["scale", "status"]),
    ("apps", "daemonsets", &["status"]),
    ("batch", "jobs", &["status"]),
    ("batch", "cronjobs", &["status"]),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        &["approval", "status"],
    ),
];

fn group_label(g: &str) -> String {
    if g.is_empty() {
        "the core API group (\"\")".to_string()
    } else {
        format!("API group \"{g}\"")
    }
}

fn lint_resources(r: &Rule, diags: &mut Vec<Diagnostic>) {
    let i = r.index;
    for gr in &r.resources {
        let group = gr.group.value.as_str();
        let Some((_, known)) = BUILTIN.iter().find(|(g, _)| *g == group) else {
            continue;
        };
        for (k, res) in gr.resources.iter().enumerate() {
            let (base, sub) = match res.value.split_once('/') {
                Some((b, s)) => (b, Some(s)),
                None => (res.value.as_str(), None),
            };
            if base == "*" {
                continue;
            }
            let field = format!("rules[{i}].resources[{}].resources[{k}]", gr.index);
            if !known.contains(&base) {
                let mut elsewhere: Vec<&str> = BUILTIN
                    .iter()
                    .filter(|(_, rs)| rs.contains(&base))
                    .map(|(g, _)| *g)
                    .collect();
                // The old `extensions` group only matters when nothing else serves it.
                if elsewhere.len() > 1 {
                    elsewhere.retain(|g| *g != "extensions");
                }
                if !elsewhere.is_empty() {
                    let groups: Vec<String> =
                        elsewhere.iter().map(|g| format!("\"{g}\"")).collect();
                    let mut d = Diagnostic::warning(
                        res.pos,
                        field,
                        Some(i),
                        format!(
                            "{} is not in {}, so this never matches; it is served by group {}",
                            quote(base),
                            group_label(group),
                            groups.join(" or ")
                        ),
                    );
                    d.suggestion = Some(format!("list it under group: \"{}\"", elsewhere[0]));
                    diags.push(d);
                } else if let Some(c) = closest(base, known) {
                    let mut d = Diagnostic::warning(
                        res.pos,
                        field,
                        Some(i),
                        format!(
                            "unknown resource {} in {}, so this never matches",
                            quote(base),
                            group_label(group)
                        ),
                    );
                    let fixed = match sub {
                        Some(s) => format!("{c}/{s}"),
                        None => c.to_string(),
                    };
                    d.suggestion = Some(format!(
                        "did you mean {}? resources are lower-case plurals",
                        quote(&fixed)
                    ));
                    diags.push(d);
                }
                continue;
            }
            let Some(sub) = sub else { continue };
            if sub == "*" {
                continue;
            }
            let Some((_, _, subs)) = SUBRESOURCES
                .iter()
                .find(|(g, b, _)| *g == group && *b == base)
            else {
                continue;
            };
            if subs.contains(&sub) {
                continue;
            }
            if let Some(c) = closest(sub, subs) {
                let mut d = Diagnostic::warning(
                    res.pos,
                    field,
                    Some(i),
                    format!(
                        "unknown subresource {}, so this never matches",
                        quote(&res.value)
                    ),
                );
                d.suggestion = Some(format!("did you mean \"{base}/{c}\"?"));
                diags.push(d);
            }
        }
    }
}

/// `b ⊆ a` for an exact-match list, where an empty list means "any".
fn list_covers(a: &[Spanned<String>], b: &[Spanned<String>]) -> bool {
    a.is_empty() || (!b.is_empty() && b.iter().all(|x| a.iter().any(|y| y.value == x.value)))
}

/// Does resource pattern `a` match every request that pattern `b` matches?
fn res_pattern_covers(a: &str, b: &str) -> bool {
    if a == "*" || a == b {
        return true;
    }
    if let Some(sub) = a.strip_prefix("*/") {
        // `*/sub` matches any resource's `sub`.
        return b
            .split_once('/')
            .is_some_and(|(base, s)| base != "*" && s == sub);
    }
    if let Some(base) = a.strip_suffix("/*") {
        // `base/*` matches base itself and all its subresources.
        let b_base = b.split_once('/').map_or(b, |(x, _)| x);
        return b_base == base;
    }
    false
}

fn names_cover(a: &GroupResources, b: &GroupResources) -> bool {
    list_covers(&a.resource_names, &b.resource_names)
}

fn resources_cover(a: &Rule, b: &Rule) -> bool {
    if a.resources.is_empty() {
        return true;
    }
    if b.resources.is_empty() {
        return false;
    }
    b.resources.iter().all(|gb| {
        let same_group = || {
            a.resources
                .iter()
                .filter(|ga| ga.group.value == gb.group.value)
        };
        if gb.resources.is_empty() {
            return same_group().any(|ga| ga.resources.is_empty());
        }
        gb.resources.iter().all(|rb| {
            same_group().any(|ga| {
                ga.resources.is_empty()
                    || (names_cover(ga, gb)
                        && ga
                            .resources
                            .iter()
                            .any(|ra| res_pattern_covers(&ra.value, &rb.value)))
            })
        })
    })
}

fn url_covers(a: &str, b: &str) -> bool {
    a == "*"
        || a == b
        || (a.ends_with('*') && b.trim_end_matches('*').starts_with(a.trim_end_matches('*')))
}

/// Does every request matched by `b` match `a`?
fn covers(a: &Rule, b: &Rule) -> bool {
    if !list_covers(&a.users, &b.users)
        || !list_covers(&a.user_groups, &b.user_groups)
        || !list_covers(&a.verbs, &b.verbs)
    {
        return false;
    }
    match scope(a) {
        Scope::Any => true,
        Scope::Resource => {
            scope(b) == Scope::Resource
                && list_covers(&a.namespaces, &b.namespaces)
                && resources_cover(a, b)
        }
        Scope::NonResource => {
            scope(b) == Scope::NonResource
                && b.non_resource_urls.iter().all(|ub| {
                    a.non_resource_urls
                        .iter()
                        .any(|ua| url_covers(&ua.value, &ub.value))
                })
        }
    }
}

/// Reports dead rules; returns their indexes.
fn lint_unreachable(live: &[&Rule], diags: &mut Vec<Diagnostic>) -> HashSet<usize> {
    let mut dead = HashSet::new();
    // Pairwise coverage is quadratic; past MAX_PAIRWISE_RULES only the
    // catch-alls are looked for (real policies have tens of rules).
    let pairwise = live.len() <= MAX_PAIRWISE_RULES;
    let mut first_catch_all: Option<&Rule> = None;
    for (jpos, b) in live.iter().enumerate() {
        let found = if pairwise {
            live[..jpos].iter().copied().find(|a| covers(a, b))
        } else {
            first_catch_all
        };
        if first_catch_all.is_none() && is_catch_all(b) {
            first_catch_all = Some(b);
        }
        let Some(a) = found else {
            continue;
        };
        let message = if is_catch_all(a) {
            format!(
                "this rule is never used: rules[{}] before it matches every request",
                a.index
            )
        } else {
            format!(
                "this rule is never used: every request it matches is matched first by rules[{}]",
                a.index
            )
        };
        let mut d =
            Diagnostic::warning(b.pos, format!("rules[{}]", b.index), Some(b.index), message);
        d.suggestion = Some(format!(
            "the first matching rule wins: move it before rules[{}] or delete it",
            a.index
        ));
        diags.push(d);
        dead.insert(b.index);
    }
    dead
}

struct Sensitive {
    label: &'static str,
    /// A None rule dropping it for everyone is worth a warning.
    unaudited_matters: bool,
    group: &'static str,
    resource: &'static str,
    sub: Option<&'static str>,
    max: Level,
}

const SENSITIVE: &[Sensitive] = &[
    Sensitive {
        label: "Secrets",
        unaudited_matters: true,
        group: "",
        resource: "secrets",
        sub: None,
        max: Level::Metadata,
    },
    Sensitive {
        label: "ConfigMaps",
        unaudited_matters: false,
        group: "",
        resource: "configmaps",
        sub: None,
        max: Level::Metadata,
    },
    Sensitive {
        label: "TokenReviews",
        unaudited_matters: false,
        group: "authentication.k8s.io",
        resource: "tokenreviews",
        sub: None,
        max: Level::Metadata,
    },
    Sensitive {
        label: "service account tokens (serviceaccounts/token)",
        unaudited_matters: false,
        group: "",
        resource: "serviceaccounts",
        sub: Some("token"),
        max: Level::Request,
    },
];

fn pattern_matches(res: &str, t: &Sensitive) -> bool {
    eval::resource_pattern_matches(res, t.resource, t.sub.unwrap_or(""))
}

/// (may match some request on `t`, matches every request on `t`)
fn sensitive_match(r: &Rule, t: &Sensitive) -> (bool, bool) {
    if scope(r) == Scope::NonResource {
        return (false, false);
    }
    let unrestricted = r.users.is_empty()
        && r.user_groups.is_empty()
        && r.verbs.is_empty()
        && r.namespaces.is_empty();
    if r.resources.is_empty() {
        return (true, unrestricted);
    }
    let mut may = false;
    let mut all = false;
    for gr in r.resources.iter().filter(|gr| gr.group.value == t.group) {
        if gr.resources.is_empty() {
            may = true;
            all = true;
        } else if gr
            .resources
            .iter()
            .any(|res| pattern_matches(&res.value, t))
        {
            may = true;
            all |= gr.resource_names.is_empty();
        }
    }
    (may, may && all && unrestricted)
}

fn lint_sensitive(live: &[&Rule], dead: &HashSet<usize>, diags: &mut Vec<Diagnostic>) {
    // (rule, max) -> (level, labels), in rule order.
    let mut found: BTreeMap<(usize, Level), (Level, Vec<&str>)> = BTreeMap::new();
    // (rule, label): rules dropping every user's requests on it.
    let mut dropped: Vec<(usize, &str)> = Vec::new();
    for t in SENSITIVE {
        for r in live.iter().filter(|r| !dead.contains(&r.index)) {
            let Some(lvl) = level(r) else { continue };
            let (may, all) = sensitive_match(r, t);
            if may
                && lvl == Level::None
                && t.unaudited_matters
                && r.users.is_empty()
                && r.user_groups.is_empty()
            {
                dropped.push((r.index, t.label));
            }
            if may && lvl > t.max {
                found
                    .entry((r.index, t.max))
                    .or_insert_with(|| (lvl, Vec::new()))
                    .1
                    .push(t.label);
            }
            if all {
                break;
            }
        }
    }
    for (i, label) in dropped {
        let Ok(k) = live.binary_search_by_key(&i, |r| r.index) else {
            continue;
        };
        let r = live[k];
        let pos = r.level.as_ref().map_or(r.pos, |l| l.pos);
        // Say what is lost: reads, changes, or the verbs the rule lists.
        const READS: [&str; 3] = ["get", "list", "watch"];
        let verbs: Vec<&str> = r.verbs.iter().map(|v| v.value.as_str()).collect();
        let what = if verbs.is_empty() {
            "reading or changing them goes unaudited".to_string()
        } else if verbs.iter().all(|v| READS.contains(v)) {
            format!("reading them ({}) goes unaudited", verbs.join(", "))
        } else if verbs.iter().all(|v| !READS.contains(v)) {
            format!("changing them ({}) goes unaudited", verbs.join(", "))
        } else {
            format!("{} on them go unaudited", verbs.join(", "))
        };
        let mut d = Diagnostic::warning(
            pos,
            format!("rules[{i}].level"),
            Some(i),
            format!("this rule drops requests on {label} for every user (level None): {what}"),
        );
        d.suggestion = Some(format!(
            "CIS 3.2.2: audit access to {label} at Metadata; put a Metadata rule for them before rules[{i}]"
        ));
        diags.push(d);
    }
    for ((i, max), (lvl, labels)) in found {
        let Ok(k) = live.binary_search_by_key(&i, |r| r.index) else {
            continue;
        };
        let r = live[k];
        let pos = r.level.as_ref().map_or(r.pos, |l| l.pos);
        let what = match labels.as_slice() {
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => continue,
        };
        let (why, fix) = if max == Level::Metadata {
            (
                "which records their contents in the audit log",
                format!(
                    "CIS 3.2.2: log them at Metadata at most; put a Metadata rule for them before rules[{i}]"
                ),
            )
        } else {
            (
                "which records the issued token in the audit log",
                format!("log them at Request at most; put a rule for them before rules[{i}]"),
            )
        };
        let mut d = Diagnostic::warning(
            pos,
            format!("rules[{i}].level"),
            Some(i),
            format!("this rule can log {what} at {}, {why}", lvl.name()),
        );
        d.suggestion = Some(fix);
        diags.push(d);
    }
}

fn lint_catch_all(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    // Rules with errors count too: a catch-all with a misspelled level is
    // reported as such, not as a missing catch-all.
    let rules: Vec<&Rule> = policy.rules.iter().filter(|r| r.is_map).collect();
    if rules.is_empty() || rules.iter().any(|r| is_catch_all(r)) {
        return;
    }
    let pos = policy.rules_pos.unwrap_or(policy.pos);
    let mut d = Diagnostic::warning(
        pos,
        "rules",
        None,
        "no catch-all rule at the end: requests that match no rule are not logged at all",
    );
    d.suggestion =
        Some("end the rules with a rule that has only a level, e.g. - level: Metadata".to_string());
    diags.push(d);
}

fn lint_stages(policy: &Policy, live: &[&Rule], diags: &mut Vec<Diagnostic>) {
    let message = "omitting ResponseComplete drops the only event of most requests (only long-running requests such as watches have a ResponseStarted stage)";
    for (k, s) in policy.omit_stages.iter().enumerate() {
        if s.value == "ResponseComplete" {
            let mut d = Diagnostic::warning(s.pos, format!("omitStages[{k}]"), None, message);
            d.suggestion = Some("omit RequestReceived only".to_string());
            diags.push(d);
        }
    }
    for r in live {
        if level(r) == Some(Level::None) {
            continue;
        }
        for (k, s) in r.omit_stages.iter().enumerate() {
            if s.value == "ResponseComplete" {
                let mut d = Diagnostic::warning(
                    s.pos,
                    format!("rules[{}].omitStages[{k}]", r.index),
                    Some(r.index),
                    message,
                );
                d.suggestion = Some("omit RequestReceived only".to_string());
                diags.push(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::{Severity, validate};

    const HEAD: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n";

    /// Warnings of a policy made of HEAD + `rules`, as "LINE:COL: FIELD: MESSAGE".
    fn warnings(rules: &str) -> Vec<String> {
        let report = validate("t.yaml", format!("{HEAD}{rules}").as_bytes());
        let errors: Vec<_> = report.errors().collect();
        assert!(errors.is_empty(), "unexpected errors: {errors:?}");
        report
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.field, d.message))
            .collect()
    }

    fn suggestions(rules: &str) -> Vec<String> {
        validate("t.yaml", format!("{HEAD}{rules}").as_bytes())
            .diagnostics
            .into_iter()
            .filter_map(|d| d.suggestion)
            .collect()
    }

    #[test]
    fn clean_policy_has_no_warnings() {
        assert!(
            warnings("- level: None\n  nonResourceURLs: [/healthz*]\n- level: Metadata\n")
                .is_empty()
        );
    }

    #[test]
    fn unknown_verbs() {
        let w = warnings(
            "- level: Request\n  verbs: [gets, \"*\", bind, GET]\n  resources: [{group: \"\", resources: [pods]}]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(
            w[0].starts_with("5:11: rules[0].verbs[0]: verb \"gets\" never matches: unknown verb"),
            "{w:?}"
        );
        assert!(w[1].contains("verb \"*\" never matches: audit policy verbs have no wildcard"));
        assert!(w[2].contains("verb \"bind\" never matches: it is an RBAC authorization verb"));
        assert!(w[3].contains("verb \"GET\" never matches"));
        let s = suggestions(
            "- level: Request\n  verbs: [gets, GET]\n  resources: [{group: \"\", resources: [pods]}]\n- level: Metadata\n",
        );
        assert_eq!(s[0], "did you mean \"get\"? verbs are case-sensitive");
        assert_eq!(s[1], "did you mean \"get\"? verbs are case-sensitive");
    }

    #[test]
    fn http_verbs_fit_only_non_resource_rules() {
        assert!(
            warnings(
                "- level: None\n  verbs: [post, head]\n  nonResourceURLs: [/x]\n- level: Metadata\n"
            )
            .is_empty()
        );
        let w = warnings(
            "- level: None\n  verbs: [post]\n  resources: [{group: apps}]\n- level: Metadata\n",
        );
        assert!(w[0].contains("resource requests carry API verbs"), "{w:?}");
        let w = warnings(
            "- level: None\n  verbs: [list]\n  nonResourceURLs: [/x]\n- level: Metadata\n",
        );
        assert!(
            w[0].contains("non-resource URL requests carry the lower-case HTTP method"),
            "{w:?}"
        );
        // A rule without resources or URLs applies to both kinds.
        assert!(
            warnings("- level: Metadata\n  verbs: [post, list]\n- level: Metadata\n").is_empty()
        );
    }

    #[test]
    fn literal_wildcards() {
        let w = warnings(
            "- level: None\n  users: [\"system:serviceaccount:kube-system:*\"]\n- level: Metadata\n  namespaces: [\"prod-*\"]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with(
            "5:11: rules[0].users[0]: \"system:serviceaccount:kube-system:*\" is compared literally"
        ));
        assert!(w[1].starts_with("7:16: rules[1].namespaces[0]: \"prod-*\" is compared literally"));
        let s = suggestions(
            "- level: None\n  users: [\"system:serviceaccount:kube-system:*\"]\n- level: Metadata\n",
        );
        assert_eq!(
            s,
            [
                "use userGroups: [\"system:serviceaccounts:kube-system\"] for every service account of that namespace"
            ]
        );
    }

    #[test]
    fn resources_in_the_wrong_group_or_misspelled() {
        let w = warnings(
            "- level: None\n  resources:\n  - group: \"\"\n    resources: [tokenreviews, pod, pods/logs, pods/exec, \"*/status\", mycrds]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("\"tokenreviews\" is not in the core API group (\"\"), so this never matches; it is served by group \"authentication.k8s.io\""), "{w:?}");
        assert!(w[1].contains("unknown resource \"pod\" in the core API group"));
        assert!(w[2].contains("unknown subresource \"pods/logs\""));
        let s = suggestions(
            "- level: None\n  resources:\n  - group: \"\"\n    resources: [pod, pods/logs]\n- level: Metadata\n",
        );
        assert!(s[0].starts_with("did you mean \"pods\"?"), "{s:?}");
        assert_eq!(s[1], "did you mean \"pods/log\"?");
        // Unknown groups (CRDs) are not checked.
        assert!(warnings("- level: None\n  resources: [{group: example.com, resources: [pod]}]\n- level: Metadata\n").is_empty());
    }

    #[test]
    fn catch_all_shadows_everything_after() {
        let w = warnings("- level: Metadata\n- level: None\n  users: [a]\n- level: None\n");
        assert_eq!(
            w,
            [
                "5:3: rules[1]: this rule is never used: rules[0] before it matches every request",
                "7:3: rules[2]: this rule is never used: rules[0] before it matches every request",
            ]
        );
    }

    #[test]
    fn partial_coverage_is_detected_exactly() {
        // users ⊆, verbs ⊆, group/resource covered by a wildcard.
        let w = warnings(
            "- level: None\n  users: [a, b]\n  resources: [{group: \"\", resources: [\"*\"]}]\n\
             - level: Request\n  users: [a]\n  verbs: [get]\n  resources: [{group: \"\", resources: [pods, pods/log]}]\n\
             - level: Request\n  users: [c]\n  resources: [{group: \"\", resources: [pods]}]\n\
             - level: Metadata\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("7:3: rules[1]: this rule is never used: every request it matches is matched first by rules[0]"));
        // resourceNames narrow the earlier rule: not covered.
        let w = warnings(
            "- level: None\n  resources: [{group: \"\", resources: [pods], resourceNames: [x]}]\n\
             - level: Request\n  resources: [{group: \"\", resources: [pods]}]\n- level: Metadata\n",
        );
        assert!(w.is_empty(), "{w:?}");
        // URL prefixes.
        let w = warnings(
            "- level: None\n  nonResourceURLs: [/health*]\n- level: None\n  nonResourceURLs: [/healthz*, /healthy]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        // `pods/*` covers pods and its subresources.
        let w = warnings(
            "- level: None\n  resources: [{group: \"\", resources: [pods/*]}]\n- level: None\n  resources: [{group: \"\", resources: [pods, pods/exec]}]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        // A namespace-restricted rule does not cover an unrestricted one.
        let w = warnings(
            "- level: Metadata\n  namespaces: [a]\n- level: None\n  resources: [{group: apps}]\n- level: Metadata\n",
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn sensitive_resources_above_metadata() {
        let w = warnings(
            "- level: RequestResponse\n  verbs: [create]\n  resources: [{group: \"\", resources: [secrets]}]\n- level: Metadata\n",
        );
        assert_eq!(
            w,
            [
                "4:10: rules[0].level: this rule can log Secrets at RequestResponse, which records their contents in the audit log"
            ]
        );
        // A Metadata rule for them first makes the later broad rule safe.
        let w = warnings(
            "- level: Metadata\n  resources:\n  - {group: \"\", resources: [secrets, configmaps, serviceaccounts/token]}\n  - {group: authentication.k8s.io, resources: [tokenreviews]}\n\
             - level: RequestResponse\n  resources: [{group: \"\"}, {group: authentication.k8s.io}]\n- level: Metadata\n",
        );
        assert!(w.is_empty(), "{w:?}");
        // A user-restricted Metadata rule does not stop the walk.
        let w = warnings(
            "- level: Metadata\n  users: [a]\n  resources: [{group: \"\", resources: [secrets]}]\n- level: Request\n",
        );
        assert_eq!(
            w,
            [
                "7:10: rules[1].level: this rule can log Secrets, ConfigMaps and TokenReviews at Request, which records their contents in the audit log"
            ]
        );
        // TokenRequest at Request is fine, at RequestResponse it is not.
        let w = warnings(
            "- level: Metadata\n  resources: [{group: \"\", resources: [secrets, configmaps]}]\n- level: Request\n  resources: [{group: \"\", resources: [serviceaccounts/token]}]\n- level: Metadata\n",
        );
        assert!(w.is_empty(), "{w:?}");
        let w = warnings(
            "- level: RequestResponse\n  resources: [{group: \"\", resources: [serviceaccounts/*]}]\n- level: Metadata\n",
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("service account tokens (serviceaccounts/token) at RequestResponse, which records the issued token"));
    }

    #[test]
    fn secrets_dropped_for_everyone() {
        let w = warnings("- level: None\n  verbs: [get, list, watch]\n- level: Metadata\n");
        assert_eq!(
            w,
            [
                "4:10: rules[0].level: this rule drops requests on Secrets for every user (level None): reading them (get, list, watch) goes unaudited"
            ]
        );
        assert_eq!(
            warnings("- level: None\n  verbs: [delete]\n- level: Metadata\n"),
            [
                "4:10: rules[0].level: this rule drops requests on Secrets for every user (level None): changing them (delete) goes unaudited"
            ]
        );
        assert_eq!(
            warnings(
                "- level: None\n  resources: [{group: \"\", resources: [secrets]}]\n- level: Metadata\n"
            ),
            [
                "4:10: rules[0].level: this rule drops requests on Secrets for every user (level None): reading or changing them goes unaudited"
            ]
        );
        // Restricted to some users: a deliberate exception, not reported.
        assert!(warnings("- level: None\n  users: [a]\n- level: Metadata\n").is_empty());
        // After an unconditional Metadata rule for Secrets: fine.
        assert!(
            warnings("- level: Metadata\n  resources: [{group: \"\", resources: [secrets]}]\n- level: None\n  verbs: [get]\n- level: Metadata\n")
                .is_empty()
        );
    }

    #[test]
    fn catch_all_with_a_bad_level_still_counts() {
        let report = validate(
            "t.yaml",
            format!("{HEAD}- level: None\n  users: [a]\n- level: metadata\n").as_bytes(),
        );
        assert_eq!(
            report.warnings().count(),
            0,
            "{}",
            report.render_text(false)
        );
    }

    #[test]
    fn missing_catch_all() {
        let w = warnings("- level: None\n  users: [a]\n");
        assert_eq!(
            w,
            [
                "3:1: rules: no catch-all rule at the end: requests that match no rule are not logged at all"
            ]
        );
    }

    #[test]
    fn omitting_response_complete() {
        let report = validate("t.yaml", b"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseComplete]\nrules:\n- level: Metadata\n");
        let w: Vec<_> = report.warnings().map(|d| d.field.clone()).collect();
        assert_eq!(w, ["omitStages[0]"]);
        assert!(
            report
                .diagnostics
                .iter()
                .all(|d| d.severity == Severity::Warning)
        );
    }

    #[test]
    fn tainted_rules_are_not_linted() {
        let report = validate(
            "t.yaml",
            format!("{HEAD}- level: Metadata\n  verbs: delete\n- level: Metadata\n").as_bytes(),
        );
        // The type error only; rules[0] is not taken for a catch-all.
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
    }
}
