//! What `events` selects: the command line's filters, checked on a decoded
//! event, and the byte screen that lets most lines skip decoding at all.
//!
//! Filters of different kinds combine with AND, values of one kind with OR.
//! The screen ([`Filter::may_match`]) is only a shortcut: every line that
//! passes it is decoded and checked exactly by [`Filter::matches`].

use memchr::memmem::Finder;

use crate::cli::EventsArgs;
use crate::config::GoDuration;
use crate::events::event::Event;

/// The verbs that change something: the RBAC question's writes.
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
/// The subresources of `--exec`: a shell, an attached terminal, a tunnel.
const EXEC_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const ANONYMOUS: &str = "system:anonymous";
/// API groups whose names have no dot, so that `apps/deployments` reads
/// as a group and a resource, not as a resource and a subresource.
const DOTLESS_GROUPS: [&str; 5] = ["apps", "batch", "autoscaling", "policy", "extensions"];

/// The named questions of the guides' jq recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    Secrets,
    Exec,
    Rbac,
    Denied,
    Anonymous,
}

impl Question {
    fn matches(self, e: &Event) -> bool {
        match self {
            Question::Secrets => e.resource() == "secrets",
            Question::Exec => {
                e.resource() == "pods" && EXEC_SUBRESOURCES.contains(&e.subresource())
            }
            Question::Rbac => e.api_group() == RBAC_GROUP && WRITES.contains(&&*e.verb),
            Question::Denied => matches!(e.code(), Some(401 | 403)),
            Question::Anonymous => e.user.username == ANONYMOUS,
        }
    }

    /// Values of which a matching line holds at least one, as JSON strings
    /// or numbers.
    fn needles(self) -> Vec<String> {
        match self {
            Question::Secrets => vec![quoted("secrets")],
            Question::Exec => EXEC_SUBRESOURCES.iter().map(|s| quoted(s)).collect(),
            Question::Rbac => vec![quoted(RBAC_GROUP)],
            Question::Denied => vec!["401".into(), "403".into()],
            Question::Anonymous => vec![quoted(ANONYMOUS)],
        }
    }
}

/// `[group/]resource[/subresource]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSel {
    pub group: Option<String>,
    pub resource: String,
    pub subresource: Option<String>,
}

impl ResourceSel {
    pub fn parse(s: &str) -> Result<ResourceSel, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("--resource {s:?}: expected [group/]resource[/subresource]");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let own = |p: &str| Some(p.to_string());
        Ok(match parts[..] {
            [r] => ResourceSel {
                group: None,
                resource: r.into(),
                subresource: None,
            },
            [g, r] if g.contains('.') || DOTLESS_GROUPS.contains(&g) => ResourceSel {
                group: own(g),
                resource: r.into(),
                subresource: None,
            },
            [r, sub] => ResourceSel {
                group: None,
                resource: r.into(),
                subresource: own(sub),
            },
            [g, r, sub] => ResourceSel {
                group: own(g),
                resource: r.into(),
                subresource: own(sub),
            },
            _ => return Err(bad()),
        })
    }

    fn matches(&self, e: &Event) -> bool {
        e.resource() == self.resource
            && self.group.as_deref().is_none_or(|g| e.api_group() == g)
            && self
                .subresource
                .as_deref()
                .is_none_or(|s| e.subresource() == s)
    }
}

/// A response code, or a class of them (`4xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSel {
    lo: i64,
    hi: i64,
}

impl CodeSel {
    pub fn parse(s: &str) -> Result<CodeSel, String> {
        let b = s.as_bytes();
        let bad = || format!("--code {s:?}: expected a code (403) or a class (4xx)");
        if b.len() != 3 || !(b'1'..=b'5').contains(&b[0]) {
            return Err(bad());
        }
        if s[1..].eq_ignore_ascii_case("xx") {
            let lo = i64::from(b[0] - b'0') * 100;
            return Ok(CodeSel { lo, hi: lo + 99 });
        }
        let code: i64 = s.parse().map_err(|_| bad())?;
        Ok(CodeSel { lo: code, hi: code })
    }

