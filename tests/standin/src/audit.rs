//! The log backend every audit event goes through, and the events of the requests
//! served on the secure port.
//!
//! One [`Backend`] holds the policy and the log sink. The run loop's simulated requests
//! and the secure port's connection threads share it: each line is written whole, in one
//! write(2), under its lock, so lines never interleave and the simulated requests keep
//! their pace (a write takes microseconds).
//!
//! Requests on the secure port are audited as kube-apiserver's handler chain
//! (`DefaultBuildHandlerChain`, k8s.io/apiserver/pkg/server/config.go) audits them:
//!
//! * a request that fails authentication (401) is audited by
//!   `WithFailedAuthenticationAudit` (k8s.io/apiserver/pkg/endpoints/filters/authn_audit.go):
//!   the policy is evaluated with no user, so rules with `users` or `userGroups` never
//!   match; the one event is `ResponseStarted`, written when the 401 is, with `"user":{}`
//!   and the Unauthorized Status as `responseStatus`;
//! * an authenticated request (here: `system:anonymous`) is audited by `WithAudit`
//!   (filters/audit.go): `RequestReceived` when it arrives, `ResponseStarted` when the
//!   answer starts for a long-running request (watch, exec, attach, log, portforward,
//!   proxy), `ResponseComplete` when it is done; the authorizer's decision is in the
//!   `authorization.k8s.io/decision` and `…/reason` annotations of the later stages.
//!
//! Each stage is dropped when the matching rule (or the policy) omits it, and level
//! None writes nothing. A `metav1.Status` answer (401, 403) is copied to
//! `responseStatus` and, at level RequestResponse, logged as `responseObject`, as
//! `audit.LogResponseObject` does from `responsewriters.WriteObjectNegotiated`. No
//! request body is ever logged: authentication and authorization fail before any
//! handler reads one.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use crate::event::{Event, ObjectRef, Request, UserInfo};
use crate::klog;
use crate::policy::{Attributes, Decision, Policy};
use crate::reqinfo::{self, RequestInfo};
use crate::serve::Status;
use crate::writer::Sink;

/// The policy, the log, and the stand-in's pause hook.
pub struct Backend {
    policy: Option<Policy>,
    legacy: bool,
    sink: Mutex<Option<Sink>>,
    has_sink: bool,
    pause_file: Option<String>,
    paused_by_signal: AtomicBool,
}

impl Backend {
    pub fn new(
        policy: Option<Policy>,
        sink: Option<Sink>,
        legacy: bool,
        pause_file: Option<String>,
    ) -> Backend {
        Backend {
            policy,
            legacy,
            has_sink: sink.is_some(),
            sink: Mutex::new(sink),
            pause_file,
            paused_by_signal: AtomicBool::new(false),
        }
    }

    /// Whether events are recorded at all: upstream installs the audit filters only with
    /// both a backend and a policy.
    pub fn enabled(&self) -> bool {
        self.has_sink && self.policy.is_some()
    }

    /// Whether the log backend is on (`--audit-log-path` given).
    pub fn has_log(&self) -> bool {
        self.has_sink
    }

    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    pub fn legacy(&self) -> bool {
        self.legacy
    }

    /// The stand-in's pause hook (`STANDIN_PAUSE_FILE`, SIGUSR2): no event is written
    /// while paused, simulated or served.
    pub fn paused(&self) -> bool {
        self.paused_by_signal.load(Ordering::SeqCst)
            || self
                .pause_file
                .as_deref()
                .is_some_and(|p| Path::new(p).exists())
    }

    /// Toggles the SIGUSR2 pause; returns whether it is now paused.
    pub fn toggle_pause(&self) -> bool {
        !self.paused_by_signal.fetch_xor(true, Ordering::SeqCst)
    }

    /// Writes one line (one write(2)); a failure is reported as
    /// `audit.HandlePluginError` reports it, with the event in the legacy format.
    pub fn write_line(&self, line: &str, legacy_text: &str) {
        let mut guard = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_mut() else {
            return;
        };
        if let Err(e) = sink.write(line.as_bytes()) {
            drop(guard);
            klog::error(
                "audit.go:80",
                &format!(
                    "Error in audit plugin 'log' affecting 1 audit events: {e}\nImpacted events:\n{legacy_text}"
                ),
            );
        }
    }

