//! A request kaudit-node can send without credentials that the policy
//! records: the proof that the new apiserver's audit pipeline writes, on a
//! node whose own traffic the policy may record none of.
//!
//! kube-apiserver audits requests that fail authentication or
//! authorization too, and evaluates the policy on them like on any other:
//!
//! * **401** (anonymous auth off, or a token it cannot verify): one event at
//!   stage `ResponseStarted`, with no user (`"user":{}`), so rules naming
//!   users or groups never match (`WithFailedAuthenticationAudit`);
//! * **403** (anonymous auth on): the user is `system:anonymous` in group
//!   `system:unauthenticated`, with events at `RequestReceived` and
//!   `ResponseComplete` (`WithAudit`).
//!
//! The candidates come from the policy's own rules, in order: for each rule
//! a request it matches (its verbs, resources, namespaces, URLs), then the
//! whole policy decides what that request gets (an earlier rule may
//! shadow). Every probe names `kaudit-node-probe-TOKEN` in its object name
//! or URL, reads where it can, and targets an object that does not exist,
//! so even a server that authorized it would change nothing.

use super::decode::{Policy, Rule};
use super::eval::{self, Level, Request, Target, User};

/// Who the apiserver takes an unauthenticated request for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Caller {
    /// Anonymous auth off: 401, no user, stage ResponseStarted.
    Unauthenticated,
    /// Anonymous auth on: 403 as system:anonymous.
    Anonymous,
}

const ANONYMOUS: &str = "system:anonymous";
const ANONYMOUS_GROUPS: [&str; 1] = ["system:unauthenticated"];

impl Caller {
    fn user(self) -> Option<User<'static>> {
        match self {
            Caller::Unauthenticated => None,
            Caller::Anonymous => Some(User {
                name: ANONYMOUS,
                groups: &ANONYMOUS_GROUPS,
            }),
        }
    }

    /// The stages its events are written at.
    fn stages(self) -> &'static [&'static str] {
        match self {
            Caller::Unauthenticated => &["ResponseStarted"],
            Caller::Anonymous => &["RequestReceived", "ResponseComplete"],
        }
    }

    /// The HTTP status it gets for a request it may not make.
    pub fn status(self) -> u16 {
        match self {
            Caller::Unauthenticated => 401,
            Caller::Anonymous => 403,
        }
    }
}

/// One probe request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    pub caller: Caller,
    pub method: &'static str,
    /// Path and query, with the marker in it.
    pub path: String,
    /// The level the policy records it at, and the rule (0-based).
    pub level: &'static str,
    pub rule: usize,
}

impl Probe {
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({}, recorded at {} by rule {})",
            self.method,
            self.path,
            match self.caller {
                Caller::Unauthenticated => "unauthenticated, 401",
                Caller::Anonymous => "as system:anonymous, 403",
            },
            self.level,
            self.rule + 1
        )
    }
}

/// A request to try: its target and how it is sent.
struct Candidate {
    method: &'static str,
    path: String,
    verb: String,
    group: String,
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    non_resource: bool,
}

impl Candidate {
    fn request(&self, caller: Caller) -> Request<'_> {
        Request {
            user: caller.user(),
            verb: &self.verb,
            target: if self.non_resource {
                Target::NonResource { path: &self.path }
            } else {
                Target::Resource {
                    group: &self.group,
                    resource: &self.resource,
                    subresource: &self.subresource,
                    namespace: &self.namespace,
                    name: &self.name,
                }
            },
        }
    }
}

/// Verbs in the order probes prefer them: reads first.
const VERB_ORDER: [&str; 8] = [
    "get",
    "list",
    "watch",
    "delete",
    "patch",
    "update",
    "create",
    "deletecollection",
];

fn default_resource(group: &str) -> &'static str {
    match group {
        "" => "pods",
        "rbac.authorization.k8s.io" => "clusterroles",
        "apps" => "deployments",
        _ => "kaudit-node-probes",
    }
}

/// The resource and subresource a `resources` pattern stands for.
fn from_pattern(pattern: &str, group: &str) -> (String, String) {
    if pattern == "*" {
        return (default_resource(group).into(), String::new());
    }
    match pattern.split_once('/') {
        Some(("*", sub)) => (default_resource(group).into(), sub.into()),
        Some((res, "*")) => (res.into(), String::new()),
        Some((res, sub)) => (res.into(), sub.into()),
        None => (pattern.into(), String::new()),
    }
}

