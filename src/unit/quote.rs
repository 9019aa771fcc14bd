//! systemd's quoting, both ways.
//!
//! * [`next_word`] splits a setting into words exactly as systemd 252's
//!   `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` does, including
//!   the retry of `extract_first_word_and_warn()` that keeps unknown escape
//!   sequences verbatim (`\q` stays `\q`, with a warning). It returns each
//!   word's raw text (a slice of the input) and its unquoted value.
//! * [`quote_word`] is the inverse for values kaudit-node appends: it emits a
//!   word that systemd turns back into exactly the value, with `%` and `$`
//!   doubled so that neither specifier nor variable expansion touches it.
//!
//! The rules, from `man systemd.syntax` ("Quoting") and checked against
//! `systemd-analyze verify` (systemd 252), which dumps the parsed argv when
//! `SYSTEMD_LOG_LEVEL=debug`:
//!
//! * Words are separated by runs of space, tab, CR or LF.
//! * `"…"` and `'…'` may start anywhere in a word (`a"b c"d` is `ab cd`);
//!   quotes are removed. Backslash escapes work inside both kinds of quotes.
//! * Escapes: `\a \b \f \n \r \t \v \\ \" \' \s`, `\xHH`, `\NNN` (octal),
//!   `\uHHHH`, `\UHHHHHHHH`. Escapes that would produce NUL, and any other
//!   backslash sequence, are kept verbatim (backslash and the next byte) and
//!   systemd logs "Ignoring unknown escape sequences".
//! * An unterminated quote makes the whole setting invalid ("Unbalanced
//!   quoting"); for `ExecStart=` that is a fatal unit load error.

use crate::error::{Error, Result};

/// The separators of `extract_first_word` (systemd's `WHITESPACE`).
pub(crate) const WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// One word as found in a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawWord<'a> {
    /// The word exactly as written (quotes and escapes included).
    pub raw: &'a str,
    /// Byte offset of `raw` in the input.
    pub start: usize,
    /// The unquoted, unescaped bytes (`\xHH` may produce non-UTF-8 bytes).
    pub value: Vec<u8>,
    /// An unknown escape sequence was kept verbatim.
    pub unknown_escape: bool,
}

/// Why a setting cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// A quote was opened and never closed (or a backslash ended a quoted
    /// word): systemd rejects the setting.
    Unbalanced,
}

/// Skips separators from `i`.
pub(crate) fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

/// Extracts the next word at or after `*pos`, leaving `*pos` at the first
/// byte after the word. `Ok(None)` when only separators remain.
pub(crate) fn next_word<'a>(
    s: &'a str,
    pos: &mut usize,
) -> Result<Option<RawWord<'a>>, SplitError> {
    let b = s.as_bytes();
    let start = skip_ws(b, *pos);
    if start >= b.len() {
        *pos = b.len();
        return Ok(None);
    }
    let mut i = start;
    let mut quote: u8 = 0;
    let mut value = Vec::new();
    let mut unknown_escape = false;
    loop {
        if i >= b.len() {
            if quote != 0 {
                return Err(SplitError::Unbalanced);
            }
            break;
        }
        let c = b[i];
        if c == b'\\' {
            i += 1;
            if i >= b.len() {
                if quote != 0 {
                    return Err(SplitError::Unbalanced);
                }
                // EXTRACT_UNESCAPE_RELAX: a trailing unquoted backslash is kept.
                value.push(b'\\');
                unknown_escape = true;
                break;
            }
            match cunescape_one(&b[i..]) {
                Some((len, u)) => {
                    u.push_to(&mut value);
                    i += len;
                }
                None => {
                    value.push(b'\\');
                    value.push(b[i]);
                    unknown_escape = true;
                    i += 1;
                }
            }
            continue;
        }
        if quote != 0 {
            if c == quote {
                quote = 0;
            } else {
                value.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => quote = c,
            _ if is_ws(c) => break,
            _ => value.push(c),
        }
        i += 1;
    }
    *pos = i;
    Ok(Some(RawWord {
        raw: &s[start..i],
        start,
        value,
        unknown_escape,
    }))
}

/// What one escape sequence stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unescaped {
    /// `\xHH` and octal escapes give a raw byte.
    Byte(u8),
    /// The others give a code point, written as UTF-8.
    Char(u32),
}

