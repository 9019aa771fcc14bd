//! A small position-aware YAML tree, built from granit-parser events.
//!
//! The policy decoder needs every value's line and column, and must stay
//! safe on hostile input, so this module:
//!
//! * rejects input over [`MAX_INPUT_BYTES`] before parsing;
//! * rejects bytes that are not UTF-8, naming the line and column of the
//!   first bad byte;
//! * bounds nesting depth ([`MAX_DEPTH`]) and the number of nodes
//!   ([`MAX_NODES`]), counting every node an alias expands to, so an alias
//!   bomb stops at the budget instead of exhausting memory;
//! * expands aliases by copying the anchored subtree (positions stay those
//!   of the anchored text);
//! * resolves plain scalars the way the apiserver's YAML library (go-yaml
//!   v2, YAML 1.1 rules) does: `yes`/`no`/`on`/`off`/`true`… are booleans,
//!   `~`/`null`/empty are null, numbers are numbers. A string field holding
//!   one of these is a decode error upstream, so the decoder needs to know.

use serde_saphyr::granit_parser::{ErrorKind, Event, Options, Parser, ScalarStyle, ScanError, Tag};
use std::collections::HashMap;

/// Inputs larger than this are rejected before parsing.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted. A policy needs 5.
pub const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, sequences, mappings, alias copies included).
pub const MAX_NODES: usize = 100_000;

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };
}

impl Default for Pos {
    fn default() -> Self {
        Pos::START
    }
}

/// How a scalar resolves (YAML 1.1 as go-yaml v2 does it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

