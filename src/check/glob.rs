//! A small glob(3) matcher for logrotate patterns: `*`, `?`, `[...]`
//! (`!` or `^` negates, `a-z` ranges), `\` escapes and `{a,b}` alternatives
//! (GLOB_BRACE, nested). As glob(3) does, wildcards never match `/`, and a
//! `.` that starts a path component is matched only by a literal `.`.
//!
//! Pure: a pattern and a path in, a yes or no out.

/// Whether `pattern` matches `path`.
pub fn matches(pattern: &str, path: &str) -> bool {
    expand_braces(pattern)
        .iter()
        .any(|p| match_here(p.as_bytes(), path.as_bytes(), true))
}

/// `{a,b}c` → `ac`, `bc`; nested and several groups; a `{` without its
/// `}` (or without a `,`) is literal, as GLOB_BRACE leaves it. At most 256
/// alternatives.
pub fn expand_braces(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(pattern, &mut out);
    out
}

fn expand_into(p: &str, out: &mut Vec<String>) {
    if out.len() >= 256 {
        return;
    }
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'{' => {
                if let Some((close, commas)) = group_end(b, i)
                    && !commas.is_empty()
                {
                    let (head, tail) = (&p[..i], &p[close + 1..]);
                    let mut start = i + 1;
                    for c in commas.iter().copied().chain([close]) {
                        expand_into(&format!("{head}{}{tail}", &p[start..c]), out);
                        start = c + 1;
                    }
                    return;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push(p.to_string());
}

/// The `}` closing the group opened at `open`, and the top-level commas in it.
fn group_end(b: &[u8], open: usize) -> Option<(usize, Vec<usize>)> {
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some((i, commas)),
            b'}' => depth -= 1,
            b',' if depth == 0 => commas.push(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Matches without braces. `at_start`: `s` begins a path component.
fn match_here(p: &[u8], s: &[u8], at_start: bool) -> bool {
    let hidden = |s: &[u8], at_start: bool| at_start && s.first() == Some(&b'.');
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => {
            if hidden(s, at_start) {
                return false;
            }
            // `*` matches any run of non-`/` characters, the empty one included.
            let mut k = 0;
            loop {
                if match_here(&p[1..], &s[k..], at_start && k == 0) {
                    return true;
                }
                if k == s.len() || s[k] == b'/' {
                    return false;
                }
                k += 1;
            }
        }
        Some(b'?') => {
            !s.is_empty()
                && s[0] != b'/'
                && !hidden(s, at_start)
                && match_here(&p[1..], &s[1..], false)
        }
        Some(b'[') => match class(p, s.first().copied()) {
            Some((true, len)) if !hidden(s, at_start) => match_here(&p[len..], &s[1..], false),
            Some(_) => false,
            // No closing `]`: a literal `[`.
            None => s.first() == Some(&b'[') && match_here(&p[1..], &s[1..], false),
        },
        Some(b'\\') if p.len() > 1 => {
            s.first() == Some(&p[1]) && match_here(&p[2..], &s[1..], p[1] == b'/')
        }
        Some(&c) => s.first() == Some(&c) && match_here(&p[1..], &s[1..], c == b'/'),
    }
}

/// A bracket expression at the start of `p`: whether `c` is in it, and its
/// length; `None` when it is not closed. Never matches `/`.
fn class(p: &[u8], c: Option<u8>) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        let (lo, step) = if lo == b'\\' {
            (*p.get(i + 1)?, 2)
        } else {
            (lo, 1)
        };
        i += step;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|h| *h != b']') {
            let hi = p[i + 1];
            i += 2;
            if c.is_some_and(|c| lo <= c && c <= hi) {
                found = true;
            }
        } else if c == Some(lo) {
            found = true;
        }
    }
    let hit = c.is_some_and(|c| c != b'/') && (found != negate);
    Some((hit, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "/var/log/kubernetes/audit/audit.log";
    const BACKUP: &str = "/var/log/kubernetes/audit/audit-2026-01-01T00-00-00.000.log";

    #[test]
    fn stars_stay_in_their_component() {
        assert!(matches("/var/log/kubernetes/audit/*.log", LOG));
        assert!(matches("/var/log/kubernetes/audit/*.log", BACKUP));
        assert!(matches("/var/log/kubernetes/*/*.log", LOG));
        assert!(!matches("/var/log/*.log", LOG), "* does not cross /");
        assert!(!matches("/var/log/kubernetes/*.log", LOG));
        assert!(matches("/var/log/kubernetes/audit/*", LOG));
        assert!(matches(LOG, LOG));
        assert!(!matches("/var/log/kubernetes/audit/audit.log.1", LOG));
        assert!(matches("/var/log/kubernetes/audit/audit-*.log", BACKUP));
        assert!(!matches("/var/log/kubernetes/audit/audit-*.log", LOG));
    }

    #[test]
    fn question_marks_classes_and_escapes() {
        assert!(matches("/var/log/kubernetes/audit/audi?.log", LOG));
        assert!(matches("/var/log/kubernetes/audit/[a-c]udit.log", LOG));
        assert!(!matches("/var/log/kubernetes/audit/[!a]udit.log", LOG));
        assert!(matches("/var/log/kubernetes/audit/[^b]udit.log", LOG));
        assert!(matches("/var/log/kubernetes/audit/audit\\.log", LOG));
        assert!(!matches("/var/log/kubernetes/audit/audit\\*", LOG));
        assert!(matches("/a/[]]", "/a/]"));
        assert!(matches("/a/[", "/a/["), "an unclosed [ is literal");
        assert!(
            !matches("/var/log?kubernetes/audit/audit.log", LOG),
            "? never matches /"
        );
    }

    #[test]
    fn braces() {
        assert_eq!(expand_braces("/a/{b,c}.log"), ["/a/b.log", "/a/c.log"]);
        assert_eq!(expand_braces("/{x,y{1,2}}/z"), ["/x/z", "/y1/z", "/y2/z"]);
        assert_eq!(
            expand_braces("/a/{b}.log"),
            ["/a/{b}.log"],
            "no comma: literal"
        );
        assert_eq!(expand_braces("/a/{b,c"), ["/a/{b,c"], "unclosed: literal");
        assert!(matches("/var/log/{syslog,kubernetes/audit/*.log}", LOG));
        assert!(!matches("/var/log/{syslog,messages}", LOG));
    }

    #[test]
    fn leading_dots_need_a_literal_dot() {
        assert!(!matches("/var/log/*", "/var/log/.hidden"));
        assert!(!matches("/var/log/?hidden", "/var/log/.hidden"));
        assert!(matches("/var/log/.*", "/var/log/.hidden"));
        assert!(
            matches("/var/log/a*", "/var/log/a.b"),
            "a dot inside a name is ordinary"
        );
    }
}
