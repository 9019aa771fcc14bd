//! Strict decoding of the YAML tree into the policy model.
//!
//! Upstream (since 1.26) decodes strictly first and, when that fails only on
//! unknown or duplicate fields, retries leniently and merely logs a warning:
//! a typo such as `verb:` is dropped and the rule silently widens. Here both
//! are errors, with a "did you mean" suggestion. Wrong types (a string where
//! a list is expected, `no` where a string is expected) are decode errors
//! upstream too (the apiserver refuses to start), and they are here.
//!
//! The model keeps what the lenient upstream decoder would keep (unknown
//! fields dropped, the last of duplicate fields wins), so the lints see the
//! rules the apiserver would actually run. A rule with a type error cannot
//! be loaded at all; it is marked `tainted` and the lints skip it.

use super::yaml::{Kind, Node, Pos, ScalarType};
use super::{Diagnostic, quote};
use crate::suggest::closest;
use std::collections::HashMap;

/// A value with the position of its text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// Position of the root mapping.
    pub pos: Pos,
    pub api_version: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    /// Position of the `rules` key, if present.
    pub rules_pos: Option<Pos>,
    pub rules: Vec<Rule>,
    pub omit_stages: Vec<Spanned<String>>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct Rule {
    pub index: usize,
    pub pos: Pos,
    /// The rule could not be decoded (type error): upstream refuses it, and
    /// the lints skip it.
    pub tainted: bool,
    /// The item was a mapping (otherwise there is nothing to validate).
    pub is_map: bool,
    /// `level` was present but not a string (already reported).
    pub level_error: bool,
    pub level: Option<Spanned<String>>,
    pub users: Vec<Spanned<String>>,
    pub user_groups: Vec<Spanned<String>>,
    pub verbs: Vec<Spanned<String>>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<Spanned<String>>,
    pub non_resource_urls: Vec<Spanned<String>>,
    /// Position of the `nonResourceURLs` key.
    pub non_resource_urls_pos: Option<Pos>,
    pub omit_stages: Vec<Spanned<String>>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupResources {
    pub index: usize,
    pub pos: Pos,
    pub group: Spanned<String>,
    pub resources: Vec<Spanned<String>>,
    pub resource_names: Vec<Spanned<String>>,
    /// Position of the `resourceNames` key.
    pub resource_names_pos: Option<Pos>,
}

pub(crate) const TOP_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "rules",
    "omitStages",
    "omitManagedFields",
];
pub(crate) const RULE_FIELDS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];
pub(crate) const GR_FIELDS: &[&str] = &["group", "resources", "resourceNames"];

/// Where an object sits in the policy; decides the field set and the
/// suggestions for unknown fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    Top,
    Rule,
    GroupResources,
}

impl Ctx {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Ctx::Top => TOP_FIELDS,
            Ctx::Rule => RULE_FIELDS,
            Ctx::GroupResources => GR_FIELDS,
        }
    }

    /// Common misspellings that edit distance would get wrong or miss.
    fn aliases(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Ctx::Top => &[
                ("rule", "rules"),
                ("omitStage", "omitStages"),
                ("version", "apiVersion"),
            ],
            Ctx::Rule => &[
                ("verb", "verbs"),
                ("user", "users"),
                ("userGroup", "userGroups"),
                ("groups", "userGroups"),
                ("resource", "resources"),
                ("namespace", "namespaces"),
                ("nonResourceURL", "nonResourceURLs"),
                ("nonResourceUrl", "nonResourceURLs"),
                ("nonResourceUrls", "nonResourceURLs"),
                ("url", "nonResourceURLs"),
                ("urls", "nonResourceURLs"),
                ("omitStage", "omitStages"),
                ("stages", "omitStages"),
            ],
            Ctx::GroupResources => &[
                ("groups", "group"),
                ("apiGroup", "group"),
                ("apiGroups", "group"),
                ("resource", "resources"),
                ("resourceName", "resourceNames"),
                ("names", "resourceNames"),
            ],
        }
    }

    /// Where a field of this context lives, for "belongs in …" notes.
    fn place(self) -> &'static str {
        match self {
            Ctx::Top => "at the top level of the policy",
            Ctx::Rule => "in a rule (an entry of rules[], next to level:)",
            Ctx::GroupResources => "in an entry of a rule's resources[] list",
        }
    }
}