fn resource_path(c: &Candidate, with_name: bool) -> String {
    let mut p = if c.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}/v1", c.group)
    };
    if !c.namespace.is_empty() {
        p.push_str(&format!("/namespaces/{}", c.namespace));
    }
    p.push('/');
    p.push_str(&c.resource);
    if with_name {
        p.push('/');
        p.push_str(&c.name);
        if !c.subresource.is_empty() {
            p.push('/');
            p.push_str(&c.subresource);
        }
    }
    p
}

/// The HTTP form of a resource request with `verb` (`RequestInfoFactory`
/// reads it back to the same verb), or `None` when it has no such form
/// (a collection verb on a subresource).
fn resource_candidate(
    verb: &str,
    group: &str,
    (resource, subresource): (String, String),
    namespace: &str,
    name: &str,
    marker: &str,
) -> Option<Candidate> {
    let mut c = Candidate {
        method: "GET",
        path: String::new(),
        verb: verb.to_string(),
        group: group.to_string(),
        resource,
        subresource,
        namespace: namespace.to_string(),
        name: name.to_string(),
        non_resource: false,
    };
    let collection = matches!(verb, "list" | "watch" | "create" | "deletecollection");
    if collection && !c.subresource.is_empty() && verb != "create" {
        return None;
    }
    let by_field = format!("fieldSelector=metadata.name%3D{marker}");
    let (method, path) = match verb {
        "get" => ("GET", resource_path(&c, true)),
        "list" => ("GET", format!("{}?{by_field}", resource_path(&c, false))),
        "watch" => (
            "GET",
            format!(
                "{}?watch=true&timeoutSeconds=1&{by_field}",
                resource_path(&c, false)
            ),
        ),
        "delete" => ("DELETE", resource_path(&c, true)),
        "patch" => ("PATCH", resource_path(&c, true)),
        "update" => ("PUT", resource_path(&c, true)),
        // A subresource is created under its object (pods/NAME/exec).
        "create" if !c.subresource.is_empty() => {
            ("POST", format!("{}?command=true", resource_path(&c, true)))
        }
        "create" => (
            "POST",
            format!("{}?fieldManager={marker}", resource_path(&c, false)),
        ),
        "deletecollection" => ("DELETE", format!("{}?{by_field}", resource_path(&c, false))),
        _ => return None,
    };
    if collection && verb != "create" || (verb == "create" && c.subresource.is_empty()) {
        c.name.clear();
    }
    c.method = method;
    c.path = path;
    Some(c)
}

fn non_resource_candidate(verb: &str, spec: &str, marker: &str) -> Option<Candidate> {
    let method = match verb {
        "get" => "GET",
        "post" => "POST",
        "put" => "PUT",
        "patch" => "PATCH",
        "delete" => "DELETE",
        _ => return None,
    };
    let path = if spec == "*" {
        format!("/{marker}")
    } else if let Some(prefix) = spec.strip_suffix('*') {
        format!("{}{marker}", prefix.trim_end_matches('*'))
    } else {
        format!("{spec}?{marker}")
    };
    // What looks like an API path is read as a resource request.
    if !path.starts_with('/') || path.starts_with("/api/") || path.starts_with("/apis/") {
        return None;
    }
    Some(Candidate {
        method,
        path,
        verb: verb.to_string(),
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        non_resource: true,
    })
}

/// The requests rule `r` matches that a caller without credentials can send.
fn candidates(r: &Rule, marker: &str) -> Vec<Candidate> {
    let mut verbs: Vec<&str> = if r.verbs.is_empty() {
        vec!["get"]
    } else {
        let mut v: Vec<&str> = r.verbs.iter().map(|v| v.value.as_str()).collect();
        v.sort_by_key(|v| {
            VERB_ORDER
                .iter()
                .position(|o| o == v)
                .unwrap_or(VERB_ORDER.len())
        });
        v
    };
    verbs.dedup();
    let mut out = Vec::new();
    let resource_rule = !r.resources.is_empty() || !r.namespaces.is_empty();
    if resource_rule || r.non_resource_urls.is_empty() {
        let namespace = r.namespaces.first().map_or("default", |n| n.value.as_str());
        let mut targets: Vec<(String, (String, String), String)> = Vec::new();
        if r.resources.is_empty() {
            targets.push((String::new(), ("pods".into(), String::new()), marker.into()));
        }
        for gr in &r.resources {
            let name = gr
                .resource_names
                .first()
                .map_or(marker.to_string(), |n| n.value.clone());
            if gr.resources.is_empty() {
                let res = (default_resource(&gr.group.value).to_string(), String::new());
                targets.push((gr.group.value.clone(), res, name));
            } else {
                for p in &gr.resources {
                    targets.push((
                        gr.group.value.clone(),
                        from_pattern(&p.value, &gr.group.value),
                        name.clone(),
                    ));
                }
            }
        }
        for (group, res, name) in &targets {
            for verb in &verbs {
                out.extend(resource_candidate(
                    verb,
                    group,
                    res.clone(),
                    namespace,
                    name,
                    marker,
                ));
            }
        }
    }
    if !resource_rule {
        let specs: Vec<&str> = if r.non_resource_urls.is_empty() {
            vec!["*"]
        } else {
            r.non_resource_urls
                .iter()
                .map(|u| u.value.as_str())
                .collect()
        };
        for spec in specs {
            for verb in &verbs {
                out.extend(non_resource_candidate(verb, spec, marker));
            }
        }
    }
    out
}