    fn matches(self, code: Option<i64>) -> bool {
        code.is_some_and(|c| (self.lo..=self.hi).contains(&c))
    }

    fn needle(self) -> Option<String> {
        (self.lo == self.hi).then(|| self.lo.to_string())
    }
}

/// A point in time, kept also as the text kube-apiserver writes
/// (`metav1.MicroTime`: UTC, six fractional digits, `Z`), so that most
/// events compare as strings, without parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub at: jiff::Timestamp,
    pub text: String,
}

impl Bound {
    /// RFC 3339, or a Go duration before `now`.
    pub fn parse(flag: &str, s: &str, now: jiff::Timestamp) -> Result<Bound, String> {
        let at = match GoDuration::parse(s) {
            Ok(d) => jiff::SignedDuration::try_from(d.as_std())
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .ok_or_else(|| format!("{flag} {s:?}: too long ago"))?,
            Err(_) => s.parse::<jiff::Timestamp>().map_err(|e| {
                format!("{flag} {s:?}: expected RFC 3339 (2026-12-02T05:00:00Z) or a duration (15m): {e}")
            })?,
        };
        Ok(Bound {
            at,
            text: micro_time(at),
        })
    }
}

/// `metav1.MicroTime`'s text for `t`.
pub fn micro_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Whether `ts` is in `metav1.MicroTime`'s form, where string order is
/// time order.
fn is_micro_time(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 27 && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z'
}

/// `ts` compared with `b`; `None` when `ts` is not a time.
fn compare(ts: &str, b: &Bound) -> Option<std::cmp::Ordering> {
    if is_micro_time(ts) {
        return Some(ts.cmp(b.text.as_str()));
    }
    ts.parse::<jiff::Timestamp>().ok().map(|t| t.cmp(&b.at))
}

/// The selection of one `events` run.
#[derive(Default)]
pub struct Filter {
    pub since: Option<Bound>,
    pub until: Option<Bound>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<ResourceSel>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
    pub codes: Vec<CodeSel>,
    pub levels: Vec<String>,
    pub stages: Vec<String>,
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub questions: Vec<Question>,
    /// For each filter, needles of which a matching line holds one.
    screen: Vec<Vec<Finder<'static>>>,
}

fn any_or_empty<T>(v: &[T], f: impl Fn(&T) -> bool) -> bool {
    v.is_empty() || v.iter().any(f)
}

impl Filter {
    pub fn from_args(a: &EventsArgs, now: jiff::Timestamp) -> Result<Filter, String> {
        let questions = [
            (a.secrets, Question::Secrets),
            (a.exec, Question::Exec),
            (a.rbac, Question::Rbac),
            (a.denied, Question::Denied),
            (a.anonymous, Question::Anonymous),
        ]
        .into_iter()
        .filter_map(|(on, q)| on.then_some(q))
        .collect();
        let mut f = Filter {
            since: a
                .since
                .as_deref()
                .map(|s| Bound::parse("--since", s, now))
                .transpose()?,
            until: a
                .until
                .as_deref()
                .map(|s| Bound::parse("--until", s, now))
                .transpose()?,
            users: a.user.clone(),
            groups: a.group.clone(),
            verbs: a.verb.clone(),
            resources: a
                .resource
                .iter()
                .map(|r| ResourceSel::parse(r))
                .collect::<Result<_, _>>()?,
            namespaces: a.namespace.clone(),
            names: a.name.clone(),
            codes: a
                .code
                .iter()
                .map(|c| CodeSel::parse(c))
                .collect::<Result<_, _>>()?,
            levels: a.level.clone(),
            stages: a.stage.clone(),
            source_ips: a.source_ip.clone(),
            user_agents: a.user_agent.clone(),
            questions,
            screen: Vec::new(),
        };
        if let (Some(s), Some(u)) = (&f.since, &f.until)
            && s.at >= u.at
        {
            return Err(format!(
                "--since {} is not before --until {}",
                s.text, u.text
            ));
        }
        f.build_screen();
        Ok(f)
    }