    /// Writes one event in the configured format, unless its stage is omitted.
    fn process(&self, ev: &Event, omit: &[String]) {
        if omit.iter().any(|s| s == ev.stage) {
            return;
        }
        let text = ev.legacy_line();
        if self.legacy {
            self.write_line(&text, &text);
        } else {
            self.write_line(&ev.json_line(), &text);
        }
    }
}

/// How the handler chain dealt with a request on the secure port.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Authentication failed: 401.
    Unauthenticated,
    /// `system:anonymous`, with the authorizer's decision and reason.
    Anonymous { allowed: bool, reason: String },
}

/// The user `system:anonymous` is (`anonymous.NewAuthenticator`).
pub fn anonymous_user() -> UserInfo {
    UserInfo {
        username: "system:anonymous".into(),
        uid: String::new(),
        groups: vec!["system:unauthenticated".into()],
    }
}

/// A request served on the secure port, as the audit filters see it.
pub struct Served<'a> {
    pub info: &'a RequestInfo,
    /// `req.URL.RequestURI()`: the path and query as sent.
    pub request_uri: &'a str,
    pub source_ips: Vec<String>,
    pub user_agent: &'a str,
    pub audit_id: &'a str,
    pub received: SystemTime,
    pub outcome: &'a Outcome,
    /// The HTTP status answered.
    pub code: u16,
    /// The Status object answered, if the answer is one.
    pub status: Option<&'a Status>,
}

/// `maybeTruncateUserAgent` (k8s.io/apiserver/pkg/audit/request.go): at most 1024 bytes
/// and `...TRUNCATED`.
fn truncate_user_agent(ua: &str) -> String {
    const MAX: usize = 1024;
    if ua.len() <= MAX {
        return ua.to_string();
    }
    let mut end = MAX;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...TRUNCATED", &ua[..end])
}

/// The policy attributes of a served request (`GetAuthorizerAttributes`).
pub fn attributes(info: &RequestInfo, user: Option<&UserInfo>) -> Attributes {
    Attributes {
        no_user: user.is_none(),
        user: user.map(|u| u.username.clone()).unwrap_or_default(),
        groups: user.map(|u| u.groups.clone()).unwrap_or_default(),
        verb: info.verb.clone(),
        resource_request: info.resource_request,
        namespace: info.namespace.clone(),
        api_group: info.api_group.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
        path: info.path.clone(),
    }
}

/// The event a served request gives under `policy` (`None` at level None), its
/// decision, and its stages in order, without those the decision omits.
pub fn events(s: &Served, policy: &Policy) -> Option<(Request, Decision, Vec<&'static str>)> {
    let user = match s.outcome {
        Outcome::Unauthenticated => None,
        Outcome::Anonymous { .. } => Some(anonymous_user()),
    };
    let decision = policy.evaluate(&attributes(s.info, user.as_ref()));
    if decision.level == "None" {
        return None;
    }
    let info = s.info;
    let object_ref = info.resource_request.then(|| ObjectRef {
        resource: info.resource.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        api_group: info.api_group.clone(),
        api_version: info.api_version.clone(),
        subresource: info.subresource.clone(),
        ..ObjectRef::default()
    });
    let annotations = match s.outcome {
        Outcome::Unauthenticated => Vec::new(),
        Outcome::Anonymous { allowed, reason } => vec![
            (
                "authorization.k8s.io/decision".to_string(),
                if *allowed { "allow" } else { "forbid" }.to_string(),
            ),
            ("authorization.k8s.io/reason".to_string(), reason.clone()),
        ],
    };
    let req = Request {
        verb: info.verb.clone(),
        uri: s.request_uri.to_string(),
        user: user.unwrap_or_default(),
        source_ips: s.source_ips.clone(),
        user_agent: truncate_user_agent(s.user_agent),
        object_ref,
        code: s.code,
        response_status: s.status.map(Status::audit_json),
        request_object: None,
        response_object: s.status.map(Status::object_json),
        annotations,
    };
    let stages: Vec<&'static str> = match s.outcome {
        Outcome::Unauthenticated => vec!["ResponseStarted"],
        Outcome::Anonymous { .. } if reqinfo::long_running(info) => {
            vec!["RequestReceived", "ResponseStarted", "ResponseComplete"]
        }
        Outcome::Anonymous { .. } => vec!["RequestReceived", "ResponseComplete"],
    };
    let stages = stages
        .into_iter()
        .filter(|st| !decision.omit_stages.iter().any(|o| o == st))
        .collect();
    Some((req, decision, stages))
}

