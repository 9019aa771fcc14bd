//! The secure port: what a client sees of a starting kube-apiserver before and after
//! it is ready, and nothing more.
//!
//! * The listener is created like `SecureServingOptions.ApplyTo` → `CreateListener`
//!   (k8s.io/apiserver/pkg/server/options/serving.go): `--bind-address`:`--secure-port`,
//!   a dual-stack IPv6 socket for a wildcard address as Go's `net.Listen("tcp", …)` makes
//!   one, SO_REUSEADDR, and upstream's error text when it cannot
//!   (`failed to create listener: failed to listen on 0.0.0.0:6443: listen tcp
//!   0.0.0.0:6443: bind: address already in use`).
//! * TLS with a self-signed certificate made in memory at start-up, as
//!   `MaybeDefaultWithSelfSignedCerts` makes one when no `--tls-cert-file` is given. The
//!   stand-in never reads `--tls-cert-file`/`--tls-private-key-file` nor writes
//!   `--cert-dir`: a test sandbox has no certificates, and clients of a test double do
//!   not verify it.
//! * Authentication before the handler, as `DefaultBuildHandlerChain` does: the stand-in
//!   knows no credentials, so a request with a bearer token gets 401, and so does every
//!   request when anonymous auth is off (`--anonymous-auth=false`, or the `AlwaysAllow`
//!   authorizer, see [`always_allow_resets_anonymous`]). An anonymous GET of `/healthz`,
//!   `/livez`, `/readyz` or `/version` is allowed (the bootstrap ClusterRole
//!   `system:public-info-viewer`, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go);
//!   anything else gets 403 with upstream's Status body (`responsewriters.Forbidden`), for
//!   resource requests as well (`reqinfo.rs` tells them apart).
//! * The health endpoints answer like `handleRootHealth`
//!   (k8s.io/apiserver/pkg/server/healthz/healthz.go): 500 with every check listed and
//!   the failing ones `failed: reason withheld` until ready, then 200 `ok` (`?verbose`
//!   lists the checks). Ready means `STANDIN_READY_AFTER` (default 1s) after the first
//!   audit event; a real v1.28 was ready about 1 s after its first events.
//! * Plain HTTP sent to the port gets Go's `Client sent an HTTP request to an HTTPS
//!   server.` answer.
//!
//! The requests served here are audited like upstream's (`audit.rs`), through the same
//! policy and log as the run loop's simulated requests, before their answer is sent.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use socket2::{Domain, Protocol, Socket, Type};

use crate::audit::{self, Backend, Outcome, Served};
use crate::event::{Rng, json_string};
use crate::gostr::{self, errno_text};
use crate::klog;
use crate::reqinfo::{self, RequestInfo};

/// The default of `STANDIN_READY_AFTER`.
pub const DEFAULT_READY_AFTER: Duration = Duration::from_secs(1);

/// How long a connection may sit idle between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many connections are served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 256;
/// The largest request head read (Go's `http.DefaultMaxHeaderBytes` is 1 MiB; requests
/// to a health endpoint are tiny).
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body read and discarded before the connection is closed instead.
const MAX_BODY: u64 = 1 << 20;

// ---------------------------------------------------------------------------------
// Readiness

/// The readiness state machine: starting → (first audit event) → ready after a delay.
pub struct Readiness {
    after: Option<Duration>,
    first_event_seen: AtomicBool,
    ready: AtomicBool,
    answered_ok: AtomicBool,
}

impl Readiness {
    /// `after`: how long after the first audit event the server becomes ready; `None`
    /// for never.
    pub fn new(after: Option<Duration>) -> Readiness {
        Readiness {
            after,
            first_event_seen: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            answered_ok: AtomicBool::new(false),
        }
    }

    /// Records the first audit event. Returns the delay until ready the first time it is
    /// called (never again, and never for a server that is never ready).
    pub fn first_event(&self) -> Option<Duration> {
        if self.first_event_seen.swap(true, Ordering::SeqCst) {
            return None;
        }
        self.after
    }