/// The suggestion for unknown field `key` in context `ctx`.
pub(crate) fn suggest_field(ctx: Ctx, key: &str) -> Option<String> {
    let others: Vec<Ctx> = [Ctx::Top, Ctx::Rule, Ctx::GroupResources]
        .into_iter()
        .filter(|c| *c != ctx)
        .collect();
    // 1. A known misspelling in this context.
    if let Some((from, to)) = ctx
        .aliases()
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(key))
    {
        let note = match (ctx, *from) {
            (Ctx::GroupResources, "groups" | "apiGroups") => {
                " it takes one API group as a string, e.g. group: \"\" for the core group"
            }
            (Ctx::Rule, "groups") => " API groups go in resources[].group instead",
            _ => "",
        };
        return Some(format!("did you mean \"{to}\"?{note}"));
    }
    // 2. A field of another context, spelled right: it is misplaced.
    // (Checked before edit distance, so `group` in a rule is not `groups`.)
    for other in &others {
        if let Some(f) = other.fields().iter().find(|f| f.eq_ignore_ascii_case(key)) {
            return Some(format!(
                "\"{f}\" belongs {}, not {}",
                other.place(),
                ctx.place()
            ));
        }
    }
    // 3. Close to a field of this context.
    if let Some(f) = closest(key, ctx.fields()) {
        return Some(format!("did you mean \"{f}\"?"));
    }
    // 4. A misspelling of a field of another context.
    for other in &others {
        let alias = other
            .aliases()
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(key));
        let found = alias
            .map(|(_, to)| *to)
            .or_else(|| closest(key, other.fields()));
        if let Some(f) = found {
            return Some(format!(
                "did you mean \"{f}\"? it belongs {}",
                other.place()
            ));
        }
    }
    None
}

/// Collects diagnostics while walking.
pub(crate) struct Out<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Out<'_> {
    fn error(&mut self, pos: Pos, field: &str, rule: Option<usize>, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(pos, field, rule, message));
    }

    fn error_with(
        &mut self,
        pos: Pos,
        field: &str,
        rule: Option<usize>,
        message: impl Into<String>,
        suggestion: Option<String>,
    ) {
        let mut d = Diagnostic::error(pos, field, rule, message);
        d.suggestion = suggestion;
        self.diags.push(d);
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// Iterates over a mapping's entries with string keys, reporting non-string
/// keys and duplicates. Yields (key, key node, value node).
fn entries<'n>(
    out: &mut Out<'_>,
    entries: &'n [(Node, Node)],
    path: &str,
    rule: Option<usize>,
) -> Vec<(&'n str, &'n Node, &'n Node)> {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    let mut result = Vec::new();
    for (k, v) in entries {
        let Kind::Scalar { value: key, ty } = &k.kind else {
            out.error(
                k.pos,
                path,
                rule,
                "mapping keys must be field names, found a collection",
            );
            continue;
        };
        if *ty == ScalarType::Null {
            out.error(k.pos, path, rule, "empty field name");
            continue;
        }
        if let Some(first) = seen.get(key.as_str()) {
            out.error_with(
                k.pos,
                path,
                rule,
                format!("duplicate field {}", quote(key)),
                Some(format!(
                    "the first {} is at line {}; keep only one",
                    quote(key),
                    first.line
                )),
            );
        } else {
            seen.insert(key, k.pos);
        }
        result.push((key.as_str(), k, v));
    }
    result
}

/// Reports duplicate keys anywhere below `node` (for the free-form
/// `metadata`).
fn check_duplicates(out: &mut Out<'_>, node: &Node, path: &str) {
    match &node.kind {
        Kind::Map(map) => {
            for (key, _, v) in entries(out, map, path, None) {
                check_duplicates(out, v, &join(path, key));
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                check_duplicates(out, item, &format!("{path}[{i}]"));
            }
        }
        Kind::Scalar { .. } => {}
    }
}

