//! The logrotate rules on a node, read enough to know which files each
//! rule rotates: `/etc/logrotate.conf`, every file under `/etc/logrotate.d`
//! and what `include` names (files or directories), under a [`Root`].
//!
//! [`parse`] is pure: configuration text in, rules (their path patterns and
//! line) and includes out. A rule is `PATTERN... {` … `}`; patterns may be
//! quoted and span lines before the `{`; `postrotate` … `endscript` script
//! blocks are skipped whole (they may hold braces); a line whose first
//! non-blank character is `#` is a comment. Files in an included directory
//! whose names end with one of logrotate's default `tabooext` extensions
//! (`.dpkg-old`, `.rpmsave`, `~`, …) are skipped, as logrotate skips them.

use std::path::{Path, PathBuf};

use crate::root::Root;

/// One rule: the patterns before its `{`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// The node path of the file it is in.
    pub file: PathBuf,
    /// The line of its first pattern.
    pub line: usize,
    pub patterns: Vec<String>,
    /// The file starts with kaudit-node's header (its own snippet).
    pub ours: bool,
}

/// What one configuration file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `(line, patterns)` of each rule.
    pub rules: Vec<(usize, Vec<String>)>,
    /// Paths given to `include`.
    pub includes: Vec<String>,
}

/// logrotate's default `tabooext` list (logrotate 3.21 `config.c`).
const TABOO: [&str; 17] = [
    ",v",
    ".cfsaved",
    ".disabled",
    ".dpkg-bak",
    ".dpkg-del",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rhn-cfg-tmp-",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".swp",
    ".ucf-dist",
    ".ucf-new",
    ".ucf-old",
    "~",
];

const SCRIPTS: [&str; 5] = [
    "postrotate",
    "prerotate",
    "firstaction",
    "lastaction",
    "preremove",
];

/// Splits a line into words: whitespace-separated, `"…"` and `'…'` quoted.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A word ending in a `{` that opens a block (not one of a `{a,b}` group).
fn opens_block(w: &str) -> Option<&str> {
    let opens = w.matches('{').count();
    let closes = w.matches('}').count();
    (w.ends_with('{') && opens > closes).then(|| &w[..w.len() - 1])
}

enum State {
    Top,
    Block,
    Script,
}

/// Parses one configuration file's text.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut state = State::Top;
    let mut pending: Option<(usize, Vec<String>)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match state {
            State::Script => {
                if line.split_whitespace().next() == Some("endscript") {
                    state = State::Block;
                }
            }
            State::Block => {
                let first = line.split_whitespace().next().unwrap_or_default();
                if SCRIPTS.contains(&first) {
                    state = State::Script;
                } else if first.starts_with('}') {
                    state = State::Top;
                }
            }
            State::Top => {
                let ws = words(line);
                let starts_rule = pending.is_some()
                    || ws.first().is_some_and(|w| {
                        w.starts_with('/')
                            || w.starts_with('~')
                            || w.starts_with('{')
                            || w.contains('*')
                    })
                    || line.starts_with('"')
                    || line.starts_with('\'');
                if !starts_rule {
                    if ws.first().map(String::as_str) == Some("include")
                        && let Some(p) = ws.get(1)
                    {
                        out.includes.push(p.clone());
                    }
                    continue;
                }
                let (_, pats) = pending.get_or_insert_with(|| (n + 1, Vec::new()));
                let mut opened = false;
                let mut rest = ws.into_iter();
                for w in rest.by_ref() {
                    if w == "{" {
                        opened = true;
                        break;
                    }
                    if let Some(p) = opens_block(&w) {
                        if !p.is_empty() {
                            pats.push(p.to_string());
                        }
                        opened = true;
                        break;
                    }
                    pats.push(w);
                }
                if opened {
                    out.rules.extend(pending.take());
                    // `{ daily }` on one line.
                    state = if rest.any(|w| w.starts_with('}')) {
                        State::Top
                    } else {
                        State::Block
                    };
                }
            }
        }
    }
    out
}

fn taboo(name: &str) -> bool {
    TABOO.iter().any(|t| {
        if *t == ".rhn-cfg-tmp-" {
            name.contains(t)
        } else {
            name.ends_with(t)
        }
    })
}

/// The main configuration file and the directory every distribution includes.
pub const CONF: &str = "/etc/logrotate.conf";
pub const CONF_DIR: &str = "/etc/logrotate.d";

/// Reads every rule on the node: `/etc/logrotate.conf`, what it includes,
/// and every file in `/etc/logrotate.d` (included or not). A missing file
/// or directory has no rules; an unreadable one is an error.
pub fn read_rules(root: &Root, header: &str) -> Result<Vec<Rule>, String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut rules = Vec::new();
    let mut queue: Vec<(PathBuf, usize)> =
        vec![(PathBuf::from(CONF), 0), (PathBuf::from(CONF_DIR), 0)];
    while let Some((node, depth)) = queue.pop() {
        if seen.contains(&node) || depth > 8 {
            continue;
        }
        seen.push(node.clone());
        let host = root.host_path(&node);
        let md = match std::fs::metadata(&host) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", node.display())),
        };
        if md.is_dir() {
            let mut names: Vec<String> = std::fs::read_dir(&host)
                .map_err(|e| format!("{}: {e}", node.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !taboo(n))
                .collect();
            names.sort();
            // Popped last-first: push in reverse to read in name order.
            for n in names.into_iter().rev() {
                queue.push((node.join(n), depth + 1));
            }
            continue;
        }
        let bytes = std::fs::read(&host).map_err(|e| format!("{}: {e}", node.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse(&text);
        let ours = text.starts_with(header);
        rules.extend(parsed.rules.into_iter().map(|(line, patterns)| Rule {
            file: node.clone(),
            line,
            patterns,
            ours,
        }));
        for inc in parsed.includes.into_iter().rev() {
            let p = Path::new(&inc);
            if p.is_absolute() {
                queue.push((p.to_path_buf(), depth + 1));
            }
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_includes_scripts_and_comments() {
        let text = r#"# see "man logrotate" for details
weekly
rotate 4
create
include /etc/logrotate.d

/var/log/wtmp {
    missingok
    monthly
}

# a comment with /var/log/x.log {
"/var/log/quoted name.log" /var/log/b.log
/var/log/c.log
{
    postrotate
        if [ -f /run/x.pid ]; then kill -HUP $(cat /run/x.pid); fi }
        echo '{'
    endscript
}
/var/log/kubernetes/*.log{
}
/var/log/{a,b}.log { daily }
/var/log/after.log {
}
"#;
        let p = parse(text);
        assert_eq!(p.includes, ["/etc/logrotate.d"]);
        let pats: Vec<(usize, Vec<&str>)> = p
            .rules
            .iter()
            .map(|(l, v)| (*l, v.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            pats,
            [
                (7, vec!["/var/log/wtmp"]),
                (
                    13,
                    vec![
                        "/var/log/quoted name.log",
                        "/var/log/b.log",
                        "/var/log/c.log"
                    ]
                ),
                (21, vec!["/var/log/kubernetes/*.log"]),
                (23, vec!["/var/log/{a,b}.log"]),
                (24, vec!["/var/log/after.log"]),
            ]
        );
    }

    #[test]
    fn taboo_extensions() {
        assert!(taboo("foo.dpkg-old"));
        assert!(taboo("foo~"));
        assert!(taboo("x.rhn-cfg-tmp-123"));
        assert!(!taboo("kaudit-node"));
        assert!(!taboo("rsyslog"));
    }
}