    /// Makes the server ready. Returns whether it was not ready before.
    pub fn set_ready(&self) -> bool {
        !self.ready.swap(true, Ordering::SeqCst)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Whether this is the first `/readyz` answered with 200.
    pub fn first_readyz_ok(&self) -> bool {
        !self.answered_ok.swap(true, Ordering::SeqCst)
    }
}

/// `STANDIN_READY_AFTER`: a Go duration (`1s`, `300ms`), or `never`. Unset or empty: 1s.
pub fn parse_ready_after(value: Option<&str>) -> Result<Option<Duration>, String> {
    let v = value.map(str::trim).unwrap_or("");
    if v.is_empty() {
        return Ok(Some(DEFAULT_READY_AFTER));
    }
    if v == "never" {
        return Ok(None);
    }
    let ns = gostr::parse_duration(v)?;
    if ns < 0 {
        return Err(format!("negative duration {}", gostr::quote(v)));
    }
    Ok(Some(Duration::from_nanos(ns as u64)))
}

/// Called on the first audit event: makes the server ready `STANDIN_READY_AFTER` later,
/// from a timer thread, so that the run loop keeps its pace. The journal line comes
/// before the state changes, so it precedes every 200.
pub fn start_ready_timer(readiness: &Arc<Readiness>) {
    let Some(after) = readiness.first_event() else {
        return;
    };
    let r = Arc::clone(readiness);
    let spawned = thread::Builder::new()
        .name("standin-ready".into())
        .spawn(move || {
            thread::sleep(after);
            klog::info_s(
                "standin.go:8",
                "STAND-IN: ready: all /readyz checks pass from now on",
                &[(
                    "readyAfter",
                    &gostr::format_duration(after.as_nanos() as i64),
                )],
            );
            r.set_ready();
        });
    if spawned.is_err() {
        readiness.set_ready();
    }
}

// ---------------------------------------------------------------------------------
// Authentication and authorization

/// `BuiltInAuthenticationOptions.ApplyAuthorization` (pkg/kubeapiserver/options/
/// authentication.go): "AnonymousAuth is not allowed with the AlwaysAllow authorizer",
/// so anonymous auth is reset to false when the modes include `AlwaysAllow`. True when
/// that happens (upstream then logs a warning).
pub fn always_allow_resets_anonymous(anonymous_auth: bool, modes: &[String]) -> bool {
    anonymous_auth && modes.iter().any(|m| m == "AlwaysAllow")
}

/// Whether anonymous requests are authenticated (as `system:anonymous`).
pub fn anonymous_enabled(anonymous_auth: bool, modes: &[String]) -> bool {
    anonymous_auth && !always_allow_resets_anonymous(anonymous_auth, modes)
}

/// The non-resource URLs `system:public-info-viewer` grants `get` on.
const PUBLIC_INFO_URLS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The reason the RBAC authorizer gives for allowing those to anonymous requests.
const PUBLIC_INFO_REASON: &str = "RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"";

/// Whether an `Authorization` header carries a bearer token, as the bearer-token
/// authenticator reads it (k8s.io/apiserver/pkg/authentication/request/bearertoken):
/// trimmed, `Bearer` in any case, one space, a non-empty token. The stand-in validates no
/// token, so any token fails authentication (401); any other header (`Basic …`, a bare
/// `Bearer`) is no credential at all, and the request is anonymous.
pub fn bearer_token(authorization: &str) -> bool {
    let mut parts = authorization.trim().splitn(3, ' ');
    let scheme = parts.next().unwrap_or("");
    scheme.eq_ignore_ascii_case("bearer") && parts.next().is_some_and(|t| !t.is_empty())
}

/// Authentication, then authorization for `system:anonymous`.
pub fn authorize(req: &Request, anonymous: bool, info: &RequestInfo) -> Outcome {
    // The stand-in has no token, password or front-proxy authenticator that could accept
    // a token, and a failed authenticator is a 401 even with anonymous auth on
    // (union.NewFailOnError in pkg/kubeapiserver/authenticator/config.go).
    if req.credentials || !anonymous {
        return Outcome::Unauthenticated;
    }
    let allowed = !info.resource_request
        && info.verb == "get"
        && PUBLIC_INFO_URLS.contains(&info.path.as_str());
    Outcome::Anonymous {
        allowed,
        reason: if allowed {
            PUBLIC_INFO_REASON.to_string()
        } else {
            String::new()
        },
    }
}

// ---------------------------------------------------------------------------------
// Requests and responses

/// What the stand-in looks at in a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    pub method: String,
    /// The decoded path (`req.URL.Path`).
    pub path: String,
    /// The raw query.
    pub query: String,
    /// The path and query as sent (`req.URL.RequestURI()`).
    pub uri: String,
    pub http10: bool,
    /// A bearer token was sent ([`bearer_token`]).
    pub credentials: bool,
    pub user_agent: String,
    /// The first `Audit-ID`, `X-Forwarded-For` and `X-Real-Ip` headers.
    pub audit_id: String,
    pub forwarded_for: String,
    pub real_ip: String,
    /// The client asked to close (or HTTP/1.0 without keep-alive).
    pub close: bool,
    pub content_length: u64,
    pub chunked: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// The `metav1.Status` the body encodes, if it is one.
    pub status_object: Option<Status>,
}

/// A `metav1.Status` failure, as `apierrors` builds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `StatusDetails` (name, group, kind; empty ones left out), or none at all.
    pub details: Option<Vec<(&'static str, String)>>,
}

impl Status {
    /// `apierrors.NewUnauthorized("Unauthorized")`, what `genericapifilters.Unauthorized`
    /// answers.
    pub fn unauthorized() -> Status {
        Status {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }

    /// What `responsewriters.Forbidden` answers when the authorizer denies a request:
    /// `forbiddenMessage` with `&`, `<`, `>` replaced by entities, in
    /// `apierrors.NewForbidden` (the RBAC authorizer gives no reason for a denial).
    pub fn forbidden(user: &str, info: &RequestInfo) -> Status {
        let q = gostr::quote;
        let what = if !info.resource_request {
            format!(
                "User {} cannot {} path {}",
                q(user),
                info.verb,
                q(&info.path)
            )
        } else {
            let mut resource = info.resource.clone();
            if !info.subresource.is_empty() {
                resource = format!("{resource}/{}", info.subresource);
            }
            let scope = if info.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {}", q(&info.namespace))
            };
            format!(
                "User {} cannot {} resource {} in API group {} {scope}",
                q(user),
                info.verb,
                q(&resource),
                q(&info.api_group)
            )
        };
        let what = what
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        // schema.GroupResource{Group, Resource}.String(): empty for a non-resource request.
        let (group, resource, name) = if info.resource_request {
            (
                info.api_group.as_str(),
                info.resource.as_str(),
                info.name.as_str(),
            )
        } else {
            ("", "", "")
        };
        let qualified = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let message = if qualified.is_empty() {
            format!("forbidden: {what}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {what}")
        } else {
            format!("{qualified} {} is forbidden: {what}", q(name))
        };
        let details = [("name", name), ("group", group), ("kind", resource)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        Status {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(details),
        }
    }

    /// `details`, compact (`None` without details).
    #[cfg(test)]
    pub fn details_json(&self) -> Option<String> {
        self.details.as_ref().map(|d| {
            let f: Vec<(&str, String)> = d.iter().map(|(k, v)| (*k, json_string(v))).collect();
            json_object(&f, false)
        })
    }

    /// The fields of the object, each encoded; `with_type`: with `kind` and `apiVersion`
    /// (the body and `responseObject`), without (the event's `responseStatus`).
    fn fields(&self, with_type: bool, indent: bool) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if with_type {
            f.push(("kind", json_string("Status")));
            f.push(("apiVersion", json_string("v1")));
        }
        f.push(("metadata", "{}".to_string()));
        f.push(("status", json_string("Failure")));
        f.push(("message", json_string(&self.message)));
        f.push(("reason", json_string(self.reason)));
        if let Some(d) = &self.details {
            let items: Vec<(&str, String)> = d.iter().map(|(k, v)| (*k, json_string(v))).collect();
            let encoded = match (indent, items.is_empty()) {
                (true, false) => json_object(&items, true).replace('\n', "\n  "),
                _ => json_object(&items, false),
            };
            f.push(("details", encoded));
        }
        f.push(("code", self.code.to_string()));
        f
    }