/// A string value: `Ok(None)` for null (upstream treats it as absent),
/// `Err` after reporting a type error.
fn string(
    out: &mut Out<'_>,
    v: &Node,
    path: &str,
    rule: Option<usize>,
) -> Result<Option<Spanned<String>>, ()> {
    match &v.kind {
        Kind::Scalar {
            value,
            ty: ScalarType::Str,
        } => Ok(Some(Spanned {
            value: value.clone(),
            pos: v.pos,
        })),
        Kind::Scalar {
            ty: ScalarType::Null,
            ..
        } => Ok(None),
        Kind::Scalar { value, .. } => {
            out.error_with(
                v.pos,
                path,
                rule,
                format!("expected a string, found {}", v.describe()),
                Some(format!("quote it: {}", quote(value))),
            );
            Err(())
        }
        _ => {
            out.error(
                v.pos,
                path,
                rule,
                format!("expected a string, found {}", v.describe()),
            );
            Err(())
        }
    }
}

/// A list of strings. Null means absent. Every bad element is reported.
fn string_list(
    out: &mut Out<'_>,
    v: &Node,
    path: &str,
    rule: Option<usize>,
    field: &str,
) -> Result<Vec<Spanned<String>>, ()> {
    match &v.kind {
        Kind::Scalar {
            ty: ScalarType::Null,
            ..
        } => Ok(Vec::new()),
        Kind::Seq(items) => {
            let mut ok = true;
            let mut result = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let ipath = format!("{path}[{i}]");
                match &item.kind {
                    Kind::Scalar {
                        ty: ScalarType::Null,
                        ..
                    } => {
                        out.error(
                            item.pos,
                            &ipath,
                            rule,
                            "expected a string, found null (an empty entry)",
                        );
                        ok = false;
                    }
                    _ => match string(out, item, &ipath, rule) {
                        Ok(Some(s)) => result.push(s),
                        _ => ok = false,
                    },
                }
            }
            if ok { Ok(result) } else { Err(()) }
        }
        Kind::Scalar { value, .. } => {
            out.error_with(
                v.pos,
                path,
                rule,
                format!("expected a list of strings, found {}", v.describe()),
                Some(format!("write a list: {field}: [{}]", quote(value))),
            );
            Err(())
        }
        Kind::Map(_) => {
            out.error(
                v.pos,
                path,
                rule,
                format!("expected a list of strings, found {}", v.describe()),
            );
            Err(())
        }
    }
}

fn boolean(
    out: &mut Out<'_>,
    v: &Node,
    path: &str,
    rule: Option<usize>,
) -> Result<Option<bool>, ()> {
    match &v.kind {
        Kind::Scalar {
            ty: ScalarType::Bool(b),
            ..
        } => Ok(Some(*b)),
        Kind::Scalar {
            ty: ScalarType::Null,
            ..
        } => Ok(None),
        _ => {
            out.error_with(
                v.pos,
                path,
                rule,
                format!("expected a boolean, found {}", v.describe()),
                Some("write true or false, unquoted".to_string()),
            );
            Err(())
        }
    }
}

fn unknown(out: &mut Out<'_>, ctx: Ctx, key: &str, k: &Node, path: &str, rule: Option<usize>) {
    out.error_with(
        k.pos,
        path,
        rule,
        format!("unknown field {}", quote(key)),
        suggest_field(ctx, key),
    );
}