    /// The needles of each filter whose values are all literal.
    fn build_screen(&mut self) {
        let lits = |v: &[String]| -> Option<Vec<String>> {
            (!v.is_empty() && v.iter().all(|s| !crate::glob::has_wildcards(s)))
                .then(|| v.iter().map(|s| quoted(s)).collect())
        };
        let mut sets: Vec<Option<Vec<String>>> = vec![
            lits(&self.users),
            lits(&self.groups),
            lits(&self.verbs),
            lits(&self.namespaces),
            lits(&self.names),
            lits(&self.levels),
            lits(&self.stages),
            lits(&self.source_ips),
            (!self.resources.is_empty())
                .then(|| self.resources.iter().map(|r| quoted(&r.resource)).collect()),
            (!self.codes.is_empty())
                .then(|| self.codes.iter().map(|c| c.needle()).collect())
                .flatten(),
        ];
        sets.extend(self.questions.iter().map(|q| Some(q.needles())));
        self.screen = sets
            .into_iter()
            .flatten()
            // A needle is only sound when the apiserver writes the value
            // as it is: Go's encoder escapes `"`, `\`, control characters,
            // `<`, `>`, `&`, U+2028 and U+2029.
            .filter(|set| set.iter().all(|n| written_as_is(n.trim_matches('"'))))
            .map(|set| {
                set.into_iter()
                    .map(|n| Finder::new(n.as_bytes()).into_owned())
                    .collect()
            })
            .collect();
    }

    /// Whether `line` can match: it holds a needle of every screened
    /// filter. False only when it cannot.
    pub fn may_match(&self, line: &[u8]) -> bool {
        self.screen
            .iter()
            .all(|set| set.iter().any(|f| f.find(line).is_some()))
    }