    /// The object as a compact body carries it (without the encoder's newline).
    pub fn object_json(&self) -> String {
        json_object(&self.fields(true, false), false)
    }

    /// The event's `responseStatus`, as `audit.LogResponseObject` copies it.
    pub fn audit_json(&self) -> String {
        json_object(&self.fields(false, false), false)
    }

    /// `json.MarshalIndent(v, "", "  ")`.
    fn pretty_json(&self) -> String {
        json_object(&self.fields(true, true), true)
    }
}

/// The release as `/version` shows it.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    pub major: String,
    pub minor: String,
    pub git_version: String,
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The checks of kube-apiserver's health endpoints (as listed by a v1.28), and whether
/// each passes before the server is ready: the RBAC and priority-class bootstrap hooks are
/// the last to finish.
const HOOKS: [(&str, bool); 27] = [
    ("poststarthook/start-apiserver-admission-initializer", true),
    ("poststarthook/generic-apiserver-start-informers", true),
    ("poststarthook/priority-and-fairness-config-consumer", true),
    ("poststarthook/priority-and-fairness-filter", true),
    ("poststarthook/storage-object-count-tracker-hook", true),
    ("poststarthook/start-apiextensions-informers", true),
    ("poststarthook/start-apiextensions-controllers", true),
    ("poststarthook/crd-informer-synced", true),
    ("poststarthook/start-system-namespaces-controller", true),
    (
        "poststarthook/start-cluster-authentication-info-controller",
        true,
    ),
    (
        "poststarthook/start-kube-apiserver-identity-lease-controller",
        true,
    ),
    (
        "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
        true,
    ),
    ("poststarthook/start-legacy-token-tracking-controller", true),
    ("poststarthook/start-service-ip-repair-controllers", true),
    ("poststarthook/rbac/bootstrap-roles", false),
    (
        "poststarthook/scheduling/bootstrap-system-priority-classes",
        false,
    ),
    ("poststarthook/priority-and-fairness-config-producer", true),
    ("poststarthook/bootstrap-controller", true),
    ("poststarthook/aggregator-reload-proxy-client-cert", true),
    ("poststarthook/start-kube-aggregator-informers", true),
    ("poststarthook/apiservice-registration-controller", true),
    ("poststarthook/apiservice-status-available-controller", true),
    ("poststarthook/kube-apiserver-autoregistration", true),
    ("autoregister-completion", true),
    ("poststarthook/apiservice-openapi-controller", true),
    ("poststarthook/apiservice-openapiv3-controller", true),
    ("poststarthook/apiservice-discovery-controller", true),
];

/// The checks of `/readyz`, `/livez` or `/healthz` (`name` without the slash).
fn checks(name: &str, ready: bool) -> Vec<(&'static str, bool)> {
    let mut v: Vec<(&'static str, bool)> = vec![("ping", true), ("log", true), ("etcd", true)];
    if name == "readyz" {
        v.push(("etcd-readiness", true));
        v.push(("informer-sync", true));
    }
    v.extend(HOOKS.iter().map(|&(n, early)| (n, early || ready)));
    if name == "readyz" {
        v.push(("shutdown", true));
    }
    v
}

/// `handleRootHealth`: failures always verbose (`http.Error`, so a trailing newline);
/// success `ok`, or the list and `NAME check passed` with `?verbose`.
fn health(name: &str, ready: bool, verbose: bool) -> Response {
    let mut out = String::new();
    let mut failed = false;
    for (check, ok) in checks(name, ready) {
        if ok {
            out.push_str(&format!("[+]{check} ok\n"));
        } else {
            out.push_str(&format!("[-]{check} failed: reason withheld\n"));
            failed = true;
        }
    }
    let (status, body) = if failed {
        (500, format!("{out}{name} check failed\n"))
    } else if verbose {
        (200, format!("{out}{name} check passed\n"))
    } else {
        (200, "ok".to_string())
    };
    Response {
        status,
        content_type: TEXT,
        body,
        status_object: None,
    }
}

/// `isPrettyPrint` (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/writers.go).
fn pretty(req: &Request) -> bool {
    if req.query.contains("pretty")
        && let Some(v) = query_value(&req.query, "pretty").filter(|v| !v.is_empty())
    {
        return gostr::parse_bool(&v).unwrap_or(false);
    }
    let ua = req.user_agent.as_str();
    ua.starts_with("curl") || ua.starts_with("Wget") || ua.starts_with("Mozilla/5.0")
}

fn query_has(query: &str, key: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == key)
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == key => Some(v.to_string()),
        None if kv == key => Some(String::new()),
        _ => None,
    })
}

/// A JSON object with Go's `json.Marshal` or `json.MarshalIndent(v, "", "  ")` layout,
/// from (key, already-encoded value) pairs.
fn json_object(fields: &[(&str, String)], indent: bool) -> String {
    if fields.is_empty() {
        return "{}".into();
    }
    let items: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            if indent {
                format!("  {}: {v}", json_string(k))
            } else {
                format!("{}:{v}", json_string(k))
            }
        })
        .collect();
    if indent {
        format!("{{\n{}\n}}", items.join(",\n"))
    } else {
        format!("{{{}}}", items.join(","))
    }
}

/// A `metav1.Status` failure, as `responsewriters.ErrorNegotiated` writes it (compact
/// JSON from `json.Encoder`, so with a newline; indented for curl and browsers).
fn status_response(req: &Request, status: Status) -> Response {
    let body = if pretty(req) {
        status.pretty_json()
    } else {
        status.object_json() + "\n"
    };
    Response {
        status: status.code,
        content_type: JSON,
        body,
        status_object: Some(status),
    }
}

/// The request's attributes (`RequestInfoFactory`).
pub fn request_info(req: &Request) -> RequestInfo {
    reqinfo::request_info(&req.method, &req.path, &req.query)
}

/// The answer to one request. `ready` is the readiness at the time of the request.
#[cfg(test)]
pub fn route(req: &Request, anonymous: bool, ready: bool, version: &VersionInfo) -> Response {
    let info = request_info(req);
    respond(
        req,
        &info,
        &authorize(req, anonymous, &info),
        ready,
        version,
    )
}