impl Unescaped {
    fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Unescaped::Byte(b) => out.push(b),
            Unescaped::Char(c) => encode_utf8_lax(c, out),
        }
    }
}

/// systemd's `utf8_encode_unichar`: encodes any code point below 2^21,
/// surrogates included (the result is then not valid UTF-8, which the
/// caller reports).
fn encode_utf8_lax(c: u32, out: &mut Vec<u8>) {
    if c < 0x80 {
        out.push(c as u8);
    } else if c < 0x800 {
        out.push(0xc0 | (c >> 6) as u8);
        out.push(0x80 | (c & 0x3f) as u8);
    } else if c < 0x10000 {
        out.push(0xe0 | (c >> 12) as u8);
        out.push(0x80 | ((c >> 6) & 0x3f) as u8);
        out.push(0x80 | (c & 0x3f) as u8);
    } else {
        out.push(0xf0 | ((c >> 18) & 0x07) as u8);
        out.push(0x80 | ((c >> 12) & 0x3f) as u8);
        out.push(0x80 | ((c >> 6) & 0x3f) as u8);
        out.push(0x80 | (c & 0x3f) as u8);
    }
}

fn unhex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn unoct(b: u8) -> Option<u32> {
    (b as char).to_digit(8)
}

/// systemd's `unichar_is_valid`.
fn unichar_is_valid(c: u32) -> bool {
    c < 0x110000
        && (c & 0xFFFF_F800) != 0xD800
        && !(0xFDD0..=0xFDEF).contains(&c)
        && (c & 0xFFFE) != 0xFFFE
}

/// systemd 252's `cunescape_one(p, SIZE_MAX, …, accept_nul=false)`: `p`
/// starts right after the backslash. Returns the number of bytes consumed
/// and what they stand for, or `None` for an unknown or invalid sequence.
pub(crate) fn cunescape_one(p: &[u8]) -> Option<(usize, Unescaped)> {
    let simple = |c: char| Some((1, Unescaped::Char(c as u32)));
    match *p.first()? {
        b'a' => simple('\x07'),
        b'b' => simple('\x08'),
        b'f' => simple('\x0c'),
        b'n' => simple('\n'),
        b'r' => simple('\r'),
        b't' => simple('\t'),
        b'v' => simple('\x0b'),
        b'\\' => simple('\\'),
        b'"' => simple('"'),
        b'\'' => simple('\''),
        b's' => simple(' '),
        b'x' => {
            let a = unhex(*p.get(1)?)?;
            let b = unhex(*p.get(2)?)?;
            let v = (a << 4) | b;
            (v != 0).then_some((3, Unescaped::Byte(v as u8)))
        }
        b'u' => {
            let mut v = 0u32;
            for i in 1..5 {
                v = (v << 4) | unhex(*p.get(i)?)?;
            }
            (v != 0).then_some((5, Unescaped::Char(v)))
        }
        b'U' => {
            let mut v = 0u32;
            for i in 1..9 {
                v = (v << 4) | unhex(*p.get(i)?)?;
            }
            (v != 0 && unichar_is_valid(v)).then_some((9, Unescaped::Char(v)))
        }
        b'0'..=b'7' => {
            let a = unoct(p[0])?;
            let b = unoct(*p.get(1)?)?;
            let c = unoct(*p.get(2)?)?;
            let v = (a << 6) | (b << 3) | c;
            (v != 0 && v <= 255).then_some((3, Unescaped::Byte(v as u8)))
        }
        _ => None,
    }
}

/// Splits a whole setting into word values (for list settings such as
/// `Environment=` or `ReadWritePaths=`). Values that are not UTF-8 are
/// converted lossily; `unknown_escape` is set when any word kept an unknown
/// escape sequence.
pub(crate) fn split_values(s: &str) -> Result<(Vec<String>, bool), SplitError> {
    let mut pos = 0;
    let mut out = Vec::new();
    let mut unknown = false;
    while let Some(w) = next_word(s, &mut pos)? {
        unknown |= w.unknown_escape;
        out.push(String::from_utf8_lossy(&w.value).into_owned());
    }
    Ok((out, unknown))
}