/// The first request, in rule order, that `caller` can send and the policy
/// records; `Err` says why there is none.
pub(crate) fn find(p: &Policy, caller: Caller, marker: &str) -> Result<Probe, String> {
    for r in p.rules.iter().filter(|r| !r.tainted) {
        let level = r.level.as_ref().and_then(|l| Level::parse(&l.value));
        if level.is_none_or(|l| l == Level::None) {
            continue;
        }
        for c in candidates(r, marker) {
            let v = eval::evaluate(p, &c.request(caller));
            if caller.stages().iter().any(|s| v.records(s)) {
                return Ok(Probe {
                    caller,
                    method: c.method,
                    path: c.path,
                    level: v.level.name(),
                    rule: v.rule.unwrap_or(r.index),
                });
            }
        }
    }
    Err(why_none(p, caller))
}

fn why_none(p: &Policy, caller: Caller) -> String {
    let recording: Vec<&Rule> = p
        .rules
        .iter()
        .filter(|r| {
            r.level
                .as_ref()
                .and_then(|l| Level::parse(&l.value))
                .is_some_and(|l| l > Level::None)
        })
        .collect();
    if recording.is_empty() {
        return "no rule records anything (every rule has level None)".into();
    }
    let who = match caller {
        Caller::Unauthenticated => "a request without credentials (no user, no group)",
        Caller::Anonymous => "system:anonymous (group system:unauthenticated)",
    };
    if recording
        .iter()
        .all(|r| !r.users.is_empty() || !r.user_groups.is_empty())
    {
        let named: Vec<String> = recording
            .iter()
            .flat_map(|r| r.users.iter().chain(&r.user_groups))
            .map(|u| u.value.clone())
            .take(4)
            .collect();
        return format!(
            "every rule that records anything names users or groups ({}), which {who} is not",
            named.join(", ")
        );
    }
    format!(
        "no rule records {who} at stage {}: the rules that could match omit {} or are shadowed by an earlier rule",
        caller.stages().join(" or "),
        if caller.stages().len() == 1 {
            "that stage"
        } else {
            "those stages"
        }
    )
}