/// The answer, once authentication and authorization have decided.
pub fn respond(
    req: &Request,
    info: &RequestInfo,
    outcome: &Outcome,
    ready: bool,
    version: &VersionInfo,
) -> Response {
    match outcome {
        Outcome::Unauthenticated => return status_response(req, Status::unauthorized()),
        Outcome::Anonymous { allowed: false, .. } => {
            let user = audit::anonymous_user().username;
            return status_response(req, Status::forbidden(&user, info));
        }
        Outcome::Anonymous { allowed: true, .. } => {}
    }
    match req.path.as_str() {
        "/version" | "/version/" => Response {
            status: 200,
            content_type: JSON,
            // The version handler writes with responsewriters.WriteRawJSON: indented.
            body: json_object(
                &[
                    ("major", json_string(&version.major)),
                    ("minor", json_string(&version.minor)),
                    ("gitVersion", json_string(&version.git_version)),
                    ("gitCommit", json_string("standin")),
                    ("gitTreeState", json_string("clean")),
                    ("buildDate", json_string("")),
                    ("goVersion", json_string("")),
                    ("compiler", json_string("gc")),
                    ("platform", json_string("linux/amd64")),
                ],
                true,
            ),
            status_object: None,
        },
        path => health(
            path.trim_start_matches('/'),
            ready,
            query_has(&req.query, "verbose"),
        ),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        500 => "Internal Server Error",
        _ => "",
    }
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `http.TimeFormat`: `Mon, 02 Jan 2006 15:04:05 GMT`.
fn http_date(t: SystemTime) -> String {
    let u = crate::timefmt::utc(t);
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        u.day,
        MONTHS[(u.month as usize).saturating_sub(1) % 12],
        u.year,
        u.hour,
        u.minute,
        u.second
    )
}

/// The bytes of a response, with the headers an apiserver sends on every answer.
pub fn encode_response(resp: &Response, req: &Request, audit_id: &str, close: bool) -> Vec<u8> {
    let proto = if req.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut head = format!(
        "{proto} {} {}\r\nAudit-Id: {audit_id}\r\nCache-Control: no-cache, private\r\n\
         Content-Type: {}\r\nX-Content-Type-Options: nosniff\r\nDate: {}\r\n\
         Content-Length: {}\r\n",
        resp.status,
        reason_phrase(resp.status),
        resp.content_type,
        http_date(SystemTime::now()),
        resp.body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    } else if req.http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if req.method != "HEAD" {
        out.extend_from_slice(resp.body.as_bytes());
    }
    out
}