/// Quotes `value` as one word of a systemd command line, so that systemd
/// passes exactly `value` to the program:
///
/// * `%` becomes `%%` (no specifier expansion) and `$` becomes `$$` (no
///   environment variable expansion at exec time);
/// * the word is put in double quotes, with `\` and `"` escaped, when it is
///   empty, contains a space, a quote or a backslash, or starts with `#` or
///   `;` (a lone `;` separates commands, and a word starting with `#` or `;`
///   must never begin a continuation line);
/// * newlines, NUL and all other control characters are refused
///   (`Error::config`, naming the value): they cannot be written safely on
///   a unit file line.
pub fn quote_word(value: &str) -> Result<String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::config(format!(
            "{value:?}: cannot be passed on a systemd command line: it contains the control character {c:?}"
        )));
    }
    let needs_quotes =
        value.is_empty() || value.starts_with(['#', ';']) || value.contains([' ', '"', '\'', '\\']);
    let mut out = String::with_capacity(value.len() + 2);
    if needs_quotes {
        out.push('"');
    }
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\\' | '"' if needs_quotes => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if needs_quotes {
        out.push('"');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<(String, String)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(w) = next_word(s, &mut pos).unwrap() {
            out.push((w.raw.to_string(), String::from_utf8(w.value).unwrap()));
        }
        out
    }

    fn values(s: &str) -> Vec<String> {
        words(s).into_iter().map(|(_, v)| v).collect()
    }

    #[test]
    fn splits_on_whitespace_runs() {
        assert_eq!(values("  a \t b\r\nc  "), ["a", "b", "c"]);
        assert_eq!(values(""), Vec::<String>::new());
        assert_eq!(values("   "), Vec::<String>::new());
    }

    #[test]
    fn quotes_anywhere_in_a_word() {
        // Verified with systemd-analyze verify (252): '--a=b c'd"e f" is one word.
        assert_eq!(values(r#"'--a=b c'd"e f""#), ["--a=b cde f"]);
        assert_eq!(values(r#"a"b" "c"d"#), ["ab", "cd"]);
        assert_eq!(values(r#""" '' a""b"#), ["", "", "ab"]);
        assert_eq!(values(r#""it's" 'say "hi"'"#), ["it's", "say \"hi\""]);
    }

    #[test]
    fn raw_text_is_kept() {
        assert_eq!(
            words(r#"  "a b"  c\x41 '%i'"#),
            vec![
                ("\"a b\"".into(), "a b".into()),
                ("c\\x41".into(), "cA".into()),
                ("'%i'".into(), "%i".into())
            ]
        );
    }

    #[test]
    fn c_escapes() {
        assert_eq!(values(r"\x41\101\u00e9 \xc3\xa9 \s"), ["AAé", "é", " "]);
        assert_eq!(
            values(r#"\a\b\f\n\r\t\v\\\'\"x"#),
            ["\x07\x08\x0c\n\r\t\x0b\\'\"x"]
        );
        assert_eq!(values(r#"'\x41' "\t""#), ["A", "\t"]);
        assert_eq!(values(r"\U0001F600"), ["😀"]);
        assert_eq!(values(r"a\ b"), ["a\\ b"]);
    }

    #[test]
    fn unknown_escapes_are_kept_verbatim() {
        // systemd: "Ignoring unknown escape sequences" and the backslash stays.
        assert_eq!(
            values(r"\q \x00 \; c\; \u0000 \400 \xZZ"),
            ["\\q", "\\x00", "\\;", "c\\;", "\\u0000", "\\400", "\\xZZ"]
        );
        let mut pos = 0;
        assert!(next_word(r"\q", &mut pos).unwrap().unwrap().unknown_escape);
        let mut pos = 0;
        assert!(!next_word(r"\t", &mut pos).unwrap().unwrap().unknown_escape);
        // A trailing unquoted backslash is kept too.
        assert_eq!(values(r"a \"), ["a", "\\"]);
        assert_eq!(values(r#""\;""#), ["\\;"]);
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        for s in [r#""abc"#, "'abc", r#"a "b\"#, r#""abc\"#, r#"x"y"#] {
            let mut pos = 0;
            let r = (|| -> Result<(), SplitError> {
                while next_word(s, &mut pos)?.is_some() {}
                Ok(())
            })();
            assert_eq!(r, Err(SplitError::Unbalanced), "{s}");
        }
    }

    #[test]
    fn non_utf8_bytes_from_hex_escapes() {
        let mut pos = 0;
        let w = next_word(r"\xff", &mut pos).unwrap().unwrap();
        assert_eq!(w.value, vec![0xff]);
        let mut pos = 0;
        let w = next_word(r"\ud800", &mut pos).unwrap().unwrap();
        assert!(String::from_utf8(w.value).is_err());
    }

    #[test]
    fn quote_word_plain_values_are_bare() {
        for v in [
            "--audit-log-path=/var/log/kubernetes/audit/audit.log",
            "a",
            "-",
            "@x",
            "A=B,C",
            "é",
        ] {
            assert_eq!(quote_word(v).unwrap(), v);
        }
    }

    #[test]
    fn quote_word_doubles_percent_and_dollar() {
        assert_eq!(quote_word("50%").unwrap(), "50%%");
        assert_eq!(quote_word("%i").unwrap(), "%%i");
        assert_eq!(quote_word("$HOME").unwrap(), "$$HOME");
        assert_eq!(quote_word("${A}").unwrap(), "$${A}");
        assert_eq!(quote_word("$$").unwrap(), "$$$$");
        assert_eq!(quote_word("a b$%").unwrap(), "\"a b$$%%\"");
    }

    #[test]
    fn quote_word_quotes_when_needed() {
        assert_eq!(quote_word("").unwrap(), "\"\"");
        assert_eq!(quote_word("a b").unwrap(), "\"a b\"");
        assert_eq!(quote_word("it's").unwrap(), "\"it's\"");
        assert_eq!(quote_word("say \"hi\"").unwrap(), "\"say \\\"hi\\\"\"");
        assert_eq!(quote_word("C:\\x").unwrap(), "\"C:\\\\x\"");
        assert_eq!(quote_word("\\").unwrap(), "\"\\\\\"");
        assert_eq!(quote_word(";").unwrap(), "\";\"");
        assert_eq!(quote_word(";x").unwrap(), "\";x\"");
        assert_eq!(quote_word("#x").unwrap(), "\"#x\"");
        assert_eq!(quote_word("x#;").unwrap(), "x#;");
    }

    #[test]
    fn quote_word_rejects_control_characters() {
        for v in ["a\nb", "\0", "a\tb", "\r", "\x1b[0m", "\x7f", "\u{85}"] {
            let e = quote_word(v).unwrap_err();
            assert_eq!(e.code, crate::error::ExitCode::Config, "{v:?}");
            assert!(e.message.contains(&format!("{v:?}")), "{}", e.message);
        }
    }

    /// What systemd does to an argument after unquoting: `%%` → `%` (the
    /// only specifier quote_word emits) and, at exec time, `$$` → `$`.
    fn expand_literal(v: &str) -> String {
        let mut out = String::new();
        let mut it = v.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '%' => {
                    assert_eq!(it.next(), Some('%'), "stray specifier in {v:?}");
                    out.push('%');
                }
                '$' => {
                    assert_eq!(it.next(), Some('$'), "unescaped $ in {v:?}");
                    out.push('$');
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// A small deterministic generator (xorshift64*) for property-style tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn quote_word_round_trips_through_the_splitter() {
        let alphabet: Vec<char> = "ab-=/.:,%$\\\"' ;#{}@!+*?[]~é😀xyz01".chars().collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = rng.below(12);
            let v: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let q = quote_word(&v).unwrap();
            // As the only argument of a command line, and between others.
            for (line, idx, len) in [
                (format!("/bin/x {q}"), 1, 2),
                (format!("/bin/x a {q} b"), 2, 4),
            ] {
                let got = values(&line);
                assert_eq!(got.len(), len, "{v:?} quoted as {q}");
                assert_eq!(expand_literal(&got[idx]), v, "{v:?} quoted as {q}");
            }
            // Never a separator, never a comment at the start of a line.
            assert!(!q.starts_with(['#', ';']), "{q}");
            assert!(!q.contains('\n'));
        }
    }
}