    /// Whether the event needs decoding at all: no filter and no output
    /// that reads it (a plain `--count`).
    pub fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.until.is_none()
            && self.users.is_empty()
            && self.groups.is_empty()
            && self.verbs.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.names.is_empty()
            && self.codes.is_empty()
            && self.levels.is_empty()
            && self.stages.is_empty()
            && self.source_ips.is_empty()
            && self.user_agents.is_empty()
            && self.questions.is_empty()
    }

    /// Whether `e` is selected.
    pub fn matches(&self, e: &Event) -> bool {
        let ts = &*e.stage_timestamp;
        self.questions.iter().all(|q| q.matches(e))
            && any_or_empty(&self.verbs, |v| *v == e.verb)
            && any_or_empty(&self.codes, |c| c.matches(e.code()))
            && any_or_empty(&self.resources, |r| r.matches(e))
            && any_or_empty(&self.namespaces, |n| n == e.namespace())
            && any_or_empty(&self.names, |n| n == e.name())
            && any_or_empty(&self.levels, |l| *l == e.level)
            && any_or_empty(&self.stages, |s| *s == e.stage)
            && any_or_empty(&self.users, |u| {
                crate::glob::matches_text(u, &e.user.username)
            })
            && any_or_empty(&self.groups, |g| e.user.groups.iter().any(|x| x == g))
            && any_or_empty(&self.source_ips, |ip| e.source_ips.iter().any(|x| x == ip))
            && any_or_empty(&self.user_agents, |a| {
                crate::glob::matches_text(a, &e.user_agent)
            })
            && self
                .since
                .as_ref()
                .is_none_or(|b| compare(ts, b).is_some_and(|o| o.is_ge()))
            && self
                .until
                .as_ref()
                .is_none_or(|b| compare(ts, b).is_some_and(|o| o.is_lt()))
    }
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// Whether Go's encoding/json writes `s` byte for byte (no escape).
fn written_as_is(s: &str) -> bool {
    !s.chars().any(|c| {
        matches!(c, '"' | '\\' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}') || (c as u32) < 0x20
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn filter(args: &[&str]) -> Filter {
        let cli =
            crate::cli::Cli::try_parse_from(["kaudit-node", "events"].iter().chain(args.iter()))
                .unwrap();
        let crate::cli::Command::Events(a) = cli.command else {
            unreachable!()
        };
        Filter::from_args(&a, "2026-12-02T06:00:00Z".parse().unwrap()).unwrap()
    }

    const LINE: &str = r#"{"kind":"Event","level":"Metadata","auditID":"1","stage":"ResponseComplete","verb":"get","user":{"username":"bob","groups":["developers"]},"sourceIPs":["10.0.0.5"],"userAgent":"kubectl/v1.32.0 (linux/amd64)","objectRef":{"resource":"secrets","namespace":"prod","name":"db","apiVersion":"v1"},"responseStatus":{"code":403},"stageTimestamp":"2026-12-02T05:30:00.000001Z"}"#;

    fn selects(args: &[&str]) -> bool {
        let f = filter(args);
        let e = Event::parse(LINE.as_bytes()).unwrap();
        let exact = f.matches(&e);
        // The screen never drops what matches.
        assert!(!exact || f.may_match(LINE.as_bytes()), "{args:?}");
        exact
    }

    #[test]
    fn each_filter_selects_and_refuses() {
        for (yes, no) in [
            (&["--secrets"][..], &["--exec"][..]),
            (&["--denied"], &["--code", "2xx"]),
            (&["--code", "4xx"], &["--code", "401"]),
            (&["--user", "bo*"], &["--user", "alice"]),
            (&["--group", "developers"], &["--group", "system:masters"]),
            (&["--verb", "list,get"], &["--verb", "list"]),
            (&["--resource", "secrets"], &["--resource", "apps/secrets"]),
            (
                &["--resource", "secrets"],
                &["--resource", "secrets/status"],
            ),
            (&["--namespace", "prod"], &["--namespace", "dev"]),
            (&["--name", "db"], &["--name", "web"]),
            (&["--level", "Metadata"], &["--level", "Request"]),
            (
                &["--stage", "ResponseComplete"],
                &["--stage", "ResponseStarted"],
            ),
            (&["--source-ip", "10.0.0.5"], &["--source-ip", "10.0.0.6"]),
            (&["--user-agent", "kubectl/*"], &["--user-agent", "curl/*"]),
            (
                &["--since", "2026-12-02T05:30:00.000001Z"],
                &["--since", "29m"],
            ),
            (
                &["--until", "29m"],
                &["--until", "2026-12-02T05:30:00.000001Z"],
            ),
            (&["--since", "2026-12-02T06:29:00+01:00"], &["--rbac"]),
        ] {
            assert!(selects(yes), "{yes:?} should select");
            assert!(!selects(no), "{no:?} should not select");
        }
        assert!(!selects(&["--secrets", "--anonymous"]), "AND across kinds");
    }

    #[test]
    fn resources_read_as_upstream_names_them() {
        let r = |s| ResourceSel::parse(s).unwrap();
        assert_eq!(r("pods/exec").subresource.as_deref(), Some("exec"));
        assert_eq!(r("apps/deployments").group.as_deref(), Some("apps"));
        assert_eq!(
            r("rbac.authorization.k8s.io/roles").group.as_deref(),
            Some("rbac.authorization.k8s.io")
        );
        assert_eq!(
            r("apps/deployments/scale").subresource.as_deref(),
            Some("scale")
        );
        assert!(ResourceSel::parse("a//b").is_err());
        assert!(ResourceSel::parse("a/b/c/d").is_err());
        assert!(CodeSel::parse("4x").is_err());
        assert!(CodeSel::parse("999").is_err());
    }

    #[test]
    fn the_screen_is_skipped_for_values_go_escapes() {
        let f = filter(&["--user", "a&b"]);
        assert!(f.may_match(br#"{"user":{"username":"a\u0026b"}}"#));
        let f = filter(&["--user", "alice"]);
        assert!(!f.may_match(br#"{"user":{"username":"bob"}}"#));
    }

    #[test]
    fn times() {
        let now = "2026-12-02T06:00:00Z".parse().unwrap();
        let b = Bound::parse("--since", "90s", now).unwrap();
        assert_eq!(b.text, "2026-12-02T05:58:30.000000Z");
        assert!(Bound::parse("--since", "yesterday", now).is_err());
        let e = |ts: &str| compare(ts, &b);
        assert!(e("2026-12-02T05:58:30.000001Z").unwrap().is_gt());
        assert!(e("2026-12-02T06:58:31+01:00").unwrap().is_gt());
        assert!(e("not a time").is_none());
    }
}
