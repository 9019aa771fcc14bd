//! Audit policy loading as upstream 1.26+ does it (docs/reference.md, Policy loading), and
//! rule evaluation.
//!
//! Upstream's chain (`pkg/audit/policy/reader.go`), reproduced step by step:
//! 1. YAML → JSON the sigs.k8s.io/yaml way: duplicate keys keep the last value and
//!    object keys come out sorted (so unknown-field errors are in key order);
//! 2. read `apiVersion`/`kind`, defaulting missing parts from the internal type
//!    (`audit.k8s.io/__internal, Kind=Policy`);
//! 3. only `Policy` in `audit.k8s.io/v1` (or the internal version) is decodable;
//!    anything else is `no kind "Policy" is registered for version …`;
//! 4. strict decoding: unknown fields (`unknown field "rules[0].verb"`) and duplicate
//!    keys are *strict* errors, which upstream answers with a warning and lenient
//!    decoding; type errors are fatal (`failed decoding: json: cannot unmarshal …`);
//! 5. the group/version must be `audit.k8s.io/v1`;
//! 6. `ValidatePolicy` (all errors aggregated), then `loaded illegal policy with 0 rules`.
//!
//! Errors from 2–6 get `: from file PATH`; the caller prefixes `loading audit policy file: `.

use std::fmt;
use std::io::Read;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::gostr::{self, gosyntax_slice, quote};
use crate::validate::aggregate;

pub const STAGES: [&str; 4] = [
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];
pub const LEVELS: [&str; 4] = ["None", "Metadata", "Request", "RequestResponse"];

// ---------------------------------------------------------------------------
// 1. The YAML tree

/// A YAML node, as go-yaml would hand it to the JSON conversion.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order, duplicates kept, with the key's 1-based line.
    Map(Vec<(String, Node, u64)>),
}

impl Node {
    /// The JSON type name Go's decoder reports in `cannot unmarshal X into …`.
    fn json_kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "bool",
            Node::Int(_) | Node::Float(_) => "number",
            Node::Str(_) => "string",
            Node::Seq(_) => "array",
            Node::Map(_) => "object",
        }
    }

    /// Map entries as the JSON object would have them: last duplicate wins, keys sorted.
    fn json_entries(entries: &[(String, Node, u64)]) -> Vec<(&str, &Node)> {
        let mut out: Vec<(&str, &Node)> = Vec::new();
        for (k, v, _) in entries {
            if let Some(slot) = out.iter_mut().find(|(ek, _)| *ek == k.as_str()) {
                slot.1 = v;
            } else {
                out.push((k.as_str(), v));
            }
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }
}

