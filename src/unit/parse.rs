//! The unit file syntax (`man systemd.syntax`), as systemd 252's
//! `config_parse()` reads it. Pure: text in, entries out.
//!
//! * Lines end at LF, CR LF or a lone CR (systemd's `read_line`). A UTF-8
//!   byte order mark at the start is skipped.
//! * A line whose first non-blank character is `#` or `;` is a comment,
//!   **also inside a continuation**: the comment line is dropped and the
//!   continued line goes on with the line after it (`man systemd.syntax`:
//!   "When a comment line or lines follow a line ending with a backslash, the
//!   comment block is ignored").
//! * A line ending in an unescaped backslash continues on the next line: the
//!   backslash is **replaced by a space** and the newline is dropped; the next
//!   line is appended as is, leading whitespace included (so `"a \⏎   b"` is
//!   the value `a  ␣␣␣b` with five spaces; verified with
//!   `systemd-analyze verify`). `\\` at the end of a line is an escaped
//!   backslash, not a continuation. A blank line ends a continuation. A
//!   continuation still pending at the end of the file is parsed as it is.
//! * The joined line is stripped of surrounding whitespace; `[Name]` starts a
//!   section (a line starting with `[` but not ending with `]` is a fatal
//!   error); otherwise the line must be `key=value`, both stripped of
//!   surrounding whitespace. A line without `=` and an assignment before any
//!   section are ignored with a warning (systemd does the same; 252 has no
//!   `.include` any more, it is just a line without `=`).
//!
//! [`Entry::line`] is the line the entry starts on (systemd's own messages
//! give the last line of a continued entry).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::quote::WHITESPACE;

/// A parsed unit file or drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// The node path the text was read from (used in messages).
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    /// Lines systemd ignores with a warning, as `PATH:LINE: message`.
    pub warnings: Vec<String>,
}

/// One `key=value` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The section it is in, without brackets (`Service`).
    pub section: String,
    pub key: String,
    /// The value, continuation lines joined as systemd joins them and
    /// stripped of surrounding whitespace.
    pub value: String,
    /// 1-based line number of the line the entry starts on.
    pub line: usize,
}

impl UnitFile {
    /// The entries of one section, in file order.
    pub fn section<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.section == name)
    }
}

/// Splits text into physical lines the way systemd's `read_line` does:
/// LF, CR LF and a lone CR all end a line.
fn physical_lines(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push(&text[start..i]);
                i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// Whether `s` ends in a backslash that is not itself escaped.
pub(crate) fn ends_escaped(s: &str) -> bool {
    let mut escaped = false;
    for b in s.bytes() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        }
    }
    escaped
}

/// Parses the text of a unit file or drop-in. `path` is the node path, used
/// in entries and messages. Errors (EX_DATAERR) name the file and line.
pub fn parse_unit_file(path: &Path, text: &str) -> Result<UnitFile> {
    let mut file = UnitFile {
        path: path.to_path_buf(),
        entries: Vec::new(),
        warnings: Vec::new(),
    };
    let mut section: Option<String> = None;
    let mut continuation: Option<(String, usize)> = None;

    for (idx, mut line) in physical_lines(text).into_iter().enumerate() {
        let no = idx + 1;
        if idx == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let lead = line.trim_start_matches(WHITESPACE);
        if lead.starts_with(['#', ';']) {
            continue;
        }
        let (mut joined, first) = match continuation.take() {
            Some((mut c, first)) => {
                c.push_str(line);
                (c, first)
            }
            None => (line.to_string(), no),
        };
        if ends_escaped(&joined) {
            joined.pop();
            joined.push(' ');
            continuation = Some((joined, first));
            continue;
        }
        parse_line(&mut file, &mut section, &joined, first)?;
    }
    if let Some((joined, first)) = continuation {
        parse_line(&mut file, &mut section, &joined, first)?;
    }
    Ok(file)
}

