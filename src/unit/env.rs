//! `Environment=` and `EnvironmentFile=` as systemd 252 reads them, and the
//! expansion of `$VAR` / `${VAR}` in command lines.
//!
//! * `EnvironmentFile=` files are parsed by `parse_env_file_internal()`
//!   (`man systemd.exec`, "EnvironmentFile="): `KEY=value` lines, `#`/`;`
//!   comments, unquoted values with shell-like backslash escapes and
//!   backslash-newline continuation, `'…'` and `"…"` values that may span
//!   lines. In 252 a comment line ending in a backslash continues the
//!   comment onto the next line (changed in v254). Keys that are not valid
//!   variable names are dropped, as systemd does when it cleans the
//!   environment block.
//! * `Environment=` is a list of words (quoting as in [`super::quote`]),
//!   each `KEY=value`; specifiers are expanded (only `%%` is resolved here).
//! * Values from files override `Environment=` whatever the order.
//! * In a command line, `$VAR` as a whole word is split at whitespace
//!   (quotes respected, `EXTRACT_RELAX|EXTRACT_UNQUOTE`); `${VAR}` inside a
//!   word is replaced by the value as is; `$$` is a literal `$`.

use std::collections::HashMap;
use std::path::PathBuf;

/// One `KEY=value` read from an environment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvVar {
    pub key: String,
    pub value: String,
    /// Line the key starts on.
    pub line: usize,
}

