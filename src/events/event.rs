//! One audit event (audit.k8s.io/v1 `Event`), borrowed from its line.
//!
//! Only the fields a question can ask about are decoded; the request and
//! response bodies and the annotations are skipped by serde without being
//! built. Strings borrow from the line unless they hold an escape.

use std::borrow::Cow;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Event<'a> {
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub level: Cow<'a, str>,
    #[serde(borrow, default, rename = "auditID")]
    pub audit_id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub stage: Cow<'a, str>,
    #[serde(borrow, default, rename = "requestURI")]
    pub request_uri: Cow<'a, str>,
    #[serde(borrow, default)]
    pub verb: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user: User<'a>,
    #[serde(borrow, default, rename = "impersonatedUser")]
    pub impersonated_user: Option<User<'a>>,
    #[serde(borrow, default, rename = "sourceIPs")]
    pub source_ips: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "userAgent")]
    pub user_agent: Cow<'a, str>,
    #[serde(borrow, default, rename = "objectRef")]
    pub object_ref: Option<ObjectRef<'a>>,
    #[serde(default, rename = "responseStatus")]
    pub response_status: Option<Status>,
    #[serde(borrow, default, rename = "requestReceivedTimestamp")]
    pub request_received: Cow<'a, str>,
    #[serde(borrow, default, rename = "stageTimestamp")]
    pub stage_timestamp: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ObjectRef<'a> {
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default, rename = "apiGroup")]
    pub api_group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub subresource: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub code: Option<i64>,
}

/// How an empty user object (a failed authentication) is shown and counted.
pub const NO_USER: &str = "(none)";

impl<'a> Event<'a> {
    /// Decodes a line; `None` for what is not JSON or not an audit Event.
    pub fn parse(line: &'a [u8]) -> Option<Event<'a>> {
        let e: Event = serde_json::from_slice(line).ok()?;
        (e.kind == "Event").then_some(e)
    }

    pub fn username(&self) -> &str {
        if self.user.username.is_empty() {
            NO_USER
        } else {
            &self.user.username
        }
    }

    pub fn code(&self) -> Option<i64> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    fn object(&self) -> Option<&ObjectRef<'a>> {
        self.object_ref.as_ref()
    }

    pub fn resource(&self) -> &str {
        self.object().map_or("", |o| &o.resource)
    }
    pub fn subresource(&self) -> &str {
        self.object().map_or("", |o| &o.subresource)
    }
    pub fn api_group(&self) -> &str {
        self.object().map_or("", |o| &o.api_group)
    }
    pub fn namespace(&self) -> &str {
        self.object().map_or("", |o| &o.namespace)
    }
    pub fn name(&self) -> &str {
        self.object().map_or("", |o| &o.name)
    }

    /// `[group/]resource[/subresource]`, or the request path for
    /// non-resource requests (`/healthz`).
    pub fn resource_label(&self) -> String {
        match self.object() {
            Some(o) if !o.resource.is_empty() => {
                let mut s = String::new();
                if !o.api_group.is_empty() {
                    s.push_str(&o.api_group);
                    s.push('/');
                }
                s.push_str(&o.resource);
                if !o.subresource.is_empty() {
                    s.push('/');
                    s.push_str(&o.subresource);
                }
                s
            }
            _ => self
                .request_uri
                .split('?')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"c8ae","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/dev/pods/web-1/exec?command=sh\u0026stdout=true","verb":"create","user":{"username":"bob","groups":["developers","system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"curl/7.88.1","objectRef":{"resource":"pods","namespace":"dev","name":"web-1","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":403},"responseObject":{"kind":"Status","code":403},"requestReceivedTimestamp":"2026-12-02T05:05:28.028281Z","stageTimestamp":"2026-12-02T05:05:28.028966Z","annotations":{"authorization.k8s.io/decision":"forbid"}}"#;

    #[test]
    fn decodes_the_fields_and_skips_the_bodies() {
        let e = Event::parse(EXEC.as_bytes()).unwrap();
        assert_eq!(e.username(), "bob");
        assert_eq!(e.user.groups, ["developers", "system:authenticated"]);
        assert_eq!(e.code(), Some(403));
        assert_eq!(e.resource_label(), "pods/exec");
        assert_eq!((e.namespace(), e.name()), ("dev", "web-1"));
        assert_eq!(e.stage_timestamp, "2026-12-02T05:05:28.028966Z");
    }

    #[test]
    fn an_empty_user_and_a_non_resource_request() {
        let l = r#"{"kind":"Event","level":"Metadata","verb":"get","requestURI":"/healthz?verbose","user":{}}"#;
        let e = Event::parse(l.as_bytes()).unwrap();
        assert_eq!(e.username(), NO_USER);
        assert_eq!(e.resource_label(), "/healthz");
        assert_eq!(e.code(), None);
    }

    #[test]
    fn not_an_event() {
        assert!(Event::parse(br#"{"kind":"EventList"}"#).is_none());
        assert!(Event::parse(br#"{"kind":"Event","#).is_none());
        assert!(Event::parse(b"I1202 05:05:00 klog line").is_none());
    }
}