/// Audits a served request: its events are written before its answer is sent, as
/// upstream's blocking log backend writes them before the response is flushed.
pub fn record(backend: &Backend, s: &Served) {
    if !backend.enabled() || backend.paused() {
        return;
    }
    let Some(policy) = backend.policy() else {
        return;
    };
    let Some((req, decision, stages)) = events(s, policy) else {
        return;
    };
    for stage in stages {
        let stage_time = if stage == "RequestReceived" {
            s.received
        } else {
            SystemTime::now().max(s.received)
        };
        let ev = Event {
            req: &req,
            level: &decision.level,
            audit_id: s.audit_id,
            stage,
            received: s.received,
            stage_time,
        };
        backend.process(&ev, &decision.omit_stages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_from_bytes;
    use std::time::{Duration, UNIX_EPOCH};

    fn policy(text: &str) -> Policy {
        load_from_bytes(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n{text}"
        ))
        .policy
        .unwrap()
    }

    fn info(method: &str, target: &str) -> RequestInfo {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        reqinfo::request_info(method, path, query)
    }

    const EXEC: &str = "/api/v1/namespaces/default/pods/kaudit-node-probe/exec?command=true";

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_000)
    }

    /// The lines a served request gives, with fixed times and id.
    fn lines(
        p: &Policy,
        method: &str,
        target: &str,
        outcome: Outcome,
        code: u16,
        status: Option<&Status>,
    ) -> Vec<String> {
        let i = info(method, target);
        let s = Served {
            info: &i,
            request_uri: target,
            source_ips: vec!["127.0.0.1".into()],
            user_agent: "curl/7.88.1",
            audit_id: "a-1",
            received: t0(),
            outcome: &outcome,
            code,
            status,
        };
        let Some((req, d, stages)) = events(&s, p) else {
            return Vec::new();
        };
        stages
            .into_iter()
            .map(|stage| {
                Event {
                    req: &req,
                    level: &d.level,
                    audit_id: "a-1",
                    stage,
                    received: t0(),
                    stage_time: t0() + Duration::from_micros(500),
                }
                .json_line()
            })
            .collect()
    }

    /// A flat JSON object's top-level keys and raw values (enough for audit events).
    fn top_level(line: &str) -> Vec<(String, String)> {
        let s = line
            .trim_end()
            .strip_prefix('{')
            .unwrap()
            .strip_suffix('}')
            .unwrap();
        let (mut out, mut depth, mut in_str, mut esc, mut start) = (Vec::new(), 0, false, false, 0);
        let b = s.as_bytes();
        let mut push = |part: &str| {
            let (k, v) = part.split_once(':').unwrap();
            out.push((k.trim_matches('"').to_string(), v.to_string()));
        };
        for (i, &c) in b.iter().enumerate() {
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => {
                    push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        push(&s[start..]);
        out
    }

    /// A real v1.32 401 event (from a policy logging secrets at Metadata and omitting
    /// RequestReceived), unedited.
    const REAL_401: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"3783dc8e-4b93-4373-bad8-c610d0d34cb9","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/prod/secrets","verb":"list","user":{},"sourceIPs":["127.0.0.1"],"userAgent":"curl/7.88.1","objectRef":{"resource":"secrets","namespace":"prod","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401},"requestReceivedTimestamp":"2026-12-02T05:05:28.141159Z","stageTimestamp":"2026-12-02T05:05:28.141812Z"}"#;

    /// Real v1.32 403 events of an exec (bob, RequestResponse, RequestReceived omitted).
    const REAL_403_EXEC: [&str; 2] = [
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"c8aefdcc-30a0-4157-a626-f1588ee5cdda","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/dev/pods/web-1/exec?command=sh\u0026container=nginx\u0026stdout=true","verb":"create","user":{"username":"bob","uid":"uid-bob","groups":["developers","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"curl/7.88.1","objectRef":{"resource":"pods","namespace":"dev","name":"web-1","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"status":"Failure","message":"pods \"web-1\" is forbidden: User \"bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"dev\"","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403},"responseObject":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-1\" is forbidden: User \"bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"dev\"","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403},"requestReceivedTimestamp":"2026-12-02T05:05:28.028281Z","stageTimestamp":"2026-12-02T05:05:28.028844Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}"#,
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"c8aefdcc-30a0-4157-a626-f1588ee5cdda","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/dev/pods/web-1/exec?command=sh\u0026container=nginx\u0026stdout=true","verb":"create","user":{"username":"bob","uid":"uid-bob","groups":["developers","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"curl/7.88.1","objectRef":{"resource":"pods","namespace":"dev","name":"web-1","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"status":"Failure","message":"pods \"web-1\" is forbidden: User \"bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"dev\"","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403},"responseObject":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-1\" is forbidden: User \"bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"dev\"","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403},"requestReceivedTimestamp":"2026-12-02T05:05:28.028281Z","stageTimestamp":"2026-12-02T05:05:28.028966Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}"#,
    ];

    /// A real v1.32 anonymous 403 of a cluster-scoped list.
    const REAL_403_ANON: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"aff9d5fd-fa38-49f9-b05f-87c05447704b","stage":"ResponseComplete","requestURI":"/api/v1/namespaces","verb":"list","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"curl/7.88.1","objectRef":{"resource":"namespaces","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"namespaces"},"code":403},"responseObject":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"namespaces"},"code":403},"requestReceivedTimestamp":"2026-12-02T05:05:28.121433Z","stageTimestamp":"2026-12-02T05:05:28.122050Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}"#;

    /// Compares field by field, in order, ignoring the given keys' values.
    fn same_shape(ours: &str, real: &str, ignore: &[&str]) {
        let (a, b) = (top_level(ours), top_level(real));
        let keys = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b), "field order\n{ours}\n{real}");
        for ((k, va), (_, vb)) in a.iter().zip(&b) {
            if !ignore.contains(&k.as_str()) {
                assert_eq!(va, vb, "field {k}");
            }
        }
    }

    const VARYING: [&str; 5] = [
        "auditID",
        "sourceIPs",
        "userAgent",
        "requestReceivedTimestamp",
        "stageTimestamp",
    ];

    /// The real data's policy (`omitStages: [RequestReceived]`, secrets at Metadata,
    /// pods and pods/exec at RequestResponse).
    fn data_policy() -> Policy {
        policy(
            "omitStages: [\"RequestReceived\"]\nrules:\n\
             - level: None\n  nonResourceURLs: [\"/healthz*\", \"/livez*\", \"/readyz*\"]\n\
             - level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"secrets\", \"configmaps\"]\n\
             - level: RequestResponse\n  resources:\n  - group: \"rbac.authorization.k8s.io\"\n  - group: \"\"\n    resources: [\"pods\", \"pods/exec\", \"pods/attach\", \"pods/portforward\", \"namespaces\", \"serviceaccounts/token\"]\n\
             - level: Request\n  verbs: [\"create\", \"update\", \"patch\", \"delete\", \"deletecollection\"]\n\
             - level: Metadata\n",
        )
    }

    #[test]
    fn unauthorized_event_like_a_real_401() {
        let ours = lines(
            &data_policy(),
            "GET",
            "/api/v1/namespaces/prod/secrets",
            Outcome::Unauthenticated,
            401,
            Some(&Status::unauthorized()),
        );
        assert_eq!(ours.len(), 1, "{ours:?}");
        same_shape(&ours[0], REAL_401, &VARYING);
        assert!(ours[0].ends_with("}\n") && ours[0].matches('\n').count() == 1);
    }

    #[test]
    fn forbidden_events_like_real_403s() {
        let i = info("GET", "/api/v1/namespaces");
        let status = Status::forbidden("system:anonymous", &i);
        let anon = Outcome::Anonymous {
            allowed: false,
            reason: String::new(),
        };
        let ours = lines(
            &data_policy(),
            "GET",
            "/api/v1/namespaces",
            anon.clone(),
            403,
            Some(&status),
        );
        assert_eq!(ours.len(), 1);
        same_shape(&ours[0], REAL_403_ANON, &VARYING);

        // The exec: ResponseStarted then ResponseComplete (a long-running request). The
        // real events are bob's; only the user, the namespace and the pod differ.
        let target =
            "/api/v1/namespaces/dev/pods/web-1/exec?command=sh&container=nginx&stdout=true";
        let i = info("POST", "/api/v1/namespaces/dev/pods/web-1/exec");
        let status = Status::forbidden("bob", &i);
        assert_eq!(
            status.message,
            "pods \"web-1\" is forbidden: User \"bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"dev\""
        );
        let ours = lines(&data_policy(), "POST", target, anon, 403, Some(&status));
        assert_eq!(ours.len(), 2);
        for (o, real) in ours.iter().zip(REAL_403_EXEC) {
            same_shape(o, real, &[&VARYING[..], &["user"]].concat());
        }
        assert!(ours[0].contains("\"stage\":\"ResponseStarted\""));
        assert!(ours[1].contains("\"stage\":\"ResponseComplete\""));
    }

    #[test]
    fn forbidden_messages() {
        let m = |method: &str, target: &str| {
            Status::forbidden("system:anonymous", &info(method, target))
        };
        let s = m("POST", EXEC);
        assert_eq!(
            s.message,
            "pods \"kaudit-node-probe\" is forbidden: User \"system:anonymous\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(
            s.object_json(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"kaudit-node-probe\\\" is forbidden: User \\\"system:anonymous\\\" cannot create resource \\\"pods/exec\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"kaudit-node-probe\",\"kind\":\"pods\"},\"code\":403}"
        );
        let s = m(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        );
        assert_eq!(
            s.message,
            "clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"system:anonymous\" cannot create resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        assert_eq!(
            s.details_json().as_deref(),
            Some("{\"group\":\"rbac.authorization.k8s.io\",\"kind\":\"clusterrolebindings\"}")
        );
        let s = m("POST", "/kaudit-probe");
        assert_eq!(
            s.message,
            "forbidden: User \"system:anonymous\" cannot post path \"/kaudit-probe\""
        );
        assert_eq!(s.details_json().as_deref(), Some("{}"));
        assert_eq!(
            m("GET", "/a<b>&c").message,
            "forbidden: User \"system:anonymous\" cannot get path \"/a&lt;b&gt;&amp;c\""
        );
    }

    #[test]
    fn failed_authentication_ignores_user_rules() {
        let p = policy(
            "rules:\n- level: RequestResponse\n  users: [\"\"]\n\
             - level: Request\n  userGroups: [system:unauthenticated]\n\
             - level: Metadata\n  omitStages: [RequestReceived]\n",
        );
        let s = Status::unauthorized();
        let out = lines(&p, "POST", EXEC, Outcome::Unauthenticated, 401, Some(&s));
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("\"level\":\"Metadata\""));
        assert!(out[0].contains("\"user\":{}"));
        assert!(!out[0].contains("responseObject"));
        assert!(!out[0].contains("annotations"));
        // The anonymous user does match the group rule.
        let i = info("POST", EXEC);
        let f = Status::forbidden("system:anonymous", &i);
        let anon = Outcome::Anonymous {
            allowed: false,
            reason: String::new(),
        };
        let out = lines(&p, "POST", EXEC, anon, 403, Some(&f));
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|l| l.contains("\"level\":\"Request\"")));
        // At RequestResponse, a 401 logs its Status as the response object.
        let rr = policy("rules:\n- level: RequestResponse\n");
        let out = lines(&rr, "POST", EXEC, Outcome::Unauthenticated, 401, Some(&s));
        assert!(out[0].contains(",\"responseObject\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401},\"requestReceivedTimestamp\""));
        assert!(!out[0].contains("requestObject"));
    }

    #[test]
    fn omitted_stages_and_level_none() {
        let s = Status::unauthorized();
        let omit = policy("omitStages: [ResponseStarted]\nrules:\n- level: Metadata\n");
        assert!(lines(&omit, "POST", EXEC, Outcome::Unauthenticated, 401, Some(&s)).is_empty());
        let rule_omit =
            policy("rules:\n- level: Metadata\n  omitStages: [ResponseStarted, RequestReceived]\n");
        assert!(
            lines(
                &rule_omit,
                "POST",
                EXEC,
                Outcome::Unauthenticated,
                401,
                Some(&s)
            )
            .is_empty()
        );
        let i = info("POST", EXEC);
        let f = Status::forbidden("system:anonymous", &i);
        let anon = Outcome::Anonymous {
            allowed: false,
            reason: String::new(),
        };
        let out = lines(&rule_omit, "POST", EXEC, anon.clone(), 403, Some(&f));
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("\"stage\":\"ResponseComplete\""));
        let none = policy("rules:\n- level: None\n");
        assert!(lines(&none, "POST", EXEC, Outcome::Unauthenticated, 401, Some(&s)).is_empty());
        assert!(lines(&none, "POST", EXEC, anon, 403, Some(&f)).is_empty());
        // A health check allowed for anonymous: RequestReceived and ResponseComplete.
        let meta = policy("rules:\n- level: RequestResponse\n");
        let reason = "RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"";
        let ok = Outcome::Anonymous {
            allowed: true,
            reason: reason.into(),
        };
        let out = lines(&meta, "GET", "/readyz", ok, 200, None);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\",\"auditID\":\"a-1\",\"stage\":\"RequestReceived\",\"requestURI\":\"/readyz\",\"verb\":\"get\",\"user\":{\"username\":\"system:anonymous\",\"groups\":[\"system:unauthenticated\"]},\"sourceIPs\":[\"127.0.0.1\"],\"userAgent\":\"curl/7.88.1\",\"requestReceivedTimestamp\":\"2026-11-22T10:00:00.123456Z\",\"stageTimestamp\":\"2026-11-22T10:00:00.123956Z\"}\n"
        );
        assert!(out[1].contains(
            "\"responseStatus\":{\"metadata\":{},\"code\":200},\"requestReceivedTimestamp\""
        ));
        assert!(out[1].contains(&format!(
            "\"annotations\":{{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":{}}}}}\n",
            crate::event::json_string(reason)
        )));
    }

    /// A policy that records only `pods/exec` records exactly the exec probe.
    #[test]
    fn exec_only_policy_records_only_the_exec_probe() {
        let p = policy(
            "rules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"pods/exec\"]\n",
        );
        let s = Status::unauthorized();
        let probes = [
            ("GET", "/readyz"),
            ("GET", "/livez"),
            ("GET", "/version"),
            ("POST", "/kaudit-probe"),
            ("GET", "/api/v1/namespaces/default/pods/kaudit-node-probe"),
            ("GET", "/api/v1/namespaces/default/pods"),
            (
                "POST",
                "/api/v1/namespaces/default/pods/kaudit-node-probe/attach",
            ),
            (
                "POST",
                "/apis/x.io/v1/namespaces/default/pods/kaudit-node-probe/exec",
            ),
            ("POST", EXEC),
        ];
        let mut recorded = Vec::new();
        for (method, target) in probes {
            let out = lines(&p, method, target, Outcome::Unauthenticated, 401, Some(&s));
            recorded.extend(out.into_iter().map(|l| (method, target, l)));
        }
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!((recorded[0].0, recorded[0].1), ("POST", EXEC));
        // The simulated requests match nothing either.
        let mut sim = crate::event::Simulator::new("v1.28.7");
        for _ in 0..crate::event::REQUEST_KINDS {
            let r = sim.next_request(t0());
            assert!(sim.lines(&r, Some(&p), false, t0()).is_empty(), "{r:?}");
        }
    }

    #[test]
    fn user_agent_truncated_like_upstream() {
        assert_eq!(truncate_user_agent("curl/8"), "curl/8");
        let long = "a".repeat(1030);
        let t = truncate_user_agent(&long);
        assert_eq!(t.len(), 1024 + "...TRUNCATED".len());
        assert!(t.ends_with("a...TRUNCATED"));
    }

    #[test]
    fn backend_pause_and_disabled() {
        let b = Backend::new(
            Some(policy("rules:\n- level: Metadata\n")),
            None,
            false,
            None,
        );
        assert!(!b.enabled(), "no log: nothing recorded");
        assert!(!b.paused());
        assert!(b.toggle_pause());
        assert!(b.paused());
        assert!(!b.toggle_pause());
        assert!(!b.paused());
    }
}
