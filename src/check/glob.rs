//! A small glob(3) matcher for logrotate patterns: `*`, `?`, `[...]`
//! (`!` or `^` negates, `a-z` ranges), `\` escapes and `{a,b}` alternatives
//! (GLOB_BRACE, nested). As glob(3) does, wildcards never match `/`, and a
//! `.` that starts a path component is matched only by a literal `.`.
//!
//! Pure: a pattern and a path in, a yes or no out.

/// Patterns longer than this (PATH_MAX) are compared as they are, without
/// brace expansion or wildcards: no path logrotate rotates is that long,
/// and it bounds the work a pathological rule can cost a check that runs
/// every minute.
pub const MAX_PATTERN: usize = 4096;

/// Whether `pattern` matches `path`.
pub fn matches(pattern: &str, path: &str) -> bool {
    if pattern.len() > MAX_PATTERN {
        return pattern == path;
    }
    expand_braces(pattern)
        .iter()
        .any(|p| match_here(p.as_bytes(), path.as_bytes()))
}

/// At most this many alternatives, and this many groups expanded one
/// inside the other (the rest of a pattern is then kept literal).
const MAX_ALTERNATIVES: usize = 256;
const MAX_GROUPS: usize = 64;

/// `{a,b}c` → `ac`, `bc`; nested and several groups; a `{` without its
/// `}` (or without a `,`) is literal, as GLOB_BRACE leaves it. At most 256
/// alternatives, from at most 64 groups.
pub fn expand_braces(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(pattern, 0, &mut out);
    out
}

fn expand_into(p: &str, groups: usize, out: &mut Vec<String>) {
    if out.len() >= MAX_ALTERNATIVES {
        return;
    }
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() && groups < MAX_GROUPS {
        match b[i] {
            b'\\' => i += 2,
            b'{' => {
                if let Some((close, commas)) = group_end(b, i)
                    && !commas.is_empty()
                {
                    let (head, tail) = (&p[..i], &p[close + 1..]);
                    let mut start = i + 1;
                    for c in commas.iter().copied().chain([close]) {
                        if out.len() >= MAX_ALTERNATIVES {
                            return;
                        }
                        expand_into(&format!("{head}{}{tail}", &p[start..c]), groups + 1, out);
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

/// Matches a pattern without braces against a whole path.
///
/// A table of "the pattern from `pi` matches the path from `si`", filled
/// from the ends: pattern × path steps, however many `*` the pattern has
/// (trying every split of every `*` in turn is exponential in them).
fn match_here(p: &[u8], s: &[u8]) -> bool {
    let w = s.len() + 1;
    let mut m = vec![false; (p.len() + 1) * w];
    let at = |pi: usize, si: usize| pi * w + si;
    m[at(p.len(), s.len())] = true;
    for pi in (0..p.len()).rev() {
        for si in (0..=s.len()).rev() {
            let c = s.get(si).copied();
            // Wildcards never match `/`, nor a `.` that starts a component.
            let starts_component = si == 0 || s[si - 1] == b'/';
            let hidden = starts_component && c == Some(b'.');
            let wild = c.is_some_and(|c| c != b'/') && !hidden;
            m[at(pi, si)] = match p[pi] {
                // `*` matches any run of non-`/` characters, the empty one
                // included, but not from a hidden name's `.`.
                b'*' => !hidden && (m[at(pi + 1, si)] || (wild && m[at(pi, si + 1)])),
                b'?' => wild && m[at(pi + 1, si + 1)],
                b'[' => match class(&p[pi..], c) {
                    Some((true, len)) => wild && m[at(pi + len, si + 1)],
                    Some(_) => false,
                    // No closing `]`: a literal `[`.
                    None => c == Some(b'[') && m[at(pi + 1, si + 1)],
                },
                b'\\' if pi + 1 < p.len() => c == Some(p[pi + 1]) && m[at(pi + 2, si + 1)],
                lit => c == Some(lit) && m[at(pi + 1, si + 1)],
            };
        }
    }
    m[0]
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

    /// The recursive match this module used before: plainly correct,
    /// exponential in the number of `*`. The table must agree with it.
    fn reference(p: &[u8], s: &[u8], at_start: bool) -> bool {
        let hidden = |s: &[u8], at_start: bool| at_start && s.first() == Some(&b'.');
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => {
                if hidden(s, at_start) {
                    return false;
                }
                let mut k = 0;
                loop {
                    if reference(&p[1..], &s[k..], at_start && k == 0) {
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
                    && reference(&p[1..], &s[1..], false)
            }
            Some(b'[') => match class(p, s.first().copied()) {
                Some((true, len)) if !hidden(s, at_start) => reference(&p[len..], &s[1..], false),
                Some(_) => false,
                None => s.first() == Some(&b'[') && reference(&p[1..], &s[1..], false),
            },
            Some(b'\\') if p.len() > 1 => {
                s.first() == Some(&p[1]) && reference(&p[2..], &s[1..], p[1] == b'/')
            }
            Some(&c) => s.first() == Some(&c) && reference(&p[1..], &s[1..], c == b'/'),
        }
    }

    fn all(alphabet: &[&str], max: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..max {
            layer = layer
                .iter()
                .flat_map(|s| alphabet.iter().map(move |a| format!("{s}{a}")))
                .collect();
            out.extend(layer.iter().cloned());
        }
        out
    }

    /// Every pattern of up to 4 symbols of pattern syntax against every
    /// path of up to 4 characters: about 2.5 million pairs.
    #[test]
    fn the_table_agrees_with_the_recursive_reference() {
        let patterns = all(&["a", "/", ".", "*", "?", "[a-b]", "[!a]", "[", "\\"], 4);
        let paths = all(&["a", "b", "/", "."], 4);
        for p in &patterns {
            for s in &paths {
                assert_eq!(
                    match_here(p.as_bytes(), s.as_bytes()),
                    reference(p.as_bytes(), s.as_bytes(), true),
                    "{p:?} {s:?}"
                );
            }
        }
        assert_eq!(patterns.len() * paths.len(), 7381 * 341);
    }

    #[test]
    fn many_stars_and_groups_stay_cheap() {
        let stars = format!("/var/log/{}x", "*a".repeat(300));
        assert!(!matches(&stars, &format!("/var/log/{}", "a".repeat(3000))));
        assert!(matches(&stars, &format!("/var/log/{}x", "a".repeat(3000))));
        // 2^40 alternatives: the first 256 are tried.
        let groups = format!("/var/log/{}", "{a,b}".repeat(40));
        assert_eq!(expand_braces(&groups).len(), 256);
        assert!(matches(&groups, &format!("/var/log/{}", "a".repeat(40))));
        // Groups past the 64th stay literal.
        let deep = "{a,b}".repeat(70);
        let first = &expand_braces(&deep)[0];
        assert_eq!(first, &format!("{}{}", "a".repeat(64), "{a,b}".repeat(6)));
        // A pattern over PATH_MAX is compared as it is.
        let long = format!("/{}", "*".repeat(MAX_PATTERN));
        assert!(!matches(&long, "/a"));
        assert!(matches(&long, &long));
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