/// Decodes the root node. `None` when the root is not a mapping.
pub(crate) fn decode(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Policy> {
    let mut out = Out { diags };
    let Kind::Map(map) = &root.kind else {
        out.error(
            root.pos,
            "",
            None,
            format!(
                "expected a mapping (an audit.k8s.io/v1 Policy), found {}",
                root.describe()
            ),
        );
        return None;
    };
    let mut policy = Policy {
        pos: root.pos,
        ..Policy::default()
    };
    for (key, k, v) in entries(&mut out, map, "", None) {
        match key {
            "apiVersion" => policy.api_version = string(&mut out, v, key, None).ok().flatten(),
            "kind" => policy.kind = string(&mut out, v, key, None).ok().flatten(),
            "metadata" => match &v.kind {
                Kind::Map(_) => check_duplicates(&mut out, v, key),
                Kind::Scalar {
                    ty: ScalarType::Null,
                    ..
                } => {}
                _ => out.error(
                    v.pos,
                    key,
                    None,
                    format!(
                        "expected a mapping (object metadata), found {}",
                        v.describe()
                    ),
                ),
            },
            "rules" => {
                policy.rules_pos = Some(k.pos);
                policy.rules = decode_rules(&mut out, v);
            }
            "omitStages" => {
                policy.omit_stages = string_list(&mut out, v, key, None, key).unwrap_or_default()
            }
            "omitManagedFields" => {
                policy.omit_managed_fields = boolean(&mut out, v, key, None).ok().flatten()
            }
            _ => unknown(&mut out, Ctx::Top, key, k, "", None),
        }
    }
    Some(policy)
}

fn decode_rules(out: &mut Out<'_>, v: &Node) -> Vec<Rule> {
    match &v.kind {
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| decode_rule(out, i, item))
            .collect(),
        Kind::Scalar {
            ty: ScalarType::Null,
            ..
        } => Vec::new(),
        _ => {
            out.error(
                v.pos,
                "rules",
                None,
                format!("expected a list of rules, found {}", v.describe()),
            );
            Vec::new()
        }
    }
}

fn decode_rule(out: &mut Out<'_>, index: usize, node: &Node) -> Rule {
    let path = format!("rules[{index}]");
    let r = Some(index);
    let mut rule = Rule {
        index,
        pos: node.pos,
        ..Rule::default()
    };
    let Kind::Map(map) = &node.kind else {
        out.error(
            node.pos,
            &path,
            r,
            format!(
                "expected a mapping (a rule with a level), found {}",
                node.describe()
            ),
        );
        rule.tainted = true;
        return rule;
    };
    rule.is_map = true;
    let mut tainted = false;
    for (key, k, v) in entries(out, map, &path, r) {
        let fpath = join(&path, key);
        let list = |out: &mut Out<'_>, tainted: &mut bool| {
            string_list(out, v, &fpath, r, key).unwrap_or_else(|()| {
                *tainted = true;
                Vec::new()
            })
        };
        match key {
            "level" => match string(out, v, &fpath, r) {
                Ok(l) => rule.level = l,
                Err(()) => {
                    tainted = true;
                    rule.level_error = true;
                }
            },
            "users" => rule.users = list(out, &mut tainted),
            "userGroups" => rule.user_groups = list(out, &mut tainted),
            "verbs" => rule.verbs = list(out, &mut tainted),
            "namespaces" => rule.namespaces = list(out, &mut tainted),
            "nonResourceURLs" => {
                rule.non_resource_urls_pos = Some(k.pos);
                rule.non_resource_urls = list(out, &mut tainted);
            }
            "omitStages" => rule.omit_stages = list(out, &mut tainted),
            "resources" => match decode_resources(out, v, &fpath, index) {
                Ok(res) => rule.resources = res,
                Err(()) => tainted = true,
            },
            "omitManagedFields" => match boolean(out, v, &fpath, r) {
                Ok(b) => rule.omit_managed_fields = b,
                Err(()) => tainted = true,
            },
            _ => unknown(out, Ctx::Rule, key, k, &path, r),
        }
    }
    rule.tainted = tainted;
    rule
}