/// Requests a live control plane makes all the time (the apiserver's own
/// loops, controllers, the scheduler, kubelets): when the policy records
/// none, a quiet log is normal.
pub(crate) fn records_regular_traffic(p: &Policy) -> bool {
    const MASTERS: [&str; 2] = ["system:masters", "system:authenticated"];
    const NODES: [&str; 2] = ["system:nodes", "system:authenticated"];
    const AUTHENTICATED: [&str; 1] = ["system:authenticated"];
    let res = |ns: &'static str,
               group: &'static str,
               resource: &'static str,
               name: &'static str| Target::Resource {
        group,
        resource,
        subresource: "",
        namespace: ns,
        name,
    };
    let traffic: [(&str, &[&str], &str, Target); 10] = [
        (
            "system:apiserver",
            &MASTERS,
            "get",
            res("default", "", "endpoints", "kubernetes"),
        ),
        (
            "system:apiserver",
            &MASTERS,
            "update",
            res(
                "kube-system",
                "coordination.k8s.io",
                "leases",
                "apiserver-kaudit",
            ),
        ),
        (
            "system:apiserver",
            &MASTERS,
            "list",
            res("", "", "namespaces", ""),
        ),
        (
            "system:kube-controller-manager",
            &AUTHENTICATED,
            "update",
            res(
                "kube-system",
                "coordination.k8s.io",
                "leases",
                "kube-controller-manager",
            ),
        ),
        (
            "system:kube-controller-manager",
            &AUTHENTICATED,
            "watch",
            res("", "", "pods", ""),
        ),
        (
            "system:kube-scheduler",
            &AUTHENTICATED,
            "update",
            res(
                "kube-system",
                "coordination.k8s.io",
                "leases",
                "kube-scheduler",
            ),
        ),
        (
            "system:kube-scheduler",
            &AUTHENTICATED,
            "watch",
            res("", "", "pods", ""),
        ),
        (
            "system:node:node1",
            &NODES,
            "update",
            res("kube-node-lease", "coordination.k8s.io", "leases", "node1"),
        ),
        (
            "system:node:node1",
            &NODES,
            "watch",
            res("", "", "pods", ""),
        ),
        (
            "system:node:node1",
            &NODES,
            "get",
            res("", "", "nodes", "node1"),
        ),
    ];
    traffic.iter().any(|(name, groups, verb, target)| {
        let v = eval::evaluate(
            p,
            &Request {
                user: Some(User { name, groups }),
                verb,
                target: target.clone(),
            },
        );
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
            .iter()
            .any(|s| v.records(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "kaudit-node-probe-T";

    fn proof(rules: &str) -> crate::policy::Proof {
        let text = format!("apiVersion: audit.k8s.io/v1\nkind: Policy\n{rules}");
        let r = crate::policy::validate("p.yaml", text.as_bytes());
        assert!(r.is_ok(false), "{}", r.render_text(false));
        crate::policy::proof(text.as_bytes(), M).unwrap()
    }

    fn sent(p: &Result<Probe, String>) -> String {
        match p {
            Ok(p) => format!("{} {} {}", p.method, p.path, p.level),
            Err(e) => format!("none: {e}"),
        }
    }

    #[test]
    fn exec_and_attach_only() {
        let p = proof(
            "rules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"pods/exec\", \"pods/attach\"]\n- level: None\n",
        );
        assert_eq!(
            sent(&p.unauthenticated),
            "GET /api/v1/namespaces/default/pods/kaudit-node-probe-T/exec Metadata"
        );
        assert_eq!(sent(&p.anonymous), sent(&p.unauthenticated));
        assert!(!p.records_regular_traffic);
    }

    #[test]
    fn one_users_secrets_without_response_started() {
        let p = proof(
            "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [\"alice\"]\n  resources:\n  - group: \"\"\n    resources: [\"secrets\"]\n  omitStages: [ResponseStarted]\n- level: None\n",
        );
        assert_eq!(
            sent(&p.unauthenticated),
            "none: every rule that records anything names users or groups (alice), which a request without credentials (no user, no group) is not"
        );
        assert!(
            sent(&p.anonymous).starts_with("none: every rule"),
            "{}",
            sent(&p.anonymous)
        );
        assert!(!p.records_regular_traffic);
    }

    #[test]
    fn rbac_writes_only() {
        let p = proof(
            "rules:\n- level: RequestResponse\n  verbs: [\"create\", \"update\", \"patch\", \"delete\", \"deletecollection\"]\n  resources:\n  - group: rbac.authorization.k8s.io\n- level: None\n",
        );
        assert_eq!(
            sent(&p.unauthenticated),
            "DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles/kaudit-node-probe-T RequestResponse"
        );
    }

    #[test]
    fn stages_and_shadowing_decide() {
        // Exec is dropped by an earlier rule; the catch-all records reads.
        let p = proof(
            "rules:\n- level: None\n  resources:\n  - group: \"\"\n    resources: [\"pods/exec\"]\n- level: Metadata\n  verbs: [get]\n",
        );
        assert_eq!(
            sent(&p.unauthenticated),
            "GET /api/v1/namespaces/default/pods/kaudit-node-probe-T Metadata"
        );
        // A 401 is written only at ResponseStarted; a 403 also at ResponseComplete.
        let p = proof("omitStages: [ResponseStarted]\nrules:\n- level: Metadata\n");
        assert!(
            sent(&p.unauthenticated)
                .starts_with("none: no rule records a request without credentials")
        );
        assert_eq!(
            sent(&p.anonymous),
            "GET /api/v1/namespaces/default/pods/kaudit-node-probe-T Metadata"
        );
        // Anonymous requests match their user and group; unauthenticated ones neither.
        let p = proof(
            "rules:\n- level: Request\n  userGroups: [system:unauthenticated]\n  nonResourceURLs: [\"/debug/*\"]\n",
        );
        assert_eq!(sent(&p.anonymous), "GET /debug/kaudit-node-probe-T Request");
        assert!(sent(&p.unauthenticated).starts_with("none: every rule"));
    }

    #[test]
    fn the_presets_record_a_probe_and_regular_traffic() {
        for preset in crate::policy::Preset::ALL {
            let p = crate::policy::proof(preset.text().as_bytes(), M).unwrap();
            assert!(
                p.unauthenticated.is_ok(),
                "{}: {:?}",
                preset.name(),
                p.unauthenticated
            );
            assert!(p.anonymous.is_ok(), "{}: {:?}", preset.name(), p.anonymous);
            assert!(p.records_regular_traffic, "{}", preset.name());
        }
    }
}
