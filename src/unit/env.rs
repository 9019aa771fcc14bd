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
pub(crate) fn parse_env_file(text: &[u8]) -> (Vec<EnvVar>, Vec<(usize, String)>) {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum S {
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
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut state = S::PreKey;
    let mut key: Vec<u8> = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut last_key_ws: Option<usize> = None;
    let mut last_value_ws: Option<usize> = None;
    let mut line = 1usize;
    let mut key_line = 1usize;

    let mut push = |key: &mut Vec<u8>,
                    value: &mut Vec<u8>,
                    last_key_ws: Option<usize>,
                    key_line: usize,
                    state: S,
                    last_value_ws: Option<usize>| {
        if state == S::Value
            && let Some(n) = last_value_ws
        {
            value.truncate(n);
        }
        if let Some(n) = last_key_ws {
            key.truncate(n);
        }
        let k = String::from_utf8(std::mem::take(key));
        let v = String::from_utf8(std::mem::take(value));
        match (k, v) {
            (Ok(k), Ok(v)) if env_name_is_valid(&k) => out.push(EnvVar {
                key: k,
                value: v,
                line: key_line,
            }),
            (Ok(k), Ok(_)) => warnings.push((
                key_line,
                format!("{k:?} is not a valid variable name, ignored by systemd"),
            )),
            _ => warnings.push((
                key_line,
                "invalid UTF-8: systemd refuses to load this file".to_string(),
            )),
        }
    };

    for &c in text {
        match state {
            S::PreKey => {
                if c == b'#' || c == b';' {
                    state = S::Comment;
                } else if !ws(c) {
                    state = S::Key;
                    last_key_ws = None;
                    key_line = line;
                    key.push(c);
                }
            }
            S::Key => {
                if is_newline(c) {
                    state = S::PreKey;
                    key.clear();
                } else if c == b'=' {
                    state = S::PreValue;
                    last_value_ws = None;
                } else {
                    if !ws(c) {
                        last_key_ws = None;
                    } else if last_key_ws.is_none() {
                        last_key_ws = Some(key.len());
                    }
                    key.push(c);
                }
            }
            S::PreValue => {
                if is_newline(c) {
                    state = S::PreKey;
                    push(
                        &mut key,
                        &mut value,
                        last_key_ws,
                        key_line,
                        S::PreValue,
                        last_value_ws,
                    );
                } else if c == b'\'' {
                    state = S::SingleQuote;
                } else if c == b'"' {
                    state = S::DoubleQuote;
                } else if c == b'\\' {
                    state = S::ValueEscape;
                } else if !ws(c) {
                    state = S::Value;
                    value.push(c);
                }
            }
            S::Value => {
                if is_newline(c) {
                    state = S::PreKey;
                    push(
                        &mut key,
                        &mut value,
                        last_key_ws,
                        key_line,
                        S::Value,
                        last_value_ws,
                    );
                } else if c == b'\\' {
                    state = S::ValueEscape;
                    last_value_ws = None;
                } else {
                    if !ws(c) {
                        last_value_ws = None;
                    } else if last_value_ws.is_none() {
                        last_value_ws = Some(value.len());
                    }
                    value.push(c);
                }
            }
            S::ValueEscape => {
                state = S::Value;
                if !is_newline(c) {
                    value.push(c);
                }
            }
            S::SingleQuote => {
                if c == b'\'' {
                    state = S::PreValue;
                } else {
                    value.push(c);
                }
            }
            S::DoubleQuote => {
                if c == b'"' {
                    state = S::PreValue;
                } else if c == b'\\' {
                    state = S::DoubleQuoteEscape;
                } else {
                    value.push(c);
                }
            }
            S::DoubleQuoteEscape => {
                state = S::DoubleQuote;
                if matches!(c, b'"' | b'\\' | b'`' | b'$') {
                    value.push(c);
                } else if c != b'\n' {
                    value.push(b'\\');
                    value.push(c);
                }
            }
            S::Comment => {
                if c == b'\\' {
                    state = S::CommentEscape;
                } else if is_newline(c) {
                    state = S::PreKey;
                }
            }
            S::CommentEscape => state = S::Comment,
        }
        if c == b'\n' {
            line += 1;
        }
    }
    if matches!(
        state,
        S::PreValue
            | S::Value
            | S::ValueEscape
            | S::SingleQuote
            | S::DoubleQuote
            | S::DoubleQuoteEscape
    ) {
        push(
            &mut key,
            &mut value,
            last_key_ws,
            key_line,
            state,
            last_value_ws,
        );
    }
    (out, warnings)
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