fn decode_resources(
    out: &mut Out<'_>,
    v: &Node,
    path: &str,
    rule: usize,
) -> Result<Vec<GroupResources>, ()> {
    let r = Some(rule);
    let items = match &v.kind {
        Kind::Seq(items) => items,
        Kind::Scalar {
            ty: ScalarType::Null,
            ..
        } => return Ok(Vec::new()),
        _ => {
            out.error_with(
                v.pos,
                path,
                r,
                format!(
                    "expected a list of {{group, resources}} entries, found {}",
                    v.describe()
                ),
                Some("write resources: [{group: \"\", resources: [\"pods\"]}]".to_string()),
            );
            return Err(());
        }
    };
    let mut ok = true;
    let mut result = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let gpath = format!("{path}[{j}]");
        let Kind::Map(map) = &item.kind else {
            out.error_with(
                item.pos,
                &gpath,
                r,
                format!(
                    "expected a mapping with group and resources, found {}",
                    item.describe()
                ),
                Some("write {group: \"\", resources: [\"pods\"]}".to_string()),
            );
            ok = false;
            continue;
        };
        let mut gr = GroupResources {
            index: j,
            pos: item.pos,
            group: Spanned {
                value: String::new(),
                pos: item.pos,
            },
            ..GroupResources::default()
        };
        for (key, k, v) in entries(out, map, &gpath, r) {
            let fpath = join(&gpath, key);
            match key {
                "group" => match string(out, v, &fpath, r) {
                    Ok(Some(g)) => gr.group = g,
                    Ok(None) => {
                        gr.group = Spanned {
                            value: String::new(),
                            pos: v.pos,
                        }
                    }
                    Err(()) => ok = false,
                },
                "resources" => match string_list(out, v, &fpath, r, key) {
                    Ok(l) => gr.resources = l,
                    Err(()) => ok = false,
                },
                "resourceNames" => {
                    gr.resource_names_pos = Some(k.pos);
                    match string_list(out, v, &fpath, r, key) {
                        Ok(l) => gr.resource_names = l,
                        Err(()) => ok = false,
                    }
                }
                _ => unknown(out, Ctx::GroupResources, key, k, &gpath, r),
            }
        }
        result.push(gr);
    }
    if ok { Ok(result) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_known_typos() {
        let s = |c, k| suggest_field(c, k).unwrap_or_default();
        assert_eq!(s(Ctx::Rule, "verb"), "did you mean \"verbs\"?");
        assert_eq!(s(Ctx::Rule, "user"), "did you mean \"users\"?");
        assert_eq!(s(Ctx::Rule, "namespace"), "did you mean \"namespaces\"?");
        assert_eq!(s(Ctx::Rule, "userGroup"), "did you mean \"userGroups\"?");
        assert_eq!(s(Ctx::Rule, "resource"), "did you mean \"resources\"?");
        assert_eq!(
            s(Ctx::Rule, "nonResourceURL"),
            "did you mean \"nonResourceURLs\"?"
        );
        assert_eq!(
            s(Ctx::Rule, "nonResourceUrls"),
            "did you mean \"nonResourceURLs\"?"
        );
        assert_eq!(
            s(Ctx::Rule, "NonResourceURLs"),
            "did you mean \"nonResourceURLs\"?"
        );
        assert_eq!(s(Ctx::Rule, "omitStage"), "did you mean \"omitStages\"?");
        assert_eq!(s(Ctx::Top, "omitStage"), "did you mean \"omitStages\"?");
        assert_eq!(s(Ctx::Rule, "lvl"), "did you mean \"level\"?");
        assert!(s(Ctx::GroupResources, "groups").starts_with("did you mean \"group\"?"));
        assert_eq!(
            s(Ctx::GroupResources, "resourceName"),
            "did you mean \"resourceNames\"?"
        );
        assert_eq!(
            s(Ctx::GroupResources, "resource"),
            "did you mean \"resources\"?"
        );
    }

    #[test]
    fn suggestions_for_misplaced_fields() {
        let s = |c, k| suggest_field(c, k).unwrap_or_default();
        assert!(
            s(Ctx::GroupResources, "verbs").starts_with("\"verbs\" belongs in a rule"),
            "{}",
            s(Ctx::GroupResources, "verbs")
        );
        assert!(
            s(Ctx::Top, "resources").contains("belongs in"),
            "{}",
            s(Ctx::Top, "resources")
        );
        assert!(s(Ctx::Top, "level").starts_with("\"level\" belongs in a rule"));
        assert!(
            s(Ctx::Rule, "group")
                .starts_with("\"group\" belongs in an entry of a rule's resources[]")
        );
        assert!(s(Ctx::Rule, "resourceNames").contains("resources[]"));
        assert!(s(Ctx::Rule, "rules").contains("top level"));
        assert!(
            s(Ctx::GroupResources, "verb")
                .starts_with("did you mean \"verbs\"? it belongs in a rule")
        );
        assert_eq!(suggest_field(Ctx::Rule, "completelyunrelated"), None);
    }
}