fn parse_line(
    file: &mut UnitFile,
    section: &mut Option<String>,
    text: &str,
    line: usize,
) -> Result<()> {
    let l = text.trim_matches(WHITESPACE);
    if l.is_empty() || l.starts_with(['#', ';']) {
        return Ok(());
    }
    if l.starts_with('[') {
        let Some(name) = l.strip_suffix(']') else {
            return Err(Error::data(format!(
                "{}:{line}: invalid section header '{l}'",
                file.path.display()
            )));
        };
        *section = Some(name[1..].to_string());
        return Ok(());
    }
    let Some(sect) = section else {
        file.warnings.push(format!(
            "{}:{line}: assignment outside of a section, ignored by systemd",
            file.path.display()
        ));
        return Ok(());
    };
    let Some((key, value)) = l.split_once('=') else {
        file.warnings.push(format!(
            "{}:{line}: missing '=', line ignored by systemd: {l}",
            file.path.display()
        ));
        return Ok(());
    };
    file.entries.push(Entry {
        section: sect.clone(),
        key: key.trim_matches(WHITESPACE).to_string(),
        value: value.trim_matches(WHITESPACE).to_string(),
        line,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> UnitFile {
        parse_unit_file(Path::new("/etc/systemd/system/x.service"), text).unwrap()
    }

    fn kv(f: &UnitFile) -> Vec<(&str, &str, &str, usize)> {
        f.entries
            .iter()
            .map(|e| (e.section.as_str(), e.key.as_str(), e.value.as_str(), e.line))
            .collect()
    }

    #[test]
    fn sections_keys_and_whitespace_around_equals() {
        let f = parse(
            "[Unit]\nDescription = A B  \n\n[Service]\n  ExecStart =  /bin/x  a  \nUser=kube\nEmpty=\n",
        );
        assert_eq!(
            kv(&f),
            vec![
                ("Unit", "Description", "A B", 2),
                ("Service", "ExecStart", "/bin/x  a", 5),
                ("Service", "User", "kube", 6),
                ("Service", "Empty", "", 7),
            ]
        );
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn value_keeps_later_equals_signs() {
        let f = parse("[Service]\nEnvironment=A=b=c\n");
        assert_eq!(kv(&f), vec![("Service", "Environment", "A=b=c", 2)]);
    }

    #[test]
    fn comments() {
        let f = parse("# c\n; c\n[Service]\n   # indented\nUser=a # not a comment\n");
        assert_eq!(kv(&f), vec![("Service", "User", "a # not a comment", 5)]);
    }

    #[test]
    fn continuation_replaces_backslash_by_space_and_keeps_indentation() {
        let f = parse("[Service]\nExecStart=/bin/x \\\n  --a \\\n\t--b\nUser=u\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x    --a  \t--b", 2),
                ("Service", "User", "u", 5)
            ]
        );
        // No space before the backslash: the backslash itself becomes the space.
        let f = parse("[Service]\nExecStart=/bin/x\\\n--a\n");
        assert_eq!(f.entries[0].value, "/bin/x --a");
        // Inside quotes the joined whitespace is part of the word (verified
        // with systemd-analyze: "three     four").
        let f = parse("[Service]\nExecStart=/bin/x \"three \\\n   four\"\n");
        assert_eq!(f.entries[0].value, "/bin/x \"three     four\"");
    }

    #[test]
    fn comment_lines_inside_a_continuation_are_dropped() {
        let f =
            parse("[Service]\nExecStart=/bin/x one\\\n# comment\n  ; another\n   two\nUser=u\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x one    two", 2),
                ("Service", "User", "u", 6)
            ]
        );
    }

    #[test]
    fn escaped_backslash_at_end_is_not_a_continuation() {
        let f = parse("[Service]\nExecStart=/bin/x a\\\\\nUser=u\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x a\\\\", 2),
                ("Service", "User", "u", 3)
            ]
        );
        let f = parse("[Service]\nExecStart=/bin/x a\\\\\\\nb\n");
        assert_eq!(kv(&f), vec![("Service", "ExecStart", "/bin/x a\\\\ b", 2)]);
    }

    #[test]
    fn backslash_space_at_end_is_not_a_continuation() {
        let f = parse("[Service]\nExecStart=/bin/x \\ \nUser=u\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x \\", 2),
                ("Service", "User", "u", 3)
            ]
        );
    }

    #[test]
    fn blank_line_ends_a_continuation() {
        let f = parse("[Service]\nExecStart=/bin/x \\\n \nUser=u\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x", 2),
                ("Service", "User", "u", 4)
            ]
        );
    }

    #[test]
    fn continuation_at_end_of_file() {
        let f = parse("[Service]\nExecStart=/bin/x \\\n   end \\");
        assert_eq!(kv(&f), vec![("Service", "ExecStart", "/bin/x     end", 2)]);
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let f = parse("[Service]\r\nExecStart=/bin/x\\\r\n  y\r\nUser=u\rGroup=g\n");
        assert_eq!(
            kv(&f),
            vec![
                ("Service", "ExecStart", "/bin/x   y", 2),
                ("Service", "User", "u", 4),
                ("Service", "Group", "g", 5)
            ]
        );
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let f = parse("\u{feff}[Service]\nUser=u\n");
        assert_eq!(kv(&f), vec![("Service", "User", "u", 2)]);
    }

    #[test]
    fn ignored_lines_are_warnings() {
        let f = parse("User=early\n[Service]\n.include /etc/x\nNoEquals\nUser=u\n");
        assert_eq!(kv(&f), vec![("Service", "User", "u", 5)]);
        assert_eq!(f.warnings.len(), 3, "{:?}", f.warnings);
        assert!(f.warnings[0].starts_with("/etc/systemd/system/x.service:1: assignment outside"));
        assert!(f.warnings[1].starts_with("/etc/systemd/system/x.service:3: missing '='"));
    }

    #[test]
    fn bad_section_header_names_file_and_line() {
        let e = parse_unit_file(
            Path::new("/lib/systemd/system/y.service"),
            "[Unit]\n\n[Service # x\n",
        )
        .unwrap_err();
        assert_eq!(e.code, crate::error::ExitCode::DataErr);
        assert_eq!(
            e.message,
            "/lib/systemd/system/y.service:3: invalid section header '[Service # x'"
        );
    }

    #[test]
    fn section_filter() {
        let f = parse("[Unit]\nA=1\n[Service]\nA=2\n[Unit]\nA=3\n");
        let v: Vec<&str> = f.section("Unit").map(|e| e.value.as_str()).collect();
        assert_eq!(v, ["1", "3"]);
    }
}