fn key_text(n: &Node) -> Result<String, String> {
    Ok(match n {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Str(s) => s.clone(),
        Node::Seq(_) | Node::Map(_) => {
            return Err(
                "error converting YAML to JSON: unsupported map key of non-scalar type".into(),
            );
        }
    })
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or(Node::Float(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or(Node::Float(v as f64)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(i64::try_from(v)
            .map(Node::Int)
            .unwrap_or(Node::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Node>>()? {
            let v = map.next_value::<Node>()?;
            let key = key_text(&k.value).map_err(de::Error::custom)?;
            entries.push((key, v, k.referenced.line()));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Parses YAML text into a tree; the error is go-yaml-like (`yaml: line N: …`).
pub fn parse_yaml(text: &str) -> Result<Node, String> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(Node::Null);
    }
    let mut opts = Options::default();
    opts.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    opts.with_snippet = false;
    match serde_saphyr::from_str_with_options::<Node>(text, opts.clone()) {
        Ok(n) => Ok(n),
        Err(serde_saphyr::Error::MultipleDocuments { .. }) => {
            // go-yaml's Unmarshal reads the first document only.
            let docs: Vec<Node> = serde_saphyr::from_str_multiple_with_options(text, opts)
                .map_err(|e| yaml_error(&e))?;
            Ok(docs.into_iter().next().unwrap_or(Node::Null))
        }
        Err(e) => Err(yaml_error(&e)),
    }
}

fn yaml_error(e: &serde_saphyr::Error) -> String {
    let mut msg = e.to_string();
    // The message is serde-saphyr's; the frame is go-yaml's.
    if let Some(i) = msg.find(" at line ") {
        msg.truncate(i);
    }
    let msg = msg.lines().next().unwrap_or("").trim().to_string();
    // go-yaml's wording for the commonest mistakes (line numbers may still differ).
    let msg = if msg.contains("unclosed bracket '['") {
        "did not find expected ',' or ']'".to_string()
    } else if msg.contains("unclosed bracket '{'") {
        "did not find expected ',' or '}'".to_string()
    } else if msg.starts_with("tabs disallowed") {
        "found character that cannot start any token".to_string()
    } else if msg.contains("quoted scalar") {
        "found unexpected end of stream".to_string()
    } else {
        msg
    };
    match e.location() {
        Some(loc) => format!("yaml: line {}: {msg}", loc.line()),
        None => format!("yaml: {msg}"),
    }
}

// ---------------------------------------------------------------------------
// The policy types (audit.k8s.io/v1)

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupResources {
    pub group: String,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRule {
    pub level: String,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    pub omit_stages: Vec<String>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    pub omit_stages: Vec<String>,
    pub omit_managed_fields: bool,
}

/// The outcome of a load: the policy or upstream's error, and the strict-decoding
/// warning upstream logs (before any later failure), if any.
#[derive(Debug)]
pub struct Loaded {
    pub policy: Result<Policy, String>,
    pub warning: Option<String>,
}

// ---------------------------------------------------------------------------
// 2.–4. Decoding

const INTERNAL: &str = "__internal";
const GROUP: &str = "audit.k8s.io";
/// Where `runtime.NewScheme()` is called for `audit.Scheme` (names the scheme in errors).
const SCHEME_NAME: &str = "k8s.io/apiserver/pkg/audit/scheme.go:31";
const FIND_KIND_TYPE: &str = "struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }";

#[derive(Debug, Clone, PartialEq)]
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

impl Gvk {
    fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// `SimpleMetaFactory.Interpret` + `gvkWithDefaults(actual, internal Policy)`.
fn interpret(root: &Node) -> Result<Gvk, String> {
    let entries = match root {
        Node::Null => Vec::new(),
        Node::Map(e) => Node::json_entries(e),
        other => {
            return Err(format!(
                "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type {FIND_KIND_TYPE}",
                other.json_kind()
            ));
        }
    };
    let mut api_version = String::new();
    let mut kind = String::new();
    for (k, v) in entries {
        let slot = match k {
            "apiVersion" => &mut api_version,
            "kind" => &mut kind,
            _ => continue,
        };
        match v {
            Node::Str(s) => *slot = s.clone(),
            Node::Null => {}
            other => {
                return Err(format!(
                    "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go struct field .{k} of type string",
                    other.json_kind()
                ));
            }
        }
    }
    let (mut group, mut version) = match api_version.matches('/').count() {
        0 => (String::new(), api_version.clone()),
        1 => {
            let (g, v) = api_version.split_once('/').unwrap_or_default();
            (g.to_string(), v.to_string())
        }
        _ => return Err(format!("unexpected GroupVersion string: {api_version}")),
    };
    if kind.is_empty() {
        kind = "Policy".into();
    }
    if version.is_empty() && group.is_empty() {
        group = GROUP.into();
        version = INTERNAL.into();
    }
    if version.is_empty() && group == GROUP {
        version = INTERNAL.into();
    }
    Ok(Gvk {
        group,
        version,
        kind,
    })
}

/// Walks the JSON-shaped tree into the Go types, like sigs.k8s.io/json's strict mode:
/// unknown fields are collected, the first type error is kept.
#[derive(Default)]
struct Decoder {
    unknown: Vec<String>,
    type_error: Option<String>,
}

impl Decoder {
    fn type_err(&mut self, found: &Node, strukt: &str, field: &str, ty: &str) {
        if self.type_error.is_none() {
            self.type_error = Some(format!(
                "json: cannot unmarshal {} into Go struct field {strukt}.{field} of type {ty}",
                found.json_kind()
            ));
        }
    }

    fn string(&mut self, n: &Node, strukt: &str, field: &str, ty: &str) -> String {
        match n {
            Node::Str(s) => s.clone(),
            Node::Null => String::new(),
            other => {
                self.type_err(other, strukt, field, ty);
                String::new()
            }
        }
    }

    fn strings(&mut self, n: &Node, strukt: &str, field: &str, elem: &str) -> Vec<String> {
        match n {
            Node::Null => Vec::new(),
            Node::Seq(items) => items
                .iter()
                .map(|i| self.string(i, strukt, field, elem))
                .collect(),
            other => {
                self.type_err(other, strukt, field, &format!("[]{elem}"));
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, n: &Node, strukt: &str, field: &str) -> Option<bool> {
        match n {
            Node::Bool(b) => Some(*b),
            Node::Null => None,
            other => {
                self.type_err(other, strukt, field, "bool");
                None
            }
        }
    }

    /// Iterates an object's fields; a non-object is a type error against `ty`.
    fn object<'a>(
        &mut self,
        n: &'a Node,
        strukt: &str,
        field: &str,
        ty: &str,
    ) -> Vec<(&'a str, &'a Node)> {
        match n {
            Node::Map(e) => Node::json_entries(e),
            Node::Null => Vec::new(),
            other => {
                self.type_err(other, strukt, field, ty);
                Vec::new()
            }
        }
    }

    fn policy(&mut self, root: &Node) -> Policy {
        let mut p = Policy::default();
        let entries = match root {
            Node::Map(e) => Node::json_entries(e),
            _ => Vec::new(),
        };
        for (k, v) in entries {
            match k {
                "apiVersion" | "kind" => {}
                "metadata" => self.object_meta(v),
                "rules" => match v {
                    Node::Null => {}
                    Node::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let r = self.rule(item, &format!("rules[{i}]"));
                            p.rules.push(r);
                        }
                    }
                    other => self.type_err(other, "Policy", "rules", "[]v1.PolicyRule"),
                },
                "omitStages" => p.omit_stages = self.strings(v, "Policy", "omitStages", "v1.Stage"),
                "omitManagedFields" => {
                    p.omit_managed_fields = self
                        .boolean(v, "Policy", "omitManagedFields")
                        .unwrap_or(false)
                }
                other => self.unknown.push(other.to_string()),
            }
        }
        p
    }

    fn object_meta(&mut self, v: &Node) {
        const FIELDS: [&str; 15] = [
            "name",
            "generateName",
            "namespace",
            "selfLink",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ];
        for (k, _) in self.object(v, "Policy", "metadata", "v1.ObjectMeta") {
            if !FIELDS.contains(&k) {
                self.unknown.push(format!("metadata.{k}"));
            }
        }
    }

    fn rule(&mut self, n: &Node, path: &str) -> PolicyRule {
        let mut r = PolicyRule::default();
        const S: &str = "PolicyRule";
        for (k, v) in self.object(n, "Policy", "rules", "v1.PolicyRule") {
            let field = format!("rules.{k}");
            match k {
                "level" => r.level = self.string(v, S, &field, "v1.Level"),
                "users" => r.users = self.strings(v, S, &field, "string"),
                "userGroups" => r.user_groups = self.strings(v, S, &field, "string"),
                "verbs" => r.verbs = self.strings(v, S, &field, "string"),
                "namespaces" => r.namespaces = self.strings(v, S, &field, "string"),
                "nonResourceURLs" => r.non_resource_urls = self.strings(v, S, &field, "string"),
                "omitStages" => r.omit_stages = self.strings(v, S, &field, "v1.Stage"),
                "omitManagedFields" => r.omit_managed_fields = self.boolean(v, S, &field),
                "resources" => match v {
                    Node::Null => {}
                    Node::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let gr = self.group_resources(item, &format!("{path}.resources[{i}]"));
                            r.resources.push(gr);
                        }
                    }
                    other => self.type_err(other, S, &field, "[]v1.GroupResources"),
                },
                other => self.unknown.push(format!("{path}.{other}")),
            }
        }
        r
    }

    fn group_resources(&mut self, n: &Node, path: &str) -> GroupResources {
        let mut g = GroupResources::default();
        const S: &str = "GroupResources";
        for (k, v) in self.object(n, "PolicyRule", "rules.resources", "v1.GroupResources") {
            let field = format!("rules.resources.{k}");
            match k {
                "group" => g.group = self.string(v, S, &field, "string"),
                "resources" => g.resources = self.strings(v, S, &field, "string"),
                "resourceNames" => g.resource_names = self.strings(v, S, &field, "string"),
                other => self.unknown.push(format!("{path}.{other}")),
            }
        }
        g
    }
}

/// Duplicate keys anywhere in the tree, as go-yaml's strict mode reports them.
fn duplicate_keys(n: &Node, out: &mut Vec<String>) {
    match n {
        Node::Map(entries) => {
            for (i, (k, v, line)) in entries.iter().enumerate() {
                if entries[..i].iter().any(|(pk, _, _)| pk == k) {
                    out.push(format!(
                        "  line {line}: key {} already set in map",
                        quote(k)
                    ));
                }
                duplicate_keys(v, out);
            }
        }
        Node::Seq(items) => items.iter().for_each(|i| duplicate_keys(i, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// 6. ValidatePolicy (pkg/apis/audit/validation/validation.go)

/// `validation.IsDNS1123Subdomain` as apimachinery writes it: a length
/// check, then a match of the whole value against upstream's regular
/// expression (`dns1123SubdomainFmt`), its message built from the same
/// parts (`RegexError(msg, fmt, "example.com")`). The regular expression is
/// run by a regex engine, not reimplemented: kaudit-node's own check is a
/// hand-written scan, so the two can disagree and the tests see it.
fn dns1123_subdomain_errors(v: &str) -> Vec<String> {
    const LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    let fmt = format!("{LABEL}(\\.{LABEL})*");
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let whole = regex_lite::Regex::new(&format!("^{fmt}$")).expect("upstream's regex");
    if !whole.is_match(v) {
        errs.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{fmt}')"
        ));
    }
    errs
}

fn validate_omit_stages(stages: &[String], path: &str, errs: &mut Vec<String>) {
    for (i, s) in stages.iter().enumerate() {
        if !STAGES.contains(&s.as_str()) {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {}: allowed stages are {}",
                quote(s),
                STAGES.join(",")
            ));
        }
    }
}

/// All `field.ErrorList` messages of `ValidatePolicy`, in upstream's order.
pub fn validate_policy(p: &Policy) -> Vec<String> {
    let mut errs = Vec::new();
    validate_omit_stages(&p.omit_stages, "omitStages", &mut errs);
    for (i, r) in p.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        match r.level.as_str() {
            l if LEVELS.contains(&l) => {}
            "" => errs.push(format!("{path}.level: Required value")),
            l => errs.push(format!(
                "{path}.level: Unsupported value: {}: supported values: {}",
                quote(l),
                LEVELS
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        for (j, url) in r.non_resource_urls.iter().enumerate() {
            if url == "*" {
                continue;
            }
            if !url.starts_with('/') {
                errs.push(format!(
                    "{path}.nonResourceURLs[{j}]: Invalid value: {}: non-resource URL rules must begin with a '/' character",
                    quote(url)
                ));
            }
            if !url.is_empty() && url[..url.len() - 1].contains('*') {
                errs.push(format!(
                    "{path}.nonResourceURLs[{j}]: Invalid value: {}: non-resource URL wildcards '*' must be the final character of the rule",
                    quote(url)
                ));
            }
        }
        for gr in &r.resources {
            if !gr.group.is_empty() && gr.group != "*" {
                let msgs = dns1123_subdomain_errors(&gr.group);
                if !msgs.is_empty() {
                    errs.push(format!(
                        "{path}.resources.group: Invalid value: {}: {}",
                        quote(&gr.group),
                        msgs.join(",")
                    ));
                }
            }
            if !gr.resource_names.is_empty() && gr.resources.is_empty() {
                errs.push(format!(
                    "{path}.resources.resourceNames: Invalid value: {}: using resourceNames requires at least one resource",
                    gosyntax_slice(&gr.resource_names)
                ));
            }
        }
        validate_omit_stages(&r.omit_stages, &format!("{path}.omitStages"), &mut errs);
        if !r.non_resource_urls.is_empty() && (!r.resources.is_empty() || !r.namespaces.is_empty())
        {
            errs.push(format!(
                "{path}.nonResourceURLs: Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
                gosyntax_slice(&r.non_resource_urls)
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// LoadPolicyFromBytes / LoadPolicyFromFile

/// `LoadPolicyFromBytes`: errors are without the `: from file` suffix.
pub fn load_from_bytes(text: &str) -> Loaded {
    let mut warning = None;
    let policy = decode(text, &mut warning);
    Loaded { policy, warning }
}

fn decode(text: &str, warning: &mut Option<String>) -> Result<Policy, String> {
    let root = parse_yaml(text).map_err(|e| format!("failed decoding: {e}"))?;
    let gvk = interpret(&root).map_err(|e| format!("failed decoding: {e}"))?;
    let decodable = gvk.group == GROUP && (gvk.version == "v1" || gvk.version == INTERNAL);
    if !decodable || gvk.kind != "Policy" {
        let known_kind =
            ["Event", "EventList", "Policy", "PolicyList"].contains(&gvk.kind.as_str());
        if decodable && known_kind {
            let pkg = if gvk.version == INTERNAL {
                "audit"
            } else {
                "v1"
            };
            return Err(format!(
                "failed decoding: converting ({pkg}.{}) to (audit.Policy): unknown conversion",
                gvk.kind
            ));
        }
        return Err(format!(
            "failed decoding: no kind {} is registered for version {} in scheme {}",
            quote(&gvk.kind),
            quote(&gvk.group_version()),
            quote(SCHEME_NAME)
        ));
    }
    let mut dec = Decoder::default();
    let policy = dec.policy(&root);
    if let Some(e) = dec.type_error {
        return Err(format!("failed decoding: {e}"));
    }
    let mut strict: Vec<String> = dec
        .unknown
        .iter()
        .map(|f| format!("unknown field {}", quote(f)))
        .collect();
    let mut dups = Vec::new();
    duplicate_keys(&root, &mut dups);
    if !dups.is_empty() {
        strict.push(format!("yaml: unmarshal errors:\n{}", dups.join("\n")));
    }
    if !strict.is_empty() {
        *warning = Some(format!(
            "Audit policy contains errors, falling back to lenient decoding: strict decoding error: {}",
            strict.join(", ")
        ));
    }
    if gvk.version != "v1" {
        return Err(format!("unknown group version field {gvk} in policy"));
    }
    let errs = validate_policy(&policy);
    if !errs.is_empty() {
        return Err(aggregate(&errs));
    }
    if policy.rules.is_empty() {
        return Err("loaded illegal policy with 0 rules".into());
    }
    Ok(policy)
}

/// `LoadPolicyFromFile` as called by `newPolicyRuleEvaluator`: errors carry its
/// `loading audit policy file: ` prefix and `: from file PATH` suffix.
pub fn load_from_file(path: &str) -> Loaded {
    let fail = |e: String| Loaded {
        policy: Err(format!("loading audit policy file: {e}")),
        warning: None,
    };
    if path.is_empty() {
        return fail("file path not specified".into());
    }
    let read_err = |op: &str, e: &std::io::Error| {
        fail(format!(
            "failed to read file path {}: {}",
            quote(path),
            gostr::path_error(op, path, e)
        ))
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return read_err("open", &e),
    };
    let mut bytes = Vec::new();
    if let Err(e) = f.read_to_end(&mut bytes) {
        return read_err("read", &e);
    }
    let mut loaded = load_from_bytes(&String::from_utf8_lossy(&bytes));
    loaded.policy = loaded
        .policy
        .map_err(|e| format!("loading audit policy file: {e}: from file {path}"));
    loaded
}

// ---------------------------------------------------------------------------
// Evaluation (pkg/audit/policy/checker.go)

/// What the policy checker looks at in a request.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// No user at all: the request failed authentication (`WithFailedAuthenticationAudit`
    /// evaluates the policy with a nil user), so rules with `users` or `userGroups` never
    /// match.
    pub no_user: bool,
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

/// The decision for one request: level, and stages to omit (policy + rule).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub level: String,
    pub omit_stages: Vec<String>,
}

fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}

fn rule_matches_resource(r: &PolicyRule, a: &Attributes) -> bool {
    if !a.resource_request {
        return false;
    }
    if !r.namespaces.is_empty() && !r.namespaces.contains(&a.namespace) {
        return false;
    }
    if r.resources.is_empty() {
        return true;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    for gr in &r.resources {
        if gr.group != a.api_group && gr.group != "*" {
            continue;
        }
        if gr.resources.is_empty() {
            return true;
        }
        for res in &gr.resources {
            if !gr.resource_names.is_empty() && !gr.resource_names.contains(&a.name) {
                continue;
            }
            if *res == combined || res == "*" {
                return true;
            }
            if !a.subresource.is_empty() && res.strip_prefix("*/") == Some(a.subresource.as_str()) {
                return true;
            }
            if res.strip_suffix("/*") == Some(a.resource.as_str()) {
                return true;
            }
        }
    }
    false
}

fn rule_matches(r: &PolicyRule, a: &Attributes) -> bool {
    if !r.users.is_empty() && (a.no_user || !r.users.contains(&a.user)) {
        return false;
    }
    if !r.user_groups.is_empty()
        && (a.no_user || !a.groups.iter().any(|g| r.user_groups.contains(g)))
    {
        return false;
    }
    if !r.verbs.is_empty() && !r.verbs.contains(&a.verb) {
        return false;
    }
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        return rule_matches_resource(r, a);
    }
    if !r.non_resource_urls.is_empty() {
        return !a.resource_request && r.non_resource_urls.iter().any(|s| path_matches(&a.path, s));
    }
    true
}

impl Policy {
    /// `EvaluatePolicyRule`: the first matching rule wins; no match is level None.
    pub fn evaluate(&self, a: &Attributes) -> Decision {
        for r in &self.rules {
            if rule_matches(r, a) {
                let mut omit = self.omit_stages.clone();
                for s in &r.omit_stages {
                    if !omit.contains(s) {
                        omit.push(s.clone());
                    }
                }
                return Decision {
                    level: r.level.clone(),
                    omit_stages: omit,
                };
            }
        }
        Decision {
            level: "None".into(),
            omit_stages: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Policy, String> {
        load_from_bytes(text).policy
    }

    fn warn(text: &str) -> Option<String> {
        let l = load_from_bytes(text);
        assert!(l.policy.is_ok(), "{:?}", l.policy);
        l.warning
    }

    const HEAD: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

    #[test]
    fn metadata_policy_loads() {
        assert!(warn(&format!("{HEAD}rules:\n- level: Metadata\n")).is_none());
        let p = load(&format!("{HEAD}rules:\n- level: Metadata\n")).unwrap();
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.rules[0].level, "Metadata");
    }

    #[test]
    fn kind_may_be_omitted() {
        let p = load("apiVersion: audit.k8s.io/v1\nrules:\n- level: Metadata\n").unwrap();
        assert_eq!(p.rules.len(), 1);
    }

    #[test]
    fn unknown_fields_fall_back_to_lenient_decoding() {
        let text = format!("{HEAD}rules:\n- level: Metadata\n  verb: [get]\n");
        assert_eq!(
            warn(&text).as_deref(),
            Some(
                "Audit policy contains errors, falling back to lenient decoding: strict decoding error: unknown field \"rules[0].verb\""
            )
        );
        assert!(
            load(&text).unwrap().rules[0].verbs.is_empty(),
            "the rule now matches every verb"
        );

        let w = warn(&format!(
            "{HEAD}omitStage: [RequestReceived]\nrules:\n- level: Metadata\n"
        ));
        assert!(w.unwrap().ends_with("unknown field \"omitStage\""));

        let w = warn(&format!(
            "{HEAD}rules:\n- level: Request\n  resources:\n  - group: \"\"\n    resource: [pods]\n"
        ));
        assert!(
            w.unwrap()
                .ends_with("unknown field \"rules[0].resources[0].resource\"")
        );
    }

    #[test]
    fn several_unknown_fields_in_key_order() {
        let w = warn(&format!(
            "{HEAD}rules:\n- verb: [get]\n  level: None\n  omitStage: [Panic]\n"
        ));
        assert!(w.unwrap().ends_with(
            "strict decoding error: unknown field \"rules[0].omitStage\", unknown field \"rules[0].verb\""
        ));
    }

    #[test]
    fn mis_indented_verbs_like_upstream_test() {
        // reader_test.go TestParsePolicyWithUnknownField: loads without error.
        let text = format!(
            "{HEAD}rules:\n  - level: Request\n    resources:\n    - group: \"\"\n      resources: [\"pods\"]\n      verbs: [\"get\"]\n"
        );
        assert!(
            warn(&text)
                .unwrap()
                .contains("unknown field \"rules[0].resources[0].verbs\"")
        );
    }

    #[test]
    fn duplicate_keys_are_strict_errors() {
        let text = format!("{HEAD}rules:\n- level: None\n  level: Metadata\n");
        assert_eq!(
            load(&text).unwrap().rules[0].level,
            "Metadata",
            "last key wins"
        );
        assert!(warn(&text).unwrap().ends_with(
            "strict decoding error: yaml: unmarshal errors:\n  line 5: key \"level\" already set in map"
        ));
    }

    #[test]
    fn warning_is_kept_when_loading_fails_later() {
        let l = load_from_bytes("kind: Policy\nrules:\n- level: Metadata\n  verb: [get]\n");
        assert!(l.policy.is_err());
        assert!(l.warning.is_some());
    }

    #[test]
    fn errors_recorded_from_real_apiservers() {
        assert_eq!(
            load(&format!("{HEAD}rules:\n- level: Everything\n")).unwrap_err(),
            "rules[0].level: Unsupported value: \"Everything\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\""
        );
        assert!(
            load(&format!("{HEAD}rules:\n- level: metadata\n"))
                .unwrap_err()
                .contains("Unsupported value: \"metadata\"")
        );
        assert_eq!(
            load(&format!("{HEAD}rules: []\n")).unwrap_err(),
            "loaded illegal policy with 0 rules"
        );
        assert_eq!(
            load("kind: Policy\nrules:\n- level: Metadata\n").unwrap_err(),
            "unknown group version field audit.k8s.io/__internal, Kind=Policy in policy"
        );
        assert_eq!(
            load("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n")
                .unwrap_err(),
            "failed decoding: no kind \"Policy\" is registered for version \"audit.k8s.io/v1beta1\" in scheme \"k8s.io/apiserver/pkg/audit/scheme.go:31\""
        );
        assert_eq!(
            load(&format!(
                "{HEAD}omitStages: [RequestReceived, Bogus]\nrules:\n- level: Metadata\n"
            ))
            .unwrap_err(),
            "omitStages[1]: Invalid value: \"Bogus\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"
        );
        let broken = load(&format!(
            "{HEAD}rules:\n- level: Metadata\n  verbs: [get, list\n"
        ))
        .unwrap_err();
        assert!(
            broken.starts_with("failed decoding: yaml: line "),
            "{broken}"
        );
    }

    #[test]
    fn required_level_and_aggregate() {
        assert_eq!(
            load(&format!("{HEAD}rules:\n- verbs: [get]\n")).unwrap_err(),
            "rules[0].level: Required value"
        );
        assert_eq!(
            load(&format!(
                "{HEAD}rules:\n- level: X\n- omitStages: [Bogus]\n"
            ))
            .unwrap_err(),
            "[rules[0].level: Unsupported value: \"X\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\", rules[1].level: Required value, rules[1].omitStages[0]: Invalid value: \"Bogus\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic]"
        );
    }

    #[test]
    fn rule_shape_checks() {
        assert_eq!(
            load(&format!(
                "{HEAD}rules:\n- level: None\n  nonResourceURLs: [/healthz]\n  namespaces: [x]\n"
            ))
            .unwrap_err(),
            "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs"
        );
        assert_eq!(
            load(&format!(
                "{HEAD}rules:\n- level: None\n  nonResourceURLs: [healthz]\n"
            ))
            .unwrap_err(),
            "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character"
        );
        assert_eq!(
            load(&format!(
                "{HEAD}rules:\n- level: None\n  nonResourceURLs: [/a*/b]\n"
            ))
            .unwrap_err(),
            "rules[0].nonResourceURLs[0]: Invalid value: \"/a*/b\": non-resource URL wildcards '*' must be the final character of the rule"
        );
        let e = load(&format!(
            "{HEAD}rules:\n- level: None\n  resources:\n  - group: rbac.authorization.k8s.io/v1\n"
        ))
        .unwrap_err();
        // apimachinery's message, written out whole (not built as the code
        // builds it).
        assert_eq!(
            e,
            "rules[0].resources.group: Invalid value: \"rbac.authorization.k8s.io/v1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        for ok in ["apps", "rbac.authorization.k8s.io", "a-b.c1"] {
            assert!(dns1123_subdomain_errors(ok).is_empty(), "{ok}");
        }
        for bad in ["-a", "a-", "A", "a..b", "a/b", "a_b", ".a"] {
            assert_eq!(dns1123_subdomain_errors(bad).len(), 1, "{bad}");
        }
        assert_eq!(dns1123_subdomain_errors(&"a".repeat(254)).len(), 1);
        assert_eq!(
            load(&format!(
                "{HEAD}rules:\n- level: None\n  resources:\n  - resourceNames: [x]\n"
            ))
            .unwrap_err(),
            "rules[0].resources.resourceNames: Invalid value: []string{\"x\"}: using resourceNames requires at least one resource"
        );
        assert!(
            load(&format!(
                "{HEAD}rules:\n- level: None\n  resources:\n  - group: \"*\"\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn type_errors_are_fatal() {
        assert_eq!(
            load(&format!("{HEAD}rules:\n- level: Metadata\n  verbs: get\n")).unwrap_err(),
            "failed decoding: json: cannot unmarshal string into Go struct field PolicyRule.rules.verbs of type []string"
        );
        assert_eq!(
            load(&format!("{HEAD}rules: x\n")).unwrap_err(),
            "failed decoding: json: cannot unmarshal string into Go struct field Policy.rules of type []v1.PolicyRule"
        );
    }

    #[test]
    fn empty_file_is_refused() {
        assert!(load("").is_err());
        assert!(load("# only a comment\n").is_err());
    }

    #[test]
    fn missing_file_message() {
        let e = load_from_file("/nonexistent/policy.yaml")
            .policy
            .unwrap_err();
        assert_eq!(
            e,
            "loading audit policy file: failed to read file path \"/nonexistent/policy.yaml\": open /nonexistent/policy.yaml: no such file or directory"
        );
    }

    fn attrs(user: &str, verb: &str, ns: &str, resource: &str) -> Attributes {
        Attributes {
            user: user.into(),
            groups: vec!["system:masters".into()],
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            resource: resource.into(),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = load(&format!(
            "{HEAD}omitStages: [RequestReceived]\nrules:\n\
             - level: None\n  users: [system:kube-proxy]\n\
             - level: RequestResponse\n  resources:\n  - group: \"\"\n    resources: [\"pods/log\"]\n\
             - level: Request\n  verbs: [update]\n  omitStages: [Panic]\n\
             - level: None\n  nonResourceURLs: [/livez*, /readyz]\n\
             - level: Metadata\n"
        ))
        .unwrap();
        assert_eq!(
            p.evaluate(&attrs("system:kube-proxy", "list", "", "pods"))
                .level,
            "None"
        );
        let mut a = attrs("u", "get", "default", "pods");
        a.subresource = "log".into();
        assert_eq!(p.evaluate(&a).level, "RequestResponse");
        let d = p.evaluate(&attrs("u", "update", "kube-system", "leases"));
        assert_eq!(d.level, "Request");
        assert_eq!(
            d.omit_stages,
            vec!["RequestReceived".to_string(), "Panic".to_string()]
        );
        let probe = Attributes {
            verb: "get".into(),
            path: "/livez".into(),
            ..Default::default()
        };
        assert_eq!(p.evaluate(&probe).level, "None");
        assert_eq!(
            p.evaluate(&attrs("u", "list", "default", "pods")).level,
            "Metadata"
        );
        // Like upstream, "pods/*" matches pods itself as well as its subresources.
        let star = load(&format!(
            "{HEAD}rules:\n- level: Request\n  resources:\n  - resources: [\"pods/*\"]\n"
        ))
        .unwrap();
        assert_eq!(
            star.evaluate(&attrs("u", "list", "default", "pods")).level,
            "Request"
        );
        // go-yaml 1.1 semantics: an unquoted `Y` is a boolean, so it is a type error.
        assert!(
            load(&format!("{HEAD}rules:\n- level: None\n  omitStages: [Y]\n"))
                .unwrap_err()
                .starts_with("failed decoding: json: cannot unmarshal bool")
        );
        let empty = Policy::default();
        assert_eq!(empty.evaluate(&probe).level, "None");
    }
}
