//! Go-compatible text: `%q` quoting, the `strconv` and `time.ParseDuration` parsers
//! pflag uses for flag values, and `syscall.Errno` strings, so the stand-in's
//! messages are byte for byte what a Go kube-apiserver prints (docs/reference.md, Observed on real
//! apiservers).

use std::io;

/// Go's `strconv.Quote` (also what `%q` does to a string).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub fn quote_slice(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// `%#v` of a `[]string`: `[]string{"a", "b"}` (used by `field.Invalid` on slices).
pub fn gosyntax_slice(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

/// The text Go's `syscall.Errno.Error()` gives for an OS error: the C library's
/// message with a lower-case first letter ("no such file or directory").
pub fn errno_text(err: &io::Error) -> String {
    let full = match err.raw_os_error() {
        Some(code) => {
            let s = io::Error::from_raw_os_error(code).to_string();
            match s.find(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => err.to_string(),
    };
    let mut chars = full.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().collect::<String>() + chars.as_str(),
        None => full,
    }
}

/// Go's `*os.PathError` text: `open /x: permission denied`.
pub fn path_error(op: &str, path: &str, err: &io::Error) -> String {
    format!("{op} {path}: {}", errno_text(err))
}

fn syntax_error(func: &str, s: &str) -> String {
    format!("strconv.{func}: parsing {}: invalid syntax", quote(s))
}

fn range_error(func: &str, s: &str) -> String {
    format!("strconv.{func}: parsing {}: value out of range", quote(s))
}

/// Go's `underscoreOK` from strconv: underscores only between digits or after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut saw = b'^';
    let mut s = b;
    if !s.is_empty() && (s[0] == b'-' || s[0] == b'+') {
        s = &s[1..];
    }
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && matches!(c.to_ascii_lowercase(), b'a'..=b'f')) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseInt(s, 0, 64)`, which pflag's int and int64 flags use.
pub fn parse_int(s0: &str) -> Result<i64, String> {
    const F: &str = "ParseInt";
    if s0.is_empty() {
        return Err(syntax_error(F, s0));
    }
    let (neg, body) = match s0.as_bytes()[0] {
        b'+' => (false, &s0[1..]),
        b'-' => (true, &s0[1..]),
        _ => (false, s0),
    };
    if body.is_empty() {
        return Err(syntax_error(F, s0));
    }
    let bytes = body.as_bytes();
    let (base, digits): (u32, &[u8]) = if bytes[0] == b'0' {
        if bytes.len() >= 3 && bytes[1].eq_ignore_ascii_case(&b'b') {
            (2, &bytes[2..])
        } else if bytes.len() >= 3 && bytes[1].eq_ignore_ascii_case(&b'o') {
            (8, &bytes[2..])
        } else if bytes.len() >= 3 && bytes[1].eq_ignore_ascii_case(&b'x') {
            (16, &bytes[2..])
        } else {
            (8, &bytes[1..])
        }
    } else {
        (10, bytes)
    };
    let mut n: u128 = 0;
    let mut underscores = false;
    let mut overflow = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let d = match (c as char).to_digit(36) {
            Some(d) if d < base => d,
            _ => return Err(syntax_error(F, s0)),
        };
        if !overflow {
            n = n * base as u128 + d as u128;
            if n > u64::MAX as u128 {
                overflow = true;
            }
        }
    }
    if underscores && !underscore_ok(body) {
        return Err(syntax_error(F, s0));
    }
    let limit: u128 = 1u128 << 63;
    if overflow || (!neg && n >= limit) || (neg && n > limit) {
        return Err(range_error(F, s0));
    }
    Ok(if neg {
        (n as i128).wrapping_neg() as i64
    } else {
        n as i64
    })
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(syntax_error("ParseBool", s)),
    }
}

/// Go's `strconv.ParseFloat(s, bits)` for the decimal forms real command lines use.
pub fn parse_float(s: &str, bits: u32) -> Result<f64, String> {
    const F: &str = "ParseFloat";
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let special = matches!(unsigned, "inf" | "infinity" | "nan");
    let plain = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'));
    if !(special || plain) {
        return Err(syntax_error(F, s));
    }
    let v: f64 = lower.parse().map_err(|_| syntax_error(F, s))?;
    let max = if bits == 32 {
        f32::MAX as f64
    } else {
        f64::MAX
    };
    if v.is_infinite() && !special || v.is_finite() && v.abs() > max {
        return Err(range_error(F, s));
    }
    Ok(v)
}

/// Go's `time.ParseDuration`, returning nanoseconds.
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_end = b
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len());
        let int_part = &s[..int_end];
        let mut rest = &s[int_end..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let fe = r
                .bytes()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(r.len());
            frac_part = &r[..fe];
            rest = &r[fe..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_end = rest
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit),
                    quote(orig)
                ));
            }
        };
        let int_v: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut v = int_v.checked_mul(scale).ok_or_else(invalid)?;
        let mut frac_scale = scale;
        for d in frac_part.bytes().take(30) {
            frac_scale /= 10;
            v += (d - b'0') as u128 * frac_scale;
        }
        total += v;
        if total > i64::MAX as u128 + neg as u128 {
            return Err(invalid());
        }
        s = &rest[unit_end..];
    }
    Ok(if neg {
        (total as i128).wrapping_neg() as i64
    } else {
        total as i64
    })
}

/// Go's `time.Duration.String()` for whole milliseconds and up (what flag defaults need).
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        return if u.is_multiple_of(1_000_000) {
            format!("{sign}{}ms", u / 1_000_000)
        } else if u.is_multiple_of(1_000) {
            format!("{sign}{}\u{b5}s", u / 1_000)
        } else {
            format!("{sign}{u}ns")
        };
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let mut sec_str = format!("{}", secs % 60);
    if frac != 0 {
        let f = format!("{frac:09}");
        sec_str.push('.');
        sec_str.push_str(f.trim_end_matches('0'));
    }
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec_str}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec_str}s")
    } else {
        format!("{sign}{sec_str}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote("\u{1}"), "\"\\x01\"");
        assert_eq!(quote("µs"), "\"µs\"");
        assert_eq!(quote_slice(&["a".into(), "b".into()]), "[\"a\" \"b\"]");
        assert_eq!(gosyntax_slice(&["/x".into()]), "[]string{\"/x\"}");
    }

    #[test]
    fn parse_int_like_strconv() {
        assert_eq!(parse_int("100"), Ok(100));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(
            parse_int("abc").unwrap_err(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse_int("").unwrap_err(),
            "strconv.ParseInt: parsing \"\": invalid syntax"
        );
        assert_eq!(
            parse_int("1.5").unwrap_err(),
            "strconv.ParseInt: parsing \"1.5\": invalid syntax"
        );
        assert_eq!(
            parse_int("09").unwrap_err(),
            "strconv.ParseInt: parsing \"09\": invalid syntax"
        );
        assert_eq!(
            parse_int("_1").unwrap_err(),
            "strconv.ParseInt: parsing \"_1\": invalid syntax"
        );
        assert_eq!(
            parse_int("9223372036854775808").unwrap_err(),
            "strconv.ParseInt: parsing \"9223372036854775808\": value out of range"
        );
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
    }

    #[test]
    fn parse_bool_and_float() {
        assert_eq!(parse_bool("True"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert_eq!(
            parse_bool("yes").unwrap_err(),
            "strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(parse_float("1.5", 32), Ok(1.5));
        assert_eq!(parse_float("-2e1", 32), Ok(-20.0));
        assert_eq!(
            parse_float("x", 32).unwrap_err(),
            "strconv.ParseFloat: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse_float("1e39", 32).unwrap_err(),
            "strconv.ParseFloat: parsing \"1e39\": value out of range"
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(
            parse_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert_eq!(
            parse_duration("10x").unwrap_err(),
            "time: unknown unit \"x\" in duration \"10x\""
        );
        assert_eq!(
            parse_duration("abc").unwrap_err(),
            "time: invalid duration \"abc\""
        );
        assert_eq!(format_duration(10_000_000_000), "10s");
        assert_eq!(format_duration(30_000_000_000), "30s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_duration(300_000_000), "300ms");
    }

    #[test]
    fn errno_like_go() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&e), "no such file or directory");
        let e = io::Error::from_raw_os_error(libc::EROFS);
        assert_eq!(
            path_error("open", "/x", &e),
            "open /x: read-only file system"
        );
    }
}