impl ScalarType {
    /// How the decoder names this type in messages.
    pub fn describe(self) -> &'static str {
        match self {
            ScalarType::Null => "null",
            ScalarType::Bool(_) => "a boolean",
            ScalarType::Int => "a number",
            ScalarType::Float => "a number",
            ScalarType::Str => "a string",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Scalar { value: String, ty: ScalarType },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// "a string", "a list", "a mapping", "null"…, for type errors.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar {
                value,
                ty: ScalarType::Str,
            } => format!("a string ({})", super::quote(value)),
            Kind::Scalar { value, ty } if *ty != ScalarType::Null => {
                format!(
                    "{} ({})",
                    ty.describe(),
                    super::quote(value).trim_matches('"')
                )
            }
            Kind::Scalar { .. } => "null".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(
            self.kind,
            Kind::Scalar {
                ty: ScalarType::Null,
                ..
            }
        )
    }

    /// Number of nodes in this subtree (itself included).
    fn size(&self) -> usize {
        match &self.kind {
            Kind::Scalar { .. } => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

/// A failure to read the YAML at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl YamlError {
    fn new(pos: Pos, message: impl Into<String>) -> Self {
        YamlError {
            pos,
            message: message.into(),
        }
    }
}

/// Parses `bytes` into the first document's root node. `Ok(None)` means
/// there is no document, or it is empty (null).
pub fn parse(bytes: &[u8]) -> Result<Option<Node>, YamlError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(YamlError::new(
            Pos::START,
            format!(
                "file is {} bytes; policies larger than {MAX_INPUT_BYTES} bytes (4 MiB) are rejected without being parsed",
                bytes.len()
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(good).unwrap_or_default();
            let pos = end_pos(prefix);
            let bad = bytes[e.valid_up_to()];
            let hint = if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
                " (this looks like UTF-16; save the file as UTF-8)"
            } else {
                ""
            };
            return Err(YamlError::new(
                pos,
                format!(
                    "file is not valid UTF-8: byte 0x{bad:02x} at offset {}{hint}",
                    e.valid_up_to()
                ),
            ));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Builder::default().run(text)
}

/// Position just after `s`.
fn end_pos(s: &str) -> Pos {
    let line = 1 + s.matches('\n').count();
    let last = s.rsplit('\n').next().unwrap_or("");
    Pos {
        line,
        column: last.chars().count() + 1,
    }
}

fn pos_of(m: &serde_saphyr::granit_parser::Marker) -> Pos {
    Pos {
        line: m.line().max(1),
        column: m.col() + 1,
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

enum TagKind {
    None,
    CoreStr,
    Core,
}

fn tag_kind(tag: Option<&Tag>, pos: Pos) -> Result<TagKind, YamlError> {
    let Some(tag) = tag else {
        return Ok(TagKind::None);
    };
    // `!` alone is the non-specific tag: the value is a string/collection.
    if tag.handle() == "!" && tag.suffix().is_empty() {
        return Ok(TagKind::CoreStr);
    }
    match tag.core_suffix() {
        Some("str") => Ok(TagKind::CoreStr),
        Some(_) => Ok(TagKind::Core),
        None => Err(YamlError::new(
            pos,
            format!(
                "YAML tag \"{}\" is not supported in an audit policy",
                super::quote(&tag.original()).trim_matches('"')
            ),
        )),
    }
}

impl Builder {
    fn run(mut self, text: &str) -> Result<Option<Node>, YamlError> {
        let mut options = Options::default();
        options.set_emit_comments(false);
        // The scanner reads ahead, so its own limits may fire before our
        // depth check; both report the same message.
        options.block_nesting_limit = MAX_DEPTH;
        options.flow_nesting_limit = MAX_DEPTH;
        let parser = Parser::new_from_str_with_options(text, options);
        for item in parser {
            let (event, span) = item.map_err(scan_error)?;
            let pos = pos_of(&span.start);
            match event {
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
                Event::DocumentStart(..) => self.documents += 1,
                Event::Alias(id) => {
                    let Some(node) = self.anchors.get(&id) else {
                        return Err(YamlError::new(
                            pos,
                            "alias refers to an anchor that encloses it (recursive alias)",
                        ));
                    };
                    let size = node.size();
                    if self.nodes + size > MAX_NODES {
                        return Err(YamlError::new(
                            pos,
                            format!(
                                "expanding this alias would exceed {MAX_NODES} YAML nodes (an alias bomb?)"
                            ),
                        ));
                    }
                    self.nodes += size;
                    let mut node = node.clone();
                    node.pos = pos;
                    self.finish(node, 0)?;
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.count(pos)?;
                    let ty = match tag_kind(tag.as_deref(), pos)? {
                        TagKind::CoreStr => ScalarType::Str,
                        TagKind::None | TagKind::Core => match style {
                            ScalarStyle::Plain => resolve_plain(&value),
                            _ => ScalarType::Str,
                        },
                    };
                    let node = Node {
                        pos,
                        kind: Kind::Scalar {
                            value: value.into_owned(),
                            ty,
                        },
                    };
                    self.finish(node, anchor)?;
                }
                Event::SequenceStart(_, anchor, tag) => {
                    self.count(pos)?;
                    tag_kind(tag.as_deref(), pos)?;
                    self.push(
                        Frame::Seq {
                            pos,
                            anchor,
                            items: Vec::new(),
                        },
                        pos,
                    )?;
                }
                Event::MappingStart(_, anchor, tag) => {
                    self.count(pos)?;
                    tag_kind(tag.as_deref(), pos)?;
                    self.push(
                        Frame::Map {
                            pos,
                            anchor,
                            entries: Vec::new(),
                            key: None,
                        },
                        pos,
                    )?;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (node, anchor) = match self.stack.pop() {
                        Some(Frame::Seq { pos, anchor, items }) => (
                            Node {
                                pos,
                                kind: Kind::Seq(items),
                            },
                            anchor,
                        ),
                        Some(Frame::Map {
                            pos,
                            anchor,
                            entries,
                            ..
                        }) => (
                            Node {
                                pos,
                                kind: Kind::Map(entries),
                            },
                            anchor,
                        ),
                        None => return Err(YamlError::new(pos, "unbalanced YAML structure")),
                    };
                    self.finish(node, anchor)?;
                }
                // Comments (disabled), anchor metadata, unresolved aliases
                // (disabled) and future events carry no data for us.
                _ => {}
            }
        }
        Ok(self.root.filter(|r| !r.is_null()))
    }

    fn count(&mut self, pos: Pos) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(YamlError::new(
                pos,
                format!("more than {MAX_NODES} YAML nodes; this is not a policy"),
            ));
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame, pos: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::new(
                pos,
                format!("YAML nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            // The kept copy counts against the budget too, or nested
            // anchors could copy the whole tree once per level.
            let size = node.size();
            if self.nodes + size > MAX_NODES {
                return Err(YamlError::new(
                    node.pos,
                    format!("anchors here would copy more than {MAX_NODES} YAML nodes"),
                ));
            }
            self.nodes += size;
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None if self.documents <= 1 => self.root = Some(node),
            // An empty trailing document (a final `---`) is harmless.
            None if node.is_null() => {}
            None => {
                return Err(YamlError::new(
                    node.pos,
                    "a second YAML document starts here; the apiserver reads only the first, so keep one policy per file",
                ));
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

fn scan_error(e: ScanError) -> YamlError {
    let pos = pos_of(e.marker());
    if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
        return YamlError::new(pos, format!("YAML nested deeper than {MAX_DEPTH} levels"));
    }
    let mut message = format!("invalid YAML: {}", e.info());
    if message.contains("tab") {
        message.push_str(" (YAML does not allow tabs for indentation; use spaces)");
    }
    YamlError::new(pos, message)
}

/// Resolves a plain scalar with go-yaml v2's YAML 1.1 rules.
pub fn resolve_plain(v: &str) -> ScalarType {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return ScalarType::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return ScalarType::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    let digits = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
            && s.chars().any(|c| c != '_')
    };
    if let Some(h) = body.strip_prefix("0x") {
        if digits(h, 16) {
            return ScalarType::Int;
        }
    } else if let Some(b) = body.strip_prefix("0b") {
        if digits(b, 2) {
            return ScalarType::Int;
        }
    } else if digits(body, 10) {
        return ScalarType::Int;
    }
    if is_float(body) {
        return ScalarType::Float;
    }
    ScalarType::Str
}

/// `[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?` or `\.[0-9_]+(...)?`.
fn is_float(s: &str) -> bool {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(exp) = exp {
        let e = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    let Some((int, frac)) = mant.split_once('.') else {
        // An integer mantissa with an exponent, e.g. 1e3.
        return exp.is_some()
            && !mant.is_empty()
            && mant.chars().all(|c| c.is_ascii_digit() || c == '_');
    };
    let ok = |p: &str| p.chars().all(|c| c.is_ascii_digit() || c == '_');
    ok(int)
        && ok(frac)
        && (int.chars().any(|c| c.is_ascii_digit()) || frac.chars().any(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> Node {
        parse(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let n = root("a: 1\nbb:\n  - x\n");
        let Kind::Map(entries) = n.kind else { panic!() };
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let Kind::Seq(items) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
    }

    #[test]
    fn scalar_resolution() {
        assert_eq!(resolve_plain("no"), ScalarType::Bool(false));
        assert_eq!(resolve_plain("On"), ScalarType::Bool(true));
        assert_eq!(resolve_plain("~"), ScalarType::Null);
        assert_eq!(resolve_plain("123"), ScalarType::Int);
        assert_eq!(resolve_plain("0x1F"), ScalarType::Int);
        assert_eq!(resolve_plain("1.5"), ScalarType::Float);
        assert_eq!(resolve_plain("1e3"), ScalarType::Float);
        assert_eq!(resolve_plain(".5"), ScalarType::Float);
        assert_eq!(resolve_plain("."), ScalarType::Str);
        assert_eq!(resolve_plain("get"), ScalarType::Str);
        assert_eq!(resolve_plain("/healthz*"), ScalarType::Str);
        assert_eq!(resolve_plain("1.2.3"), ScalarType::Str);
        assert_eq!(resolve_plain("e3"), ScalarType::Str);
        assert_eq!(resolve_plain("-"), ScalarType::Str);
    }

    #[test]
    fn quoted_scalars_are_strings() {
        let n = root("a: \"no\"\nb: 'null'\nc: no\n");
        let Kind::Map(e) = n.kind else { panic!() };
        let ty = |i: usize| match &e[i].1.kind {
            Kind::Scalar { ty, .. } => *ty,
            _ => panic!(),
        };
        assert_eq!(ty(0), ScalarType::Str);
        assert_eq!(ty(1), ScalarType::Str);
        assert_eq!(ty(2), ScalarType::Bool(false));
    }

    #[test]
    fn str_tag_forces_string() {
        let n = root("a: !!str 123\n");
        let Kind::Map(e) = n.kind else { panic!() };
        assert!(matches!(
            e[0].1.kind,
            Kind::Scalar {
                ty: ScalarType::Str,
                ..
            }
        ));
    }

    #[test]
    fn custom_tag_is_rejected() {
        let e = parse(b"a: !foo x\n").unwrap_err();
        assert!(e.message.contains("tag"), "{e:?}");
    }

    #[test]
    fn empty_inputs() {
        assert!(parse(b"").unwrap().is_none());
        assert!(parse(b"# only a comment\n").unwrap().is_none());
        assert!(parse(b"---\n").unwrap().is_none());
        assert!(parse(b"~\n").unwrap().is_none());
    }

    #[test]
    fn aliases_expand() {
        let n = root("a: &x [1, 2]\nb: *x\n");
        let Kind::Map(e) = n.kind else { panic!() };
        let Kind::Seq(items) = &e[1].1.kind else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(e[1].1.pos, Pos { line: 2, column: 4 });
    }

    #[test]
    fn alias_bomb_stops_at_budget() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e:?}");
    }

    #[test]
    fn nested_anchors_count_against_the_budget() {
        // 60 nested anchored lists around 2000 scalars: ~120k copies.
        let mut s = String::new();
        for i in 0..60 {
            s.push_str(&format!("&a{i} ["));
        }
        s.push_str(&vec!["x"; 2000].join(", "));
        s.push_str(&"]".repeat(60));
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.message.contains("anchors here would copy"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let s = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e:?}");
        assert_eq!(
            e.pos,
            Pos {
                line: 1,
                column: MAX_DEPTH + 1
            }
        );
    }

    #[test]
    fn non_utf8_names_position() {
        let e = parse(b"a: b\nc: \xff\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 4 });
        assert!(e.message.contains("0xff"), "{e:?}");
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        let big = vec![b'#'; MAX_INPUT_BYTES + 1];
        let e = parse(&big).unwrap_err();
        assert_eq!(e.pos, Pos::START);
        assert!(e.message.contains("4 MiB"), "{e:?}");
    }

    #[test]
    fn second_document_is_rejected() {
        let e = parse(b"a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("second YAML document"), "{e:?}");
        assert!(parse(b"a: 1\n---\n").unwrap().is_some());
        assert!(parse(b"---\na: 1\n").unwrap().is_some());
    }

    #[test]
    fn broken_yaml_has_a_position() {
        let e = parse(b"a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
        assert!(e.pos.line >= 1);
    }
}