/// Parses a request head (request line and header lines, without the blank line).
pub fn parse_head(lines: &[String]) -> Option<Request> {
    let first = lines.first()?;
    let mut parts = first.split(' ');
    let (method, target, proto) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !proto.starts_with("HTTP/1.") {
        return None;
    }
    let http10 = proto == "HTTP/1.0";
    // origin-form, or absolute-form (`https://host/path`).
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !target.starts_with('/') {
        return None;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut req = Request {
        method: method.to_string(),
        // net/http answers 400 to a malformed escape (url.ParseRequestURI fails).
        path: reqinfo::unescape(path, false)?,
        query: query.to_string(),
        uri: target.to_string(),
        http10,
        close: http10,
        ..Request::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for line in &lines[1..] {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        let name = name.trim().to_ascii_lowercase();
        // Header.Get: the first of several.
        let first = !seen.contains(&name);
        let set_first = |slot: &mut String| {
            if first {
                *slot = value.to_string();
            }
        };
        match name.as_str() {
            "authorization" if first => req.credentials = bearer_token(value),
            "user-agent" => set_first(&mut req.user_agent),
            "audit-id" => set_first(&mut req.audit_id),
            "x-forwarded-for" => set_first(&mut req.forwarded_for),
            "x-real-ip" => set_first(&mut req.real_ip),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.split(',').any(|t| t.trim() == "close") {
                    req.close = true;
                } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                    req.close = false;
                }
            }
            "content-length" => req.content_length = value.parse().ok()?,
            "transfer-encoding" => req.chunked |= value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
        if first {
            seen.push(name);
        }
    }
    Some(req)
}

/// Go's `net.IP.String()` of a parsed address: IPv4-mapped IPv6 shows as IPv4.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `utilnet.SourceIPs` (k8s.io/apimachinery/pkg/util/net/http.go): the addresses of
/// `X-Forwarded-For`, then `X-Real-Ip` if not among them, then the peer unless it is
/// the last one already.
pub fn source_ips(req: &Request, peer: Option<IpAddr>) -> Vec<String> {
    let mut ips: Vec<String> = req
        .forwarded_for
        .split(',')
        .filter_map(|p| p.trim().parse::<IpAddr>().ok())
        .map(ip_text)
        .collect();
    if let Ok(ip) = req.real_ip.parse::<IpAddr>() {
        let ip = ip_text(ip);
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if let Some(ip) = peer.map(ip_text)
        && ips.last() != Some(&ip)
    {
        ips.push(ip);
    }
    ips
}

// ---------------------------------------------------------------------------------
// Listener, certificate, connections

/// `net.JoinHostPort(BindAddress.String(), port)`.
fn join_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Where a listening socket failed: the syscall Go names in its error.
enum SockError {
    Socket(io::Error),
    Bind(io::Error),
    Listen(io::Error),
}

fn bind_socket(addr: SocketAddr, dual_stack: bool) -> Result<TcpListener, SockError> {
    let domain = Domain::for_address(addr);
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(SockError::Socket)?;
    s.set_reuse_address(true).map_err(SockError::Socket)?;
    if addr.is_ipv6() {
        s.set_only_v6(!dual_stack).map_err(SockError::Socket)?;
    }
    s.bind(&addr.into()).map_err(SockError::Bind)?;
    s.listen(1024).map_err(SockError::Listen)?;
    Ok(s.into())
}

/// Creates the secure port's listener, with upstream's error text on failure.
pub fn listen(bind: IpAddr, port: u16) -> Result<TcpListener, String> {
    let shown = join_host_port(bind, port);
    let fail = |e: SockError| {
        let (op, e) = match e {
            SockError::Socket(e) => ("socket", e),
            SockError::Bind(e) => ("bind", e),
            SockError::Listen(e) => ("listen", e),
        };
        format!(
            "failed to create listener: failed to listen on {shown}: listen tcp {shown}: {op}: {}",
            errno_text(&e)
        )
    };
    if bind.is_unspecified() {
        // Go listens on one dual-stack IPv6 socket for a wildcard address when the
        // kernel can map IPv4 into it (favoriteAddrFamily, net/ipsock_posix.go), else on
        // IPv4 only.
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        match bind_socket(any6, true) {
            Ok(l) => return Ok(l),
            Err(SockError::Bind(e))
                if e.raw_os_error() != Some(libc::EADDRNOTAVAIL)
                    && e.raw_os_error() != Some(libc::EAFNOSUPPORT) =>
            {
                return Err(fail(SockError::Bind(e)));
            }
            Err(_) => {}
        }
        let any4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        return bind_socket(any4, false).map_err(fail);
    }
    bind_socket(SocketAddr::new(bind, port), false).map_err(fail)
}

/// A self-signed serving certificate for `localhost`, 127.0.0.1, ::1, the in-cluster
/// names `MaybeDefaultWithSelfSignedCerts` is given (kubernetes, kubernetes.default,
/// kubernetes.default.svc) and the advertise and bind addresses. Its subject is
/// `HOST@UNIXTIME`, as `certutil.GenerateSelfSignedCertKeyWithFixtures` names it.
pub fn self_signed_cert(
    advertise: Option<IpAddr>,
    bind: IpAddr,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
    let mut names: Vec<String> = Vec::new();
    for ip in [advertise, Some(bind)].into_iter().flatten() {
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    for n in [
        "kubernetes.default.svc",
        "kubernetes.default",
        "kubernetes",
        "localhost",
        "127.0.0.1",
        "::1",
    ] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    let host = advertise.map_or_else(|| "localhost".to_string(), |ip| ip.to_string());
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let err = |e: rcgen::Error| format!("unable to generate self signed cert: {e}");
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{host}@{unix}"));
    let cert = params.self_signed(&key).map_err(err)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// The TLS server configuration (TLS 1.2 and 1.3, ring's algorithms, HTTP/1.1 by ALPN).
pub fn tls_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![cert], key))
        .map_err(|e| format!("unable to load server certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What every connection needs.
pub struct Site {
    pub tls: Arc<ServerConfig>,
    pub anonymous: bool,
    pub readiness: Arc<Readiness>,
    pub version: VersionInfo,
    /// The audit log backend (shared with the run loop); `None`: nothing is audited.
    pub audit: Option<Arc<Backend>>,
}

/// Serves `listener` from a background thread (one more thread per connection).
pub fn serve(listener: TcpListener, site: Arc<Site>) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("secure-serving".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let (site, active) = (Arc::clone(&site), Arc::clone(&active));
                let spawned = thread::Builder::new()
                    .name("secure-conn".into())
                    .spawn(move || {
                        let _ = handle(stream, &site);
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    // The closure (and its stream) is dropped: the connection closes.
                    thread::sleep(Duration::from_millis(10));
                }
            }
        })
        .map(|_| ())
}

/// Reads one request head; `Ok(None)` at a clean end of the connection.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let mut buf = Vec::new();
        let n = r
            .by_ref()
            .take((MAX_HEAD - total) as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return if lines.is_empty() && total == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        total += n;
        if total > MAX_HEAD || !buf.ends_with(b"\n") {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if line.is_empty() {
            if lines.is_empty() {
                // Go tolerates blank lines before a request line.
                continue;
            }
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn handle(stream: TcpStream, site: &Site) -> io::Result<()> {
    let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
    // Go shows an IPv4 client of a dual-stack socket as IPv4.
    let peer = stream.peer_addr().map_or_else(
        |_| "?".to_string(),
        |a| match a.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()).to_string(),
                None => a.to_string(),
            },
            IpAddr::V4(_) => a.to_string(),
        },
    );
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    if stream.peek(&mut first)? == 0 {
        return Ok(());
    }
    if first[0] != 0x16 {
        // Not a TLS handshake record: net/http's answer to plain HTTP on a TLS port.
        let mut s = stream;
        s.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )?;
        return Ok(());
    }
    let conn = ServerConnection::new(Arc::clone(&site.tls)).map_err(io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, stream));
    let mut rng = Rng::new();
    loop {
        let head = match read_head(&mut tls) {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let w = tls.get_mut();
                w.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Connection: close\r\n\r\n400 Bad Request",
                )?;
                w.flush()?;
                break;
            }
            Err(e) => return Err(e),
        };
        let Some(req) = parse_head(&head) else {
            let w = tls.get_mut();
            w.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Connection: close\r\n\r\n400 Bad Request",
            )?;
            w.flush()?;
            break;
        };
        // WithRequestReceivedTimestamp: when the handler chain starts, after the head.
        let received = SystemTime::now();
        // Discard a small body; do not try to read a chunked or large one.
        let mut close = req.close || req.chunked || req.content_length > MAX_BODY;
        if !close && req.content_length > 0 {
            let copied = io::copy(&mut (&mut tls).take(req.content_length), &mut io::sink())?;
            close |= copied < req.content_length;
        }
        let info = request_info(&req);
        let outcome = authorize(&req, site.anonymous, &info);
        let resp = respond(
            &req,
            &info,
            &outcome,
            site.readiness.is_ready(),
            &site.version,
        );
        // WithAuditInit: the client's Audit-ID, else a new one; echoed as `Audit-Id`.
        let audit_id = if req.audit_id.is_empty() {
            rng.uuid()
        } else {
            req.audit_id.clone()
        };
        if let Some(backend) = &site.audit {
            audit::record(
                backend,
                &Served {
                    info: &info,
                    request_uri: &req.uri,
                    source_ips: source_ips(&req, peer_ip),
                    user_agent: &req.user_agent,
                    audit_id: &audit_id,
                    received,
                    outcome: &outcome,
                    code: resp.status,
                    status: resp.status_object.as_ref(),
                },
            );
        }
        if req.path == "/readyz" && resp.status == 200 && site.readiness.first_readyz_ok() {
            klog::info_s(
                "standin.go:9",
                "STAND-IN: /readyz answered 200 for the first time",
                &[("client", &peer)],
            );
        }
        let w = tls.get_mut();
        w.write_all(&encode_response(&resp, &req, &audit_id, close))?;
        w.flush()?;
        if close {
            break;
        }
    }
    let w = tls.get_mut();
    w.conn.send_close_notify();
    let _ = w.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            ..Request::default()
        }
    }

    fn version() -> VersionInfo {
        VersionInfo {
            major: "1".into(),
            minor: "28".into(),
            git_version: "v1.28.7-standin".into(),
        }
    }

    #[test]
    fn readiness_state_machine() {
        let r = Readiness::new(Some(Duration::from_millis(300)));
        assert!(!r.is_ready());
        assert_eq!(r.first_event(), Some(Duration::from_millis(300)));
        assert_eq!(
            r.first_event(),
            None,
            "only the first event starts the timer"
        );
        assert!(!r.is_ready());
        assert!(r.set_ready());
        assert!(!r.set_ready());
        assert!(r.is_ready());
        assert!(r.first_readyz_ok());
        assert!(!r.first_readyz_ok(), "the first 200 is noted once");
        let never = Readiness::new(None);
        assert_eq!(never.first_event(), None);
        assert!(!never.is_ready());
    }

    #[test]
    fn ready_timer_flips_the_state() {
        let r = Arc::new(Readiness::new(Some(Duration::ZERO)));
        start_ready_timer(&r);
        for _ in 0..200 {
            if r.is_ready() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        assert!(r.is_ready());
        let never = Arc::new(Readiness::new(None));
        start_ready_timer(&never);
        thread::sleep(Duration::from_millis(20));
        assert!(!never.is_ready());
    }

    #[test]
    fn ready_after_values() {
        assert_eq!(parse_ready_after(None), Ok(Some(Duration::from_secs(1))));
        assert_eq!(
            parse_ready_after(Some("")),
            Ok(Some(Duration::from_secs(1)))
        );
        assert_eq!(
            parse_ready_after(Some("300ms")),
            Ok(Some(Duration::from_millis(300)))
        );
        assert_eq!(
            parse_ready_after(Some("1m30s")),
            Ok(Some(Duration::from_secs(90)))
        );
        assert_eq!(parse_ready_after(Some("0s")), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_ready_after(Some("never")), Ok(None));
        assert!(parse_ready_after(Some("5")).is_err());
        assert!(parse_ready_after(Some("-1s")).is_err());
    }

    #[test]
    fn anonymous_auth_rule() {
        let m = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // AlwaysAllow (also the default mode) turns anonymous auth off.
        assert!(!anonymous_enabled(true, &m(&["AlwaysAllow"])));
        assert!(!anonymous_enabled(true, &m(&["Node", "AlwaysAllow"])));
        assert!(always_allow_resets_anonymous(true, &m(&["AlwaysAllow"])));
        assert!(!always_allow_resets_anonymous(false, &m(&["AlwaysAllow"])));
        assert!(anonymous_enabled(true, &m(&["Node", "RBAC"])));
        assert!(anonymous_enabled(true, &[]));
        assert!(!anonymous_enabled(false, &m(&["Node", "RBAC"])));
    }

    #[test]
    fn unauthenticated_requests_get_401_whatever_the_readiness() {
        for ready in [false, true] {
            for path in ["/readyz", "/livez", "/healthz", "/version", "/api/v1/pods"] {
                let r = route(&get(path), false, ready, &version());
                assert_eq!(r.status, 401, "{path}");
                assert_eq!(
                    r.body,
                    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n"
                );
                assert_eq!(r.content_type, "application/json");
            }
        }
        // Credentials the stand-in cannot check: 401 even with anonymous auth on.
        let mut req = get("/readyz");
        req.credentials = true;
        assert_eq!(route(&req, true, true, &version()).status, 401);
    }

    #[test]
    fn readyz_500_until_ready_then_200() {
        let r = route(&get("/readyz"), true, false, &version());
        assert_eq!(r.status, 500);
        assert!(r.body.starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n"));
        assert!(
            r.body
                .contains("[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n")
        );
        assert!(r.body.ends_with("[+]shutdown ok\nreadyz check failed\n"));
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        // Failures are verbose with or without ?verbose.
        assert_eq!(
            route(&get("/readyz?verbose"), true, false, &version()).body,
            r.body
        );
        let ok = route(&get("/readyz"), true, true, &version());
        assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));
        let verbose = route(&get("/readyz?verbose=1"), true, true, &version());
        assert_eq!(verbose.status, 200);
        assert!(!verbose.body.contains("[-]"));
        assert!(
            verbose
                .body
                .ends_with("[+]shutdown ok\nreadyz check passed\n")
        );
        for name in ["livez", "healthz"] {
            let r = route(&get(&format!("/{name}")), true, false, &version());
            assert_eq!(r.status, 500);
            assert!(r.body.ends_with(&format!("{name} check failed\n")));
            assert!(!r.body.contains("shutdown"));
            let r = route(&get(&format!("/{name}")), true, true, &version());
            assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        }
    }

    #[test]
    fn anonymous_gets_403_elsewhere() {
        // A resource request: the body of a real v1.32's answer (its audit event's
        // responseObject, plus the encoder's newline).
        let r = route(&get("/api/v1/namespaces"), true, true, &version());
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"namespaces is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"namespaces\\\" in API group \\\"\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"kind\":\"namespaces\"},\"code\":403}\n"
        );
        assert_eq!(
            r.status_object.as_ref().map(|s| s.object_json() + "\n"),
            Some(r.body.clone())
        );
        // A non-resource request.
        let r = route(&get("/kaudit-probe"), true, true, &version());
        assert_eq!(
            r.body,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"forbidden: User \\\"system:anonymous\\\" cannot get path \\\"/kaudit-probe\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403}\n"
        );
        // Indented for curl, details too.
        let mut exec = get("/api/v1/namespaces/default/pods/p/exec?command=true");
        exec.method = "POST".into();
        exec.user_agent = "curl/8.5.0".into();
        let r = route(&exec, true, true, &version());
        assert!(
            r.body.ends_with(
                "\"reason\": \"Forbidden\",\n  \"details\": {\n    \"name\": \"p\",\n    \"kind\": \"pods\"\n  },\n  \"code\": 403\n}"
            ),
            "{}",
            r.body
        );
        // The ClusterRole grants the exact paths, and only `get`.
        assert_eq!(
            route(&get("/readyz/ping"), true, true, &version()).status,
            403
        );
        let mut post = get("/readyz");
        post.method = "POST".into();
        let r = route(&post, true, true, &version());
        assert_eq!(r.status, 403);
        assert!(r.body.contains("cannot post path \\\"/readyz\\\""));
        // curl gets it indented.
        let mut curl = get("/");
        curl.user_agent = "curl/8.5.0".into();
        let r = route(&curl, true, false, &version());
        assert!(r.body.starts_with("{\n  \"kind\": \"Status\",\n"));
        assert!(r.body.ends_with("\n  \"code\": 403\n}"));
        let v = route(&get("/version"), true, false, &version());
        assert_eq!(v.status, 200);
        assert!(
            v.body
                .contains("\n  \"gitVersion\": \"v1.28.7-standin\",\n")
        );
    }

    #[test]
    fn request_heads() {
        let h = |l: &[&str]| parse_head(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let r = h(&[
            "GET /readyz?verbose HTTP/1.1",
            "Host: x",
            "User-Agent: curl/8",
            "Authorization: Bearer abc",
        ])
        .unwrap();
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/readyz", "verbose"));
        assert!(r.credentials && !r.close && !r.http10);
        assert_eq!(r.user_agent, "curl/8");
        let r = h(&["GET https://127.0.0.1:6443/livez HTTP/1.0"]).unwrap();
        assert_eq!(r.path, "/livez");
        assert!(r.http10 && r.close);
        let r = h(&["GET / HTTP/1.1", "Connection: close"]).unwrap();
        assert!(r.close);
        assert!(h(&["GET /"]).is_none());
        assert!(h(&["GET / SPDY/3"]).is_none());
        assert!(h(&["GET / HTTP/1.1", "no colon"]).is_none());
        // The path is decoded, the URI kept as sent; a malformed escape is a 400.
        let r = h(&["GET /api/v1/namespaces/a%2Db/pods?watch=1&x=%41 HTTP/1.1"]).unwrap();
        assert_eq!(r.path, "/api/v1/namespaces/a-b/pods");
        assert_eq!(r.query, "watch=1&x=%41");
        assert_eq!(r.uri, "/api/v1/namespaces/a%2Db/pods?watch=1&x=%41");
        assert!(h(&["GET /a%zz HTTP/1.1"]).is_none());
        let r = h(&["GET https://h:1/x?y HTTP/1.1"]).unwrap();
        assert_eq!(r.uri, "/x?y");
        // The first of repeated headers counts, as Header.Get reads it.
        let r = h(&[
            "GET / HTTP/1.1",
            "User-Agent: one",
            "user-agent: two",
            "Audit-ID: my-id",
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
            "X-Real-Ip: 10.0.0.3",
            "Authorization: Basic dTpw",
            "Authorization: Bearer t",
        ])
        .unwrap();
        assert_eq!(r.user_agent, "one");
        assert_eq!(r.audit_id, "my-id");
        assert!(
            !r.credentials,
            "only the first Authorization header is read"
        );
        assert_eq!(
            source_ips(&r, Some("::ffff:127.0.0.1".parse().unwrap())),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1"]
        );
        assert_eq!(
            source_ips(&Request::default(), Some("::1".parse().unwrap())),
            ["::1"]
        );
        let mut same = Request {
            forwarded_for: "junk, 127.0.0.1".into(),
            ..Request::default()
        };
        assert_eq!(
            source_ips(&same, Some("127.0.0.1".parse().unwrap())),
            ["127.0.0.1"]
        );
        same.real_ip = "127.0.0.1".into();
        assert_eq!(source_ips(&same, None), ["127.0.0.1"]);
    }

    #[test]
    fn bearer_tokens_like_the_bearer_authenticator() {
        for (header, token) in [
            ("Bearer abc", true),
            ("bearer abc", true),
            ("  BEARER abc  ", true),
            ("Bearer abc def", true),
            ("Bearer", false),
            ("Bearer ", false),
            ("Bearer  abc", false),
            ("Basic dTpw", false),
            ("", false),
        ] {
            assert_eq!(bearer_token(header), token, "{header:?}");
        }
        // No token: anonymous (403 here), not 401.
        let mut req = get("/api/v1/pods");
        req.credentials = bearer_token("Bearer ");
        assert_eq!(route(&req, true, true, &version()).status, 403);
    }

    #[test]
    fn response_bytes() {
        let req = get("/readyz");
        let resp = route(&req, true, true, &version());
        let text = String::from_utf8(encode_response(&resp, &req, "id-1", false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nAudit-Id: id-1\r\n"));
        assert!(text.contains("\r\nContent-Length: 2\r\n\r\nok"));
        assert!(!text.contains("Connection:"));
        let date = http_date(UNIX_EPOCH + Duration::from_secs(1_136_214_245));
        assert_eq!(date, "Mon, 02 Jan 2006 15:04:05 GMT");
    }

    #[test]
    fn listen_errors_like_upstream() {
        let l = listen(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let port = l.local_addr().unwrap().port();
        let e = listen(IpAddr::V4(Ipv4Addr::LOCALHOST), port).unwrap_err();
        assert_eq!(
            e,
            format!(
                "failed to create listener: failed to listen on 127.0.0.1:{port}: listen tcp 127.0.0.1:{port}: bind: address already in use"
            )
        );
        // A wildcard bind conflicts with it too, and says so with the address as given.
        let e = listen(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port).unwrap_err();
        assert!(
            e.ends_with(&format!(
                "listen tcp 0.0.0.0:{port}: bind: address already in use"
            )),
            "{e}"
        );
    }

    fn tls_client(cert: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// Sends `reqs` on one TLS connection and reads until the server closes it.
    fn tls_fetch(client: &Arc<rustls::ClientConfig>, addr: SocketAddr, reqs: &str) -> String {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(client), name).unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        tls.write_all(reqs.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A real TLS GET against the server on 127.0.0.1, port 0.
    #[test]
    fn tls_round_trip() {
        let (cert, key) = self_signed_cert(None, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        let listener = listen(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let readiness = Arc::new(Readiness::new(Some(Duration::ZERO)));
        let site = Arc::new(Site {
            tls: tls_config(cert.clone(), key).unwrap(),
            anonymous: true,
            readiness: Arc::clone(&readiness),
            version: version(),
            audit: None,
        });
        serve(listener, site).unwrap();

        let client = tls_client(cert);
        let fetch = |reqs: &str| tls_fetch(&client, addr, reqs);
        let out = fetch("GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{out}"
        );
        assert!(out.ends_with("readyz check failed\n"));
        start_ready_timer(&readiness);
        for _ in 0..200 {
            if readiness.is_ready() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        // Two requests on one kept-alive connection.
        let out = fetch(
            "GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n\
             GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
        assert!(out.ends_with("\r\n\r\nok"));
        assert!(!readiness.first_readyz_ok(), "the first 200 was noted");
        // Plain HTTP on the TLS port.
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = plain.read_to_string(&mut out);
        assert_eq!(
            out,
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
    }
    /// Requests over real TLS are audited into the log under the policy: a policy that
    /// records only `pods/exec` gets exactly the exec probe, with anonymous auth off
    /// (one 401 ResponseStarted) and on (a 403's three stages); the legacy format too.
    #[test]
    fn tls_requests_are_audited() {
        let dir = std::env::temp_dir().join(format!("standin-serve-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exec_only = crate::policy::load_from_bytes(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"pods/exec\"]\n",
        )
        .policy
        .unwrap();
        let (cert, key) = self_signed_cert(None, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        let tls = tls_config(cert.clone(), key).unwrap();
        let client = tls_client(cert);
        let site = |name: &str, anonymous: bool, legacy: bool| {
            let log = dir.join(name).to_string_lossy().into_owned();
            let sink = crate::writer::get_writer(&log, 0, 0, 0, false, false).unwrap();
            let backend = Backend::new(Some(exec_only.clone()), sink, legacy, None);
            let listener = listen(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
            let addr = listener.local_addr().unwrap();
            let site = Arc::new(Site {
                tls: Arc::clone(&tls),
                anonymous,
                readiness: Arc::new(Readiness::new(None)),
                version: version(),
                audit: Some(Arc::new(backend)),
            });
            serve(listener, site).unwrap();
            (addr, log)
        };
        const EXEC: &str = "/api/v1/namespaces/default/pods/kaudit-node-probe/exec?command=true";
        let probes = format!(
            "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n\
             GET /livez HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n\
             GET /version HTTP/1.1\r\nHost: x\r\n\r\n\
             POST /kaudit-probe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}\
             GET /api/v1/namespaces/default/pods/kaudit-node-probe HTTP/1.1\r\nHost: x\r\n\r\n\
             POST {EXEC} HTTP/1.1\r\nHost: x\r\nUser-Agent: kaudit-node-test\r\nConnection: close\r\n\r\n"
        );
        let audit_ids = |out: &str| -> Vec<String> {
            out.lines()
                .filter_map(|l| l.strip_prefix("Audit-Id: "))
                .map(str::to_string)
                .collect()
        };

        let (addr, log) = site("off.log", false, false);
        let out = tls_fetch(&client, addr, &probes);
        assert_eq!(
            out.matches("HTTP/1.1 401 Unauthorized\r\n").count(),
            6,
            "{out}"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let id = audit_ids(&out).pop().unwrap();
        let l = lines[0];
        assert!(l.starts_with(&format!("{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{id}\",\"stage\":\"ResponseStarted\",\"requestURI\":\"/api/v1/namespaces/default/pods/kaudit-node-probe/exec?command=true\",\"verb\":\"create\",\"user\":{{}},\"sourceIPs\":[\"127.0.0.1\"],\"userAgent\":\"kaudit-node-test\",\"objectRef\":{{\"resource\":\"pods\",\"namespace\":\"default\",\"name\":\"kaudit-node-probe\",\"apiVersion\":\"v1\",\"subresource\":\"exec\"}},\"responseStatus\":{{\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}},\"requestReceivedTimestamp\":\"")), "{l}");
        assert!(l.ends_with("Z\"}"), "{l}");

        let (addr, log) = site("on.log", true, false);
        let out = tls_fetch(&client, addr, &probes);
        assert_eq!(
            out.matches("HTTP/1.1 403 Forbidden\r\n").count(),
            3,
            "{out}"
        );
        assert_eq!(
            out.matches("HTTP/1.1 401 Unauthorized\r\n").count(),
            1,
            "{out}"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let id = audit_ids(&out).pop().unwrap();
        for (l, stage) in
            lines
                .iter()
                .zip(["RequestReceived", "ResponseStarted", "ResponseComplete"])
        {
            assert!(
                l.contains(&format!("\"auditID\":\"{id}\",\"stage\":\"{stage}\",")),
                "{l}"
            );
            assert!(l.contains("\"user\":{\"username\":\"system:anonymous\",\"groups\":[\"system:unauthenticated\"]}"));
        }
        assert!(!lines[0].contains("responseStatus"));
        assert!(lines[2].contains("\"responseStatus\":{\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"kaudit-node-probe\\\" is forbidden: User \\\"system:anonymous\\\" cannot create resource \\\"pods/exec\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"kaudit-node-probe\",\"kind\":\"pods\"},\"code\":403}"), "{}", lines[2]);
        assert!(lines[2].ends_with(",\"annotations\":{\"authorization.k8s.io/decision\":\"forbid\",\"authorization.k8s.io/reason\":\"\"}}"));

        // The client's Audit-ID is the event's, and legacy lines are EventString's.
        let (addr, log) = site("legacy.log", false, true);
        tls_fetch(
            &client,
            addr,
            &format!(
                "POST {EXEC} HTTP/1.1\r\nHost: x\r\nAudit-ID: my-id\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n"
            ),
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.ends_with(" AUDIT: id=\"my-id\" stage=\"ResponseStarted\" ip=\"10.1.2.3\" method=\"create\" user=\"<none>\" groups=\"<none>\" as=\"<self>\" asgroups=\"<lookup>\" user-agent=\"\" namespace=\"default\" uri=\"/api/v1/namespaces/default/pods/kaudit-node-probe/exec?command=true\" response=\"401\"\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