/// systemd's `env_name_is_valid`: ASCII letters, digits and `_`, not
/// starting with a digit.
pub(crate) fn env_name_is_valid(n: &str) -> bool {
    !n.is_empty()
        && !n.as_bytes()[0].is_ascii_digit()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_newline(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Parses an environment file. Returns the assignments in file order and
/// warnings (`line`, message) for what systemd drops.
///
/// A port of systemd's `parse_env_file_internal` state machine (one byte at
/// a time, its states and its whitespace rules), since which values a unit
/// gets must be exactly systemd's.
pub(crate) fn parse_env_file(text: &[u8]) -> (Vec<EnvVar>, Vec<(usize, String)>) {
    let mut p = EnvParser::default();
    for &c in text {
        p.step(c);
        if c == b'\n' {
            p.line += 1;
        }
    }
    if matches!(
        p.state,
        S::PreValue
            | S::Value
            | S::ValueEscape
            | S::SingleQuote
            | S::DoubleQuote
            | S::DoubleQuoteEscape
    ) {
        p.push();
    }
    (p.out, p.warnings)
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum S {
    #[default]
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    SingleQuote,
    DoubleQuote,
    DoubleQuoteEscape,
    Comment,
    CommentEscape,
}

fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The parser's state between bytes: the key and value so far, where their
/// trailing whitespace starts, and the lines.
struct EnvParser {
    out: Vec<EnvVar>,
    warnings: Vec<(usize, String)>,
    state: S,
    key: Vec<u8>,
    value: Vec<u8>,
    last_key_ws: Option<usize>,
    last_value_ws: Option<usize>,
    line: usize,
    key_line: usize,
}

impl Default for EnvParser {
    fn default() -> Self {
        EnvParser {
            out: Vec::new(),
            warnings: Vec::new(),
            state: S::PreKey,
            key: Vec::new(),
            value: Vec::new(),
            last_key_ws: None,
            last_value_ws: None,
            line: 1,
            key_line: 1,
        }
    }
}

impl EnvParser {
    /// The assignment read so far, kept when its name is valid.
    fn push(&mut self) {
        if self.state == S::Value
            && let Some(n) = self.last_value_ws
        {
            self.value.truncate(n);
        }
        if let Some(n) = self.last_key_ws {
            self.key.truncate(n);
        }
        let k = String::from_utf8(std::mem::take(&mut self.key));
        let v = String::from_utf8(std::mem::take(&mut self.value));
        match (k, v) {
            (Ok(k), Ok(v)) if env_name_is_valid(&k) => self.out.push(EnvVar {
                key: k,
                value: v,
                line: self.key_line,
            }),
            (Ok(k), Ok(_)) => self.warnings.push((
                self.key_line,
                format!("{k:?} is not a valid variable name, ignored by systemd"),
            )),
            _ => self.warnings.push((
                self.key_line,
                "invalid UTF-8: systemd refuses to load this file".to_string(),
            )),
        }
    }

    fn step(&mut self, c: u8) {
        match self.state {
            S::PreKey => {
                if c == b'#' || c == b';' {
                    self.state = S::Comment;
                } else if !ws(c) {
                    self.state = S::Key;
                    self.last_key_ws = None;
                    self.key_line = self.line;
                    self.key.push(c);
                }
            }
            S::Key => {
                if is_newline(c) {
                    self.state = S::PreKey;
                    self.key.clear();
                } else if c == b'=' {
                    self.state = S::PreValue;
                    self.last_value_ws = None;
                } else {
                    if !ws(c) {
                        self.last_key_ws = None;
                    } else if self.last_key_ws.is_none() {
                        self.last_key_ws = Some(self.key.len());
                    }
                    self.key.push(c);
                }
            }
            S::PreValue => {
                if is_newline(c) {
                    self.push();
                    self.state = S::PreKey;
                } else if c == b'\'' {
                    self.state = S::SingleQuote;
                } else if c == b'"' {
                    self.state = S::DoubleQuote;
                } else if c == b'\\' {
                    self.state = S::ValueEscape;
                } else if !ws(c) {
                    self.state = S::Value;
                    self.value.push(c);
                }
            }
            S::Value => {
                if is_newline(c) {
                    self.push();
                    self.state = S::PreKey;
                } else if c == b'\\' {
                    self.state = S::ValueEscape;
                    self.last_value_ws = None;
                } else {
                    if !ws(c) {
                        self.last_value_ws = None;
                    } else if self.last_value_ws.is_none() {
                        self.last_value_ws = Some(self.value.len());
                    }
                    self.value.push(c);
                }
            }
            S::ValueEscape => {
                self.state = S::Value;
                if !is_newline(c) {
                    self.value.push(c);
                }
            }
            S::SingleQuote => {
                if c == b'\'' {
                    self.state = S::PreValue;
                } else {
                    self.value.push(c);
                }
            }
            S::DoubleQuote => {
                if c == b'"' {
                    self.state = S::PreValue;
                } else if c == b'\\' {
                    self.state = S::DoubleQuoteEscape;
                } else {
                    self.value.push(c);
                }
            }
            S::DoubleQuoteEscape => {
                self.state = S::DoubleQuote;
                if matches!(c, b'"' | b'\\' | b'`' | b'$') {
                    self.value.push(c);
                } else if c != b'\n' {
                    self.value.push(b'\\');
                    self.value.push(c);
                }
            }
            S::Comment => {
                if c == b'\\' {
                    self.state = S::CommentEscape;
                } else if is_newline(c) {
                    self.state = S::PreKey;
                }
            }
            S::CommentEscape => self.state = S::Comment,
        }
    }
}

/// Splits a variable's value as `$VAR` expansion does
/// (`strv_split_full(…, WHITESPACE, EXTRACT_RELAX|EXTRACT_UNQUOTE)`):
/// whitespace separates, quotes group and are removed, a backslash takes
/// the next character literally; unbalanced quotes are tolerated.
pub(crate) fn split_relaxed(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match (quote, c) {
            (_, '\\') => {
                in_word = true;
                match it.next() {
                    Some(n) => cur.push(n),
                    None => break,
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                in_word = true;
                quote = Some(c);
            }
            (None, ' ' | '\t' | '\n' | '\r') => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSource {
    pub value: String,
    pub path: PathBuf,
    pub line: usize,
}

/// systemd 252's `replace_env(word, env, 0)`: `${NAME}` → value (or empty),
/// `$$` → `$`, anything else literal.
pub(crate) fn replace_env(word: &str, env: &HashMap<String, EnvSource>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(a) = after.strip_prefix('{')
            && let Some(j) = a.find(['}', ':'])
            && a.as_bytes()[j] == b'}'
        {
            if let Some(s) = env.get(&a[..j]) {
                out.push_str(&s.value);
            }
            rest = &a[j + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String)> {
        parse_env_file(text.as_bytes())
            .0
            .into_iter()
            .map(|v| (v.key, v.value))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn contrib_apiserver_file() {
        let text = "###\n# kubernetes system config\n#\n\n# The address on the local server to listen to.\n\
                    KUBE_API_ADDRESS=\"--insecure-bind-address=127.0.0.1\"\n\n# KUBE_API_PORT=\"--port=8080\"\n\n\
                    # Add your own!\nKUBE_API_ARGS=\"\"\n";
        let (vars, warnings) = parse_env_file(text.as_bytes());
        assert!(warnings.is_empty());
        assert_eq!(
            vars,
            vec![
                EnvVar {
                    key: "KUBE_API_ADDRESS".into(),
                    value: "--insecure-bind-address=127.0.0.1".into(),
                    line: 6
                },
                EnvVar {
                    key: "KUBE_API_ARGS".into(),
                    value: "".into(),
                    line: 11
                },
            ]
        );
    }

    #[test]
    fn unquoted_values() {
        assert_eq!(
            kv("A=  b c  \nB=x\\ y\\\\z\nC=a\\\nb\nD='q' \nE=\"a\"b\nF=a'b'\n"),
            pairs(&[
                ("A", "b c"),
                ("B", "x y\\z"),
                ("C", "ab"),
                ("D", "q"),
                ("E", "ab"),
                ("F", "a'b'")
            ])
        );
    }

    #[test]
    fn quoted_values_span_lines() {
        assert_eq!(
            kv("A='x\ny'\nB=\"1\\\n2\"\n"),
            pairs(&[("A", "x\ny"), ("B", "12")])
        );
        assert_eq!(
            kv("A=\"\\$x \\\" \\\\ \\q\"\n"),
            pairs(&[("A", "$x \" \\ \\q")])
        );
        assert_eq!(kv("A='\\n'\n"), pairs(&[("A", "\\n")]));
    }

    #[test]
    fn keys_and_comments() {
        assert_eq!(
            kv("  A  =1\n; c\n# c\nnoequals\nB=2"),
            pairs(&[("A", "1"), ("B", "2")])
        );
        // 252: a comment ending in a backslash swallows the next line.
        assert_eq!(kv("# c \\\nA=1\nB=2\n"), pairs(&[("B", "2")]));
        // Invalid names are dropped with a warning.
        let (vars, w) = parse_env_file(b"export A=1\n1X=2\nOK=3\n");
        assert_eq!(vars.len(), 1);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0, 1);
    }

    #[test]
    fn crlf_file() {
        assert_eq!(kv("A=1\r\nB=\"2\"\r\n"), pairs(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn relaxed_split() {
        assert_eq!(
            split_relaxed("  --a=1   --b='x y' \"c d\"e\\ f "),
            ["--a=1", "--b=x y", "c de f"]
        );
        assert_eq!(split_relaxed(""), Vec::<String>::new());
        assert_eq!(split_relaxed("\"\""), [""]);
        assert_eq!(split_relaxed("'unbalanced x"), ["unbalanced x"]);
    }

    #[test]
    fn replace_env_like_systemd() {
        let mut env = HashMap::new();
        env.insert(
            "A".to_string(),
            EnvSource {
                value: "1 2".into(),
                path: PathBuf::from("/x"),
                line: 1,
            },
        );
        assert_eq!(
            replace_env("x${A}y $$ $A ${B} ${A:-z} ${", &env),
            "x1 2y $ $A  ${A:-z} ${"
        );
    }
}
