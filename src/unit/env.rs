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

/// Shell-style wildcard match of one path component (`*`, `?`, `[…]`,
/// `[!…]`), as glob(3) does it: a leading `.` must be matched explicitly.
///
/// The pattern is read into tokens that each match one character, apart
/// from `*`; the match keeps only the last `*` to fall back to, so it takes
/// at most pattern × name steps however many `*` the pattern holds (a
/// recursive match is exponential in them; found by fuzzing).
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let tokens = wildcard_tokens(pattern);
    let n: Vec<char> = name.chars().collect();
    let (mut ti, mut ni) = (0, 0);
    // The last `*` seen, and where in the name it stops matching for now.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match tokens.get(ti) {
            Some(Token::Star) => {
                star = Some((ti, ni));
                ti += 1;
                continue;
            }
            Some(t) if t.matches(n[ni]) => {
                ti += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        // A mismatch: let the last `*` take one more character.
        let Some((st, sn)) = star else { return false };
        star = Some((st, sn + 1));
        ti = st + 1;
        ni = sn + 1;
    }
    tokens[ti..].iter().all(|t| matches!(t, Token::Star))
}

/// One element of a wildcard pattern.
#[derive(Debug, PartialEq)]
enum Token {
    /// `*`: any run of characters (runs of `*` are one token).
    Star,
    /// `?`: any one character.
    Any,
    /// A literal character (`\x` is a literal `x`).
    Char(char),
    /// `[…]` or `[!…]` (`[^…]`): one character in (or not in) the ranges.
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Char(x) => *x == c,
            Token::Class { negate, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negate
            }
        }
    }
}

fn wildcard_tokens(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '\\' if i + 1 < p.len() => {
                out.push(Token::Char(p[i + 1]));
                i += 2;
            }
            '[' => {
                let mut j = i + 1;
                let negate = matches!(p.get(j), Some('!') | Some('^'));
                if negate {
                    j += 1;
                }
                // A `]` first in the class is a member, not its end.
                let mut ranges = Vec::new();
                let mut first = true;
                while j < p.len() && (first || p[j] != ']') {
                    first = false;
                    if j + 2 < p.len() && p[j + 1] == '-' && p[j + 2] != ']' {
                        ranges.push((p[j], p[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((p[j], p[j]));
                        j += 1;
                    }
                }
                if j >= p.len() {
                    // No closing bracket: a literal '['.
                    out.push(Token::Char('['));
                    i += 1;
                } else {
                    out.push(Token::Class { negate, ranges });
                    i = j + 1;
                }
            }
            c => {
                out.push(Token::Char(c));
                i += 1;
            }
        }
    }
    out
}

pub(crate) fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::strings;

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

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.env", "a.env"));
        assert!(!wildcard_match("*.env", ".a.env"));
        assert!(wildcard_match(".*", ".a"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("[a-c]x", "bx"));
        assert!(!wildcard_match("[!a-c]x", "bx"));
        assert!(wildcard_match("[]]", "]"));
        assert!(wildcard_match("a[", "a["));
        assert!(!wildcard_match("a*b", "ac"));
        assert!(wildcard_match("a\\*", "a*"));
        assert!(!wildcard_match("a\\*", "ab"));
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(!wildcard_match("*a*b*", "xxbxxaxx"));
        assert!(wildcard_match("**", ""));
    }

    /// The fuzzer's timeout (a pattern of 67 `*` took longer than its 25 s
    /// limit): many stars against a long name that does not match.
    #[test]
    fn wildcards_with_many_stars_do_not_backtrack_exponentially() {
        let pattern = format!("{}x", "*a".repeat(200));
        let name = "a".repeat(2000);
        assert!(!wildcard_match(&pattern, &name));
        assert!(wildcard_match(&pattern, &format!("{name}x")));
    }

    /// The recursive match this module used before: plainly correct,
    /// exponential in the number of `*`. The linear match must agree with
    /// it on every small pattern and name.
    fn reference_match(pattern: &str, name: &str) -> bool {
        if name.starts_with('.') && !pattern.starts_with('.') {
            return false;
        }
        fn m(p: &[char], n: &[char]) -> bool {
            match p.first() {
                None => n.is_empty(),
                Some('*') => (0..=n.len()).any(|k| m(&p[1..], &n[k..])),
                Some('?') => !n.is_empty() && m(&p[1..], &n[1..]),
                Some('[') => {
                    let Some(&c) = n.first() else { return false };
                    let mut i = 1;
                    let negate = matches!(p.get(1), Some('!') | Some('^'));
                    if negate {
                        i += 1;
                    }
                    let mut matched = false;
                    let mut first = true;
                    while i < p.len() && (first || p[i] != ']') {
                        first = false;
                        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                            matched |= p[i] <= c && c <= p[i + 2];
                            i += 3;
                        } else {
                            matched |= p[i] == c;
                            i += 1;
                        }
                    }
                    if i >= p.len() {
                        return c == '[' && m(&p[1..], &n[1..]);
                    }
                    matched != negate && m(&p[i + 1..], &n[1..])
                }
                Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && m(&p[2..], &n[1..]),
                Some(c) => n.first() == Some(c) && m(&p[1..], &n[1..]),
            }
        }
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        m(&p, &n)
    }

    /// Every pattern of up to 4 symbols from a small alphabet of pattern
    /// syntax, against every name of up to 4 characters from the letters
    /// the patterns use: about 8.7 million pairs.
    #[test]
    fn wildcards_agree_with_the_recursive_reference() {
        let patterns = strings(
            &["a", "b", ".", "*", "?", "[a-b]", "[!a]", "[", "]", "\\"],
            4,
        );
        let names = strings(&["a", "b", ".", "[", "]"], 4);
        let mut pairs = 0;
        for p in &patterns {
            for n in &names {
                assert_eq!(wildcard_match(p, n), reference_match(p, n), "{p:?} {n:?}");
                pairs += 1;
            }
        }
        assert_eq!(pairs, 11_111 * 781);
    }
}
