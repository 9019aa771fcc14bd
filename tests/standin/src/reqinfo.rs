//! What a request is about, as upstream's `RequestInfoFactory.NewRequestInfo`
//! (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) works it out from the method,
//! the path and the query, and the long-running check kube-apiserver builds with
//! `BasicLongRunningRequestCheck` (k8s.io/apiserver/pkg/server/filters/longrunning.go).
//!
//! * `/api/v1/...` (the core group, `""`) and `/apis/GROUP/VERSION/...` are resource
//!   requests; `namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]`, or cluster-scoped
//!   `RESOURCE[/NAME[/SUBRESOURCE]]`; `namespaces/NS[/status|/finalize]` is the namespace
//!   itself. `/api/v1/watch/...` and `/api/v1/proxy/...` take their verb from the path.
//! * Verb from the method: POST create, GET/HEAD get (list without a name, watch with
//!   `?watch` not `0`/`false`), PUT update, PATCH patch, DELETE delete (deletecollection
//!   without a name); any other method has no verb. A list or watch with
//!   `fieldSelector=metadata.name=X` names X.
//! * Anything else (`/readyz`, `/version`, `/api`, `/apis/apps`) is a non-resource
//!   request: the verb is the lower-cased method.

/// The request's attributes as the authorizer and the audit policy see them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestInfo {
    pub resource_request: bool,
    /// The decoded path (`req.URL.Path`).
    pub path: String,
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// `specialVerbs`: verbs given by the path instead of the method.
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// `namespaceSubresources`: subresources of a namespace itself.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Go's `url.PathUnescape`/`QueryUnescape`: `None` for a malformed `%` escape.
pub fn unescape(s: &str, query: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let hi = b.get(i + 1).copied().and_then(hex)?;
                let lo = b.get(i + 2).copied().and_then(hex)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.ParseQuery`: pairs in order; a pair with a `;` in its key or a bad escape is
/// dropped, and reported by the `bool` (Go returns the first such error).
pub fn parse_query(query: &str) -> (Vec<(String, String)>, bool) {
    let mut pairs = Vec::new();
    let mut bad = false;
    for kv in query.split('&') {
        if kv.is_empty() {
            continue;
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k.contains(';') {
            bad = true;
            continue;
        }
        match (unescape(k, true), unescape(v, true)) {
            (Some(k), Some(v)) => pairs.push((k, v)),
            _ => bad = true,
        }
    }
    (pairs, bad)
}

/// The first value of `key` (`url.Values.Get`, but `None` when absent).
fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `runtime.Convert_Slice_string_To_bool`: only `0` and `false` (any case) are false.
fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// `fields.splitTerms`: split on commas that are not backslash-escaped.
fn split_terms(s: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
        } else if c == '\\' {
            escaped = true;
            cur.push(c);
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

/// `fields.UnescapeValue`: `\\`, `\,` and `\=` only.
fn unescape_value(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `fields.ParseSelector(s).RequiresExactMatch(field)`: `Err` when the selector does not
/// parse. The terms are sorted first, as `parseSelector` sorts them.
fn field_exact_match(selector: &str, field: &str) -> Result<Option<String>, ()> {
    let mut terms = split_terms(selector);
    terms.sort();
    let mut found = None;
    for term in terms.iter().filter(|t| !t.is_empty()) {
        // `splitTerm`: the first operator from the left, `!=` and `==` before `=`.
        let split = (0..term.len())
            .filter(|&i| term.is_char_boundary(i))
            .find_map(|i| {
                ["!=", "==", "="]
                    .into_iter()
                    .find(|op| term[i..].starts_with(op))
                    .map(|op| (&term[..i], op, &term[i + op.len()..]))
            });
        let (lhs, op, rhs) = split.ok_or(())?;
        let value = unescape_value(rhs).ok_or(())?;
        if op != "!=" && lhs == field && found.is_none() {
            found = Some(value);
        }
    }
    Ok(found)
}

/// `path.IsValidPathSegmentName` has no complaint.
fn valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

/// The `metadata.name` a list or watch names through its field selector, as
/// `NewRequestInfo` reads it after `ParameterCodec.DecodeParameters`. `Err` when decoding
/// the list options fails (then no name is taken). Only the options that can fail to
/// decode are looked at: the field selector and the integers.
fn list_options_name(pairs: &[(String, String)]) -> Result<Option<String>, ()> {
    for key in ["limit", "timeoutSeconds"] {
        if let Some(v) = first(pairs, key)
            && v.parse::<i64>().is_err()
        {
            return Err(());
        }
    }
    match first(pairs, "fieldSelector") {
        None => Ok(None),
        Some(sel) => field_exact_match(sel, "metadata.name"),
    }
}

/// `strings.Split(strings.Trim(path, "/"), "/")`, none for an empty path.
fn split_path(path: &str) -> Vec<&str> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        Vec::new()
    } else {
        p.split('/').collect()
    }
}

/// `NewRequestInfo` for a method, a decoded path and a raw query. Like upstream, a
/// malformed `/api/v1/watch` (a special verb and nothing after it) is still taken as a
/// resource request with what was parsed so far (upstream returns it with an error, and
/// `WithRequestInfo` then answers 500; the stand-in does not model that error).
pub fn request_info(method: &str, path: &str, query: &str) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let mut parts = split_path(path);
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return info;
    }
    let prefix = parts.remove(0);
    if prefix == "apis" {
        if parts.len() < 3 {
            return info;
        }
        info.api_group = parts.remove(0).to_string();
    }
    info.resource_request = true;
    info.api_version = parts.remove(0).to_string();

    if SPECIAL_VERBS.contains(&parts[0]) {
        if parts.len() < 2 {
            return info;
        }
        info.verb = parts.remove(0).to_string();
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }

    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
            parts.drain(..2);
        }
    }

    // resource/name/subresource/other/stuff/we/don't/interpret
    if parts.len() >= 3 && info.verb != "proxy" {
        info.subresource = parts[2].to_string();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_string();
    }
    if !parts.is_empty() {
        info.resource = parts[0].to_string();
    }

    if info.name.is_empty() && info.verb == "get" {
        let (pairs, bad) = parse_query(query);
        let name = if bad {
            Err(())
        } else {
            list_options_name(&pairs)
        };
        let watch = first(&pairs, "watch").is_some_and(query_bool);
        info.verb = if watch { "watch" } else { "list" }.to_string();
        if let Ok(Some(n)) = name
            && valid_path_segment_name(&n)
        {
            info.name = n;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    info
}

/// kube-apiserver's long-running check (`BasicLongRunningRequestCheck` with the verbs
/// `watch`, `proxy` and the subresources `attach`, `exec`, `proxy`, `log`,
/// `portforward`, as `pkg/controlplane/apiserver` configures it): `WithAudit` then writes
/// a `ResponseStarted` event when the response starts.
pub fn long_running(info: &RequestInfo) -> bool {
    if matches!(info.verb.as_str(), "watch" | "proxy") {
        return true;
    }
    if info.resource_request {
        return matches!(
            info.subresource.as_str(),
            "attach" | "exec" | "proxy" | "log" | "portforward"
        );
    }
    info.path.starts_with("/debug/pprof/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ri(method: &str, target: &str) -> RequestInfo {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        request_info(method, &unescape(path, false).unwrap(), query)
    }

    /// (verb, group, version, namespace, resource, subresource, name)
    type Want<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
    );

    fn res(i: &RequestInfo) -> Want<'_> {
        assert!(i.resource_request, "{i:?}");
        (
            &i.verb,
            &i.api_group,
            &i.api_version,
            &i.namespace,
            &i.resource,
            &i.subresource,
            &i.name,
        )
    }

    #[test]
    fn resource_requests_like_request_info_factory() {
        // The cases of upstream's requestinfo_test.go TestGetAPIRequestInfo.
        let cases: &[(&str, &str, Want)] = &[
            (
                "GET",
                "/api/v1/namespaces",
                ("list", "", "v1", "", "namespaces", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other",
                ("get", "", "v1", "other", "namespaces", "", "other"),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods",
                ("list", "", "v1", "other", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo",
                ("get", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "HEAD",
                "/api/v1/namespaces/other/pods/foo",
                ("get", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "GET",
                "/api/v1/pods",
                ("list", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo/status",
                ("get", "", "v1", "other", "pods", "status", "foo"),
            ),
            (
                "GET",
                "/api/v1/watch/pods",
                ("watch", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/pods?watch=true",
                ("watch", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/pods?watch=false",
                ("list", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/other/pods",
                ("watch", "", "v1", "other", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo/proxy/subpath/not/a/subresource",
                ("get", "", "v1", "other", "pods", "proxy", "foo"),
            ),
            (
                "GET",
                "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource",
                ("proxy", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "GET",
                "/apis/extensions/v1beta1/namespaces/other/extensions",
                (
                    "list",
                    "extensions",
                    "v1beta1",
                    "other",
                    "extensions",
                    "",
                    "",
                ),
            ),
            (
                "GET",
                "/apis/extensions/v1beta1/extensions",
                ("list", "extensions", "v1beta1", "", "extensions", "", ""),
            ),
            (
                "POST",
                "/api/v1/namespaces/other/pods",
                ("create", "", "v1", "other", "pods", "", ""),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/pods/foo",
                ("update", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "PATCH",
                "/api/v1/namespaces/other/pods/foo",
                ("patch", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods/foo",
                ("delete", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods",
                ("deletecollection", "", "v1", "other", "pods", "", ""),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/finalize",
                (
                    "update",
                    "",
                    "v1",
                    "other",
                    "namespaces",
                    "finalize",
                    "other",
                ),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/status",
                ("update", "", "v1", "other", "namespaces", "status", "other"),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo",
                ("list", "", "v1", "other", "pods", "", "foo"),
            ),
            (
                "GET",
                "/api/v1/pods?fieldSelector=spec.nodeName%3Dn,metadata.name%3D%3Dbar&watch=1",
                ("watch", "", "v1", "", "pods", "", "bar"),
            ),
            (
                "GET",
                "/api/v1/pods?fieldSelector=metadata.name!%3Dbar",
                ("list", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/pods?fieldSelector=metadata.name%3Da%2Fb",
                ("list", "", "v1", "", "pods", "", ""),
            ),
            (
                "GET",
                "/api/v1/pods?fieldSelector=metadata.name%3Dx&limit=abc",
                ("list", "", "v1", "", "pods", "", ""),
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/kaudit-node-probe/exec?command=true",
                (
                    "create",
                    "",
                    "v1",
                    "default",
                    "pods",
                    "exec",
                    "kaudit-node-probe",
                ),
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l1",
                (
                    "update",
                    "coordination.k8s.io",
                    "v1",
                    "kube-system",
                    "leases",
                    "",
                    "l1",
                ),
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin",
                (
                    "get",
                    "rbac.authorization.k8s.io",
                    "v1",
                    "",
                    "clusterrolebindings",
                    "",
                    "admin",
                ),
            ),
            (
                "OPTIONS",
                "/api/v1/pods/x",
                ("", "", "v1", "", "pods", "", "x"),
            ),
        ];
        for (method, target, want) in cases {
            assert_eq!(res(&ri(method, target)), *want, "{method} {target}");
        }
        // `?watch` with no value, or any value but 0/false, is a watch.
        for q in ["watch", "watch=", "watch=yes", "watch=TRUE", "watch=1"] {
            assert_eq!(ri("GET", &format!("/api/v1/pods?{q}")).verb, "watch", "{q}");
        }
        for q in ["watch=0", "watch=False", "", "x=1"] {
            assert_eq!(ri("GET", &format!("/api/v1/pods?{q}")).verb, "list", "{q}");
        }
    }

    #[test]
    fn non_resource_requests() {
        for (method, target, verb) in [
            ("GET", "/readyz", "get"),
            ("GET", "/readyz?verbose", "get"),
            ("POST", "/kaudit-probe", "post"),
            ("PUT", "/version", "put"),
            ("PATCH", "/", "patch"),
            ("DELETE", "/livez", "delete"),
            ("GET", "/api", "get"),
            ("GET", "/api/v1", "get"),
            ("GET", "/apis/apps", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/other/v1/pods", "get"),
        ] {
            let i = ri(method, target);
            assert!(!i.resource_request, "{target}");
            assert_eq!(i.verb, verb);
            assert_eq!(i.path, target.split('?').next().unwrap());
            assert_eq!(
                (i.resource.as_str(), i.api_version.as_str()),
                ("", ""),
                "{target}"
            );
        }
        // Three parts under /apis is a group's version list, not resources.
        assert!(ri("GET", "/apis/apps/v1/deployments").resource_request);
    }

    #[test]
    fn long_running_requests() {
        assert!(long_running(&ri(
            "POST",
            "/api/v1/namespaces/default/pods/p/exec"
        )));
        for sub in ["attach", "log", "portforward", "proxy"] {
            assert!(long_running(&ri(
                "GET",
                &format!("/api/v1/namespaces/default/pods/p/{sub}")
            )));
        }
        assert!(long_running(&ri("GET", "/api/v1/pods?watch=1")));
        assert!(long_running(&ri("GET", "/debug/pprof/heap")));
        assert!(!long_running(&ri("GET", "/api/v1/pods")));
        assert!(!long_running(&ri("GET", "/readyz")));
        assert!(!long_running(&ri(
            "GET",
            "/api/v1/namespaces/default/pods/p/status"
        )));
    }

    #[test]
    fn escapes_like_net_url() {
        assert_eq!(unescape("/a%2Fb+c", false).as_deref(), Some("/a/b+c"));
        assert_eq!(unescape("a+b%3D", true).as_deref(), Some("a b="));
        assert_eq!(unescape("%zz", false), None);
        assert_eq!(unescape("%4", false), None);
        let (pairs, bad) = parse_query("a=1&b&c=%3&d;e=2&f=x=y");
        assert!(bad);
        assert_eq!(
            pairs,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new()),
                ("f".to_string(), "x=y".to_string())
            ]
        );
        assert_eq!(
            field_exact_match("a\\,b=1,metadata.name=x\\=y", "metadata.name"),
            Ok(Some("x=y".into()))
        );
        assert_eq!(field_exact_match("metadata.name", "metadata.name"), Err(()));
        assert_eq!(field_exact_match("a=\\q", "a"), Err(()));
        assert_eq!(field_exact_match("", "a"), Ok(None));
    }
}
