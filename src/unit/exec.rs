//! `ExecStart=` command lines, text-preserving.
//!
//! A [`Command`] keeps every word twice: its raw text, exactly as written
//! in the unit file (to re-emit it verbatim), and its value after systemd's
//! unquoting (quotes removed, C escapes decoded) but **before** specifier
//! expansion (`%i`, `%%` stay as written) and before environment expansion
//! (`$VAR`, `${VAR}`, `$$` stay as written). Re-emitting the raw words
//! separated by whitespace gives systemd the same argv, because systemd
//! splits on whitespace runs, expands specifiers per word after unquoting
//! (`config_parse_exec` → `unit_full_printf`), and expands variables per
//! argv element at exec time (`replace_env_argv`).
//!
//! Rules of systemd 252 (`config_parse_exec`, `man systemd.service`
//! "COMMAND LINES"), checked with `systemd-analyze verify`:
//!
//! * The first word, after unquoting, may start with the prefixes `-`, `@`,
//!   `:`, and one of `+`, `!`, `!!`, each at most once, in any order.
//!   A quoted prefix (`"-/bin/x"`) counts too, since prefixes are read from
//!   the unquoted word.
//! * A lone unquoted `;` word separates commands; `\;` as a whole word is a
//!   literal `;` argument. Several commands are only valid for
//!   `Type=oneshot`, and kaudit-node refuses them.
//! * `%` specifiers are expanded in every word; an unknown specifier makes
//!   the unit fail to load.

use std::fmt;

use crate::apiserver::pflag;
use crate::error::{Error, Result};

use super::quote::{SplitError, is_ws, next_word, skip_ws};

/// One word of a command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Word {
    /// Exactly as written in the unit file. For `words[0]` this includes
    /// the prefixes (`-@/usr/bin/x`).
    pub raw: String,
    /// Unquoted and unescaped; specifiers and `$` variables as written.
    /// For `words[0]` the prefixes are removed: this is the executable.
    pub value: String,
}

/// One command line: `words[0]` is the executable, the rest its arguments
/// (with the `@` prefix, `words[1]` is `argv[0]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    /// The special executable prefixes, as found (`-`, `@`, `:`, `+`, `!`, `!!`).
    pub prefixes: String,
    pub words: Vec<Word>,
}

/// An `--audit-*` flag taken out of the vendor command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedFlag {
    /// The flag name, unquoted and normalised as kube-apiserver reads it
    /// (`--audit-log-path` for `--audit_log_path`).
    pub name: String,
    /// Its value, unquoted: the part after `=`, or the next word in the
    /// two-word form; `None` for a boolean flag given alone.
    pub value: Option<String>,
    /// The removed word(s) exactly as written, joined by one space.
    pub raw: String,
    /// Index in `Command::words` of the (first) removed word.
    pub word_index: usize,
}

impl fmt::Display for RemovedFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// kube-apiserver's boolean audit flags: they never take a separate value
/// word (pflag `NoOptDefVal`), only `--flag=false`.
pub const BOOLEAN_AUDIT_FLAGS: [&str; 5] = [
    "--audit-log-compress",
    "--audit-log-truncate-enabled",
    "--audit-log-batch-throttle-enable",
    "--audit-webhook-truncate-enabled",
    "--audit-webhook-batch-throttle-enable",
];

/// kube-apiserver's audit flags that take a value
/// (`k8s.io/apiserver/pkg/server/options/audit.go`).
pub const VALUE_AUDIT_FLAGS: [&str; 27] = [
    "--audit-policy-file",
    "--audit-log-path",
    "--audit-log-maxage",
    "--audit-log-maxbackup",
    "--audit-log-maxsize",
    "--audit-log-format",
    "--audit-log-version",
    "--audit-log-mode",
    "--audit-log-batch-buffer-size",
    "--audit-log-batch-max-size",
    "--audit-log-batch-max-wait",
    "--audit-log-batch-throttle-qps",
    "--audit-log-batch-throttle-burst",
    "--audit-log-truncate-max-batch-size",
    "--audit-log-truncate-max-event-size",
    "--audit-webhook-config-file",
    "--audit-webhook-initial-backoff",
    "--audit-webhook-batch-initial-backoff",
    "--audit-webhook-version",
    "--audit-webhook-mode",
    "--audit-webhook-batch-buffer-size",
    "--audit-webhook-batch-max-size",
    "--audit-webhook-batch-max-wait",
    "--audit-webhook-batch-throttle-qps",
    "--audit-webhook-batch-throttle-burst",
    "--audit-webhook-truncate-max-batch-size",
    "--audit-webhook-truncate-max-event-size",
];

/// Whether `name` (e.g. `--audit-log-path`) is an audit flag kube-apiserver knows.
pub fn is_known_audit_flag(name: &str) -> bool {
    BOOLEAN_AUDIT_FLAGS.contains(&name) || VALUE_AUDIT_FLAGS.contains(&name)
}

/// The specifiers systemd 252 knows (`man systemd.unit`, "SPECIFIERS").
const SPECIFIERS: &str = "aAbBCdEfgGhHiIjJlLmMnNopPqsStTuUvVwWyY%";

/// Checks `%` specifiers in a word value: an unknown one is a fatal unit
/// load error in systemd ("Failed to resolve unit specifiers"). A trailing
/// lone `%` is kept by systemd as is.
pub(crate) fn check_specifiers(value: &str) -> std::result::Result<(), char> {
    let mut it = value.chars();
    while let Some(c) = it.next() {
        if c == '%'
            && let Some(s) = it.next()
            && !SPECIFIERS.contains(s)
        {
            return Err(s);
        }
    }
    Ok(())
}

/// Prefix flags of the first word, parsed as `config_parse_exec` does.
#[derive(Debug, Default, Clone, Copy)]
struct Prefixes {
    ignore_failure: bool,
    argv0: bool,
    no_env: bool,
    full_priv: bool,
    no_setuid: bool,
    ambient: bool,
}

/// Splits the first word's value into prefixes and the executable.
fn split_prefixes(v: &str) -> (Prefixes, &str, &str) {
    let mut p = Prefixes::default();
    let mut end = v.len();
    for (i, c) in v.char_indices() {
        let privileged = p.full_priv || p.no_setuid || p.ambient;
        match c {
            '-' if !p.ignore_failure => p.ignore_failure = true,
            '@' if !p.argv0 => p.argv0 = true,
            ':' if !p.no_env => p.no_env = true,
            '+' if !privileged => p.full_priv = true,
            '!' if !privileged => p.no_setuid = true,
            '!' if !(p.full_priv || p.ambient) => {
                p.no_setuid = false;
                p.ambient = true;
            }
            _ => {
                end = i;
                break;
            }
        }
    }
    (p, &v[..end], &v[end..])
}

/// A command line split into commands, with notes about it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub commands: Vec<Command>,
    /// Unknown escape sequences were kept verbatim (systemd warns).
    pub unknown_escapes: Vec<String>,
}

fn utf8(bytes: Vec<u8>, raw: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        Error::data(format!(
            "the word {raw} decodes to bytes that are not UTF-8, which kaudit-node cannot handle"
        ))
    })
}

/// Parses an `ExecStart=` value into its commands, as systemd 252 does.
pub(crate) fn parse_commands(raw: &str) -> Result<Parsed> {
    let unbalanced =
        |_: SplitError| Error::data(format!("unbalanced quoting in command line: {raw}"));
    let b = raw.as_bytes();
    let mut pos = 0;
    let mut commands = Vec::new();
    let mut unknown_escapes = Vec::new();
    // The executable. A first word that unquotes to ";" is a separator.
    while let Some(first) = next_word(raw, &mut pos).map_err(unbalanced)? {
        if first.unknown_escape {
            unknown_escapes.push(first.raw.to_string());
        }
        let first_raw = first.raw;
        let first_value = utf8(first.value, first_raw)?;
        if first_value == ";" {
            continue;
        }
        let (flags, prefixes, path) = split_prefixes(&first_value);
        validate_executable(path, first_raw)?;
        let mut words = vec![Word {
            raw: first_raw.to_string(),
            value: path.to_string(),
        }];
        let mut separated = false;
        loop {
            pos = skip_ws(b, pos);
            if pos >= b.len() {
                break;
            }
            let ends_word = |i: usize| i >= b.len() || is_ws(b[i]);
            if b[pos] == b';' && ends_word(pos + 1) {
                pos += 1;
                separated = true;
                break;
            }
            if b[pos] == b'\\' && b.get(pos + 1) == Some(&b';') && ends_word(pos + 2) {
                words.push(Word {
                    raw: "\\;".into(),
                    value: ";".into(),
                });
                pos += 2;
                continue;
            }
            let Some(w) = next_word(raw, &mut pos).map_err(unbalanced)? else {
                break;
            };
            if w.unknown_escape {
                unknown_escapes.push(w.raw.to_string());
            }
            let value = utf8(w.value, w.raw)?;
            words.push(Word {
                raw: w.raw.to_string(),
                value,
            });
        }
        if flags.argv0 && words.len() < 2 {
            return Err(Error::data(format!(
                "{first_raw}: the @ prefix needs a second word (argv[0]), and there is none"
            )));
        }
        for w in &words {
            if let Err(s) = check_specifiers(&w.value) {
                return Err(Error::data(format!(
                    "{}: unknown specifier %{s} (systemd refuses to load the unit)",
                    w.raw
                )));
            }
        }
        commands.push(Command {
            prefixes: prefixes.to_string(),
            words,
        });
        if !separated {
            break;
        }
    }
    Ok(Parsed {
        commands,
        unknown_escapes,
    })
}

/// The executable checks of `config_parse_exec`.
fn validate_executable(path: &str, raw: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::data(format!(
            "{raw}: empty executable path in command line"
        )));
    }
    if path
        .chars()
        .any(|c| c.is_ascii_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(Error::data(format!(
            "{raw}: executable path contains quotes, backslashes or control characters"
        )));
    }
    if path.ends_with('/')
        || path.ends_with("/.")
        || path.ends_with("/..")
        || path == "."
        || path == ".."
    {
        return Err(Error::data(format!(
            "{raw}: executable path refers to a directory"
        )));
    }
    // Specifiers may expand to an absolute path; systemd checks after expansion.
    if !path.starts_with('/') && path.contains('/') && !path.contains('%') {
        return Err(Error::data(format!(
            "{raw}: neither a valid executable name nor an absolute path"
        )));
    }
    Ok(())
}

/// The raw text of a word as it can be re-emitted at the end of a line.
/// Only the last word of a command can end in a lone backslash (systemd
/// keeps it as a literal `\`); written at the end of a line it would become
/// a continuation, so it is doubled (`\\` unescapes to the same `\`).
/// A word ending in a backslash and a blank (`a\ `, which systemd's relaxed
/// unescaping keeps as both characters) would lose the blank at the end of
/// a line, where the unit parser strips it: `\\` and a hex escape
/// (`a\\\x20`) give the same two characters (found by fuzzing; checked
/// against systemd in tests/unit_reader.rs).
fn emit_raw(w: &Word) -> String {
    let raw = &w.raw;
    if super::parse::ends_escaped(raw) {
        return format!("{raw}\\");
    }
    if let Some(blank) = raw
        .chars()
        .last()
        .filter(|c| matches!(c, ' ' | '\t' | '\r'))
        && super::parse::ends_escaped(&raw[..raw.len() - 1])
    {
        return format!("{}\\\\\\x{:02x}", &raw[..raw.len() - 2], blank as u32);
    }
    raw.clone()
}

impl Command {
    /// Parses one command line (an `ExecStart=` value). Refuses several
    /// commands separated by `;` and anything systemd would refuse.
    pub fn parse(raw: &str) -> Result<Command> {
        let parsed = parse_commands(raw)?;
        let n = parsed.commands.len();
        let mut it = parsed.commands.into_iter();
        match (it.next(), n) {
            (Some(c), 1) => Ok(c),
            (None, _) => Err(Error::data(format!("empty command line: {raw:?}"))),
            _ => Err(Error::data(format!(
                "{n} commands separated by ';' in one command line (only Type=oneshot allows that, and kaudit-node does not support it): {raw}"
            ))),
        }
    }

    fn flags(&self) -> Prefixes {
        split_prefixes(&self.prefixes).0
    }

    /// The executable (prefixes removed, specifiers as written).
    pub fn executable(&self) -> &str {
        &self.words[0].value
    }

    /// The file name of the executable.
    pub fn executable_name(&self) -> &str {
        self.executable().rsplit('/').next().unwrap_or_default()
    }

    /// With the `@` prefix, `words[1]` is `argv[0]` instead of the executable.
    pub fn separate_argv0(&self) -> bool {
        self.flags().argv0
    }

    /// Whether `$VAR`, `${VAR}` and `$$` are expanded at exec time (not with
    /// the `:` prefix).
    pub fn expands_env(&self) -> bool {
        !self.flags().no_env
    }

    /// Index of the first argument after `argv[0]`.
    pub fn first_arg_index(&self) -> usize {
        if self.separate_argv0() { 2 } else { 1 }
    }

    /// The argv systemd passes (before specifier and variable expansion):
    /// the executable then the arguments, or with `@` the words after the
    /// executable.
    pub fn argv_values(&self) -> Vec<String> {
        let skip = usize::from(self.separate_argv0());
        self.words
            .iter()
            .skip(skip)
            .map(|w| w.value.clone())
            .collect()
    }

    /// The command re-emitted on one line: the raw words joined by spaces.
    pub fn raw_text(&self) -> String {
        self.words
            .iter()
            .map(emit_raw)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Variables the command expands at exec time, in order of appearance,
    /// each once: `$VAR` as a whole word (split at whitespace) and `${VAR}`
    /// inside a word (inserted as is). Empty with the `:` prefix.
    pub fn env_references(&self) -> Vec<EnvRef> {
        let mut out: Vec<EnvRef> = Vec::new();
        if !self.expands_env() {
            return out;
        }
        for (i, w) in self.words.iter().enumerate().skip(1) {
            for r in env_refs_in(&w.value, i) {
                let seen = out.iter().any(|o| {
                    o.name == r.name
                        && o.whole_word == r.whole_word
                        && (r.whole_word || o.word_index == r.word_index)
                });
                if !seen {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Removes kube-apiserver's `--audit-*` flags: every argument whose
    /// flag name, normalised as kube-apiserver does (`_` read as `-`,
    /// [`pflag`]), starts with `--audit-`, plus the value word of the two-word
    /// form (`--audit-log-path /x`) for flags that take a value. Boolean
    /// flags never take a separate word. An unknown `--audit-*` flag without
    /// `=` takes the next word only if that does not start with `-`.
    /// Stripping stops at a `--` word (pflag treats what follows as
    /// positional arguments). `-audit-…` is not a pflag long flag (it would
    /// be a cluster of shorthands, which kube-apiserver rejects), so it is
    /// left alone.
    pub fn strip_audit_flags(&self) -> (Command, Vec<RemovedFlag>) {
        let mut keep = Vec::with_capacity(self.words.len());
        let mut removed = Vec::new();
        let start = self.first_arg_index().min(self.words.len());
        keep.extend(self.words[..start].iter().cloned());
        let mut i = start;
        let mut positional = false;
        while i < self.words.len() {
            let w = &self.words[i];
            let flag = pflag::long_flag(&w.value).filter(|f| f.name.starts_with("--audit-"));
            let Some(flag) = flag.filter(|_| !positional) else {
                positional |= w.value == "--";
                keep.push(w.clone());
                i += 1;
                continue;
            };
            if let Some(value) = flag.inline {
                removed.push(RemovedFlag {
                    name: flag.name,
                    value: Some(value.into()),
                    raw: w.raw.clone(),
                    word_index: i,
                });
                i += 1;
                continue;
            }
            let name = flag.name.as_str();
            let next = self.words.get(i + 1);
            let takes_next = match next {
                None => false,
                Some(_) if BOOLEAN_AUDIT_FLAGS.contains(&name) => false,
                Some(_) if VALUE_AUDIT_FLAGS.contains(&name) => true,
                Some(n) => !n.value.starts_with('-'),
            };
            match next {
                Some(n) if takes_next => {
                    removed.push(RemovedFlag {
                        name: name.into(),
                        value: Some(n.value.clone()),
                        raw: format!("{} {}", w.raw, n.raw),
                        word_index: i,
                    });
                    i += 2;
                }
                _ => {
                    removed.push(RemovedFlag {
                        name: name.into(),
                        value: None,
                        raw: w.raw.clone(),
                        word_index: i,
                    });
                    i += 1;
                }
            }
        }
        (
            Command {
                prefixes: self.prefixes.clone(),
                words: keep,
            },
            removed,
        )
    }
}

/// A variable reference in a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub name: String,
    /// `$VAR` as a whole word: the value is split into several arguments.
    /// Otherwise `${VAR}` inside a word: the value is inserted as is.
    pub whole_word: bool,
    /// Index in `Command::words`.
    pub word_index: usize,
}

/// Variable references in one argv element, per systemd 252's
/// `replace_env_argv`: a word `$NAME` (not `${` or `$$`) is a whole-word
/// reference (the whole rest of the word is the name); otherwise `${NAME}`
/// anywhere (not `${NAME:…}`, which systemd leaves alone), with `$$` a
/// literal `$`; a `$` before anything else is literal.
pub(crate) fn env_refs_in(v: &str, word_index: usize) -> Vec<EnvRef> {
    let b = v.as_bytes();
    if b.first() == Some(&b'$') && !matches!(b.get(1), Some(b'{') | Some(b'$')) {
        return vec![EnvRef {
            name: v[1..].to_string(),
            whole_word: true,
            word_index,
        }];
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let rest = &v[i + 2..];
                match rest.find(['}', ':']) {
                    Some(j) if rest.as_bytes()[j] == b'}' => {
                        out.push(EnvRef {
                            name: rest[..j].to_string(),
                            whole_word: false,
                            word_index,
                        });
                        i += 2 + j + 1;
                    }
                    _ => i += 2,
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The `ExecStart=` value of kaudit-node's drop-in: the vendor words
/// verbatim, then `appended` (words already quoted with
/// [`super::quote_word`]), one word per line joined by ` \` + newline + four
/// spaces. A word starting with `#` or `;` stays on the previous line: at
/// the start of a continuation line systemd would take it for a comment.
/// With the vendor's `:` prefix (no variable expansion), the `$$` that
/// `quote_word` emits would stay doubled, so appended words get `$$` → `$`.
pub fn render_exec_start(vendor: &Command, appended: &[String]) -> String {
    let no_env = !vendor.expands_env();
    let words = vendor
        .words
        .iter()
        .map(emit_raw)
        .chain(appended.iter().map(|w| {
            debug_assert!(
                !w.is_empty() && w != ";",
                "appended words must come from quote_word: {w:?}"
            );
            if no_env {
                w.replace("$$", "$")
            } else {
                w.clone()
            }
        }));
    let mut out = String::new();
    for (i, w) in words.enumerate() {
        if i > 0 {
            out.push_str(if w.starts_with(['#', ';']) {
                " "
            } else {
                " \\\n    "
            });
        }
        out.push_str(&w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::quote::quote_word;

    fn cmd(s: &str) -> Command {
        Command::parse(s).unwrap()
    }

    fn vals(c: &Command) -> Vec<&str> {
        c.words.iter().map(|w| w.value.as_str()).collect()
    }

    fn raws(c: &Command) -> Vec<&str> {
        c.words.iter().map(|w| w.raw.as_str()).collect()
    }

    #[test]
    fn words_keep_raw_and_value() {
        let c = cmd(r#"/usr/bin/kube-apiserver --a="b c" '--d=e' %i %% $$ ${VAR} $VAR \x41"#);
        assert_eq!(c.prefixes, "");
        assert_eq!(
            raws(&c),
            [
                "/usr/bin/kube-apiserver",
                r#"--a="b c""#,
                "'--d=e'",
                "%i",
                "%%",
                "$$",
                "${VAR}",
                "$VAR",
                r"\x41"
            ]
        );
        assert_eq!(
            vals(&c),
            [
                "/usr/bin/kube-apiserver",
                "--a=b c",
                "--d=e",
                "%i",
                "%%",
                "$$",
                "${VAR}",
                "$VAR",
                "A"
            ]
        );
        assert_eq!(c.executable(), "/usr/bin/kube-apiserver");
        assert_eq!(c.executable_name(), "kube-apiserver");
        assert_eq!(
            c.raw_text(),
            r#"/usr/bin/kube-apiserver --a="b c" '--d=e' %i %% $$ ${VAR} $VAR \x41"#
        );
    }

    #[test]
    fn prefixes() {
        for (s, p, exe) in [
            ("-/bin/x", "-", "/bin/x"),
            ("@/bin/x y", "@", "/bin/x"),
            ("-@:+/bin/x y", "-@:+", "/bin/x"),
            ("!!/bin/x", "!!", "/bin/x"),
            ("!-/bin/x", "!-", "/bin/x"),
            ("\"-/bin/x\"", "-", "/bin/x"),
            ("x", "", "x"),
        ] {
            let c = cmd(s);
            assert_eq!((c.prefixes.as_str(), c.executable()), (p, exe), "{s}");
            assert_eq!(c.words[0].raw, s.split(' ').next().unwrap());
        }
        // A repeated prefix is part of the path, which is then invalid.
        assert!(Command::parse("--/bin/x").is_err());
        assert!(Command::parse("+!/bin/x").is_err());
        assert!(Command::parse("!!!/bin/x").is_err());
    }

    #[test]
    fn argv0_prefix() {
        let c = cmd("-@/usr/bin/hyperkube kube-apiserver --v=2");
        assert!(c.separate_argv0());
        assert_eq!(c.argv_values(), ["kube-apiserver", "--v=2"]);
        assert_eq!(c.first_arg_index(), 2);
        assert!(Command::parse("@/bin/x").is_err());
        let c = cmd("/bin/x a");
        assert_eq!(c.argv_values(), ["/bin/x", "a"]);
    }

    #[test]
    fn executable_checks() {
        for bad in [
            "-",
            "@",
            "bin/x",
            "/usr/bin/",
            "\"/bin/a\\\"b\"",
            "/bin/\\x01",
        ] {
            assert!(Command::parse(bad).is_err(), "{bad}");
        }
        cmd("kube-apiserver");
        cmd("/bin/x\\x20y");
        cmd("%h/bin/x");
    }

    #[test]
    fn semicolons() {
        // Verified with systemd-analyze: `\;` is a literal ";" argument, a
        // quoted ";" too, ";x" is a word, a lone ";" separates commands.
        let c = cmd(r#"/bin/x \; ";" ';' ;x x;"#);
        assert_eq!(vals(&c), ["/bin/x", ";", ";", ";", ";x", "x;"]);
        assert_eq!(c.raw_text(), r#"/bin/x \; ";" ';' ;x x;"#);
        // A trailing separator alone adds no command.
        assert_eq!(vals(&cmd("/bin/x a ;")), ["/bin/x", "a"]);
        let e = Command::parse("/bin/x a ; /bin/y b").unwrap_err();
        assert!(e.message.contains("2 commands"), "{}", e.message);
        let p = parse_commands("/bin/x a ; /bin/y b ; ; /bin/z").unwrap();
        assert_eq!(p.commands.len(), 3);
        // A first word that unquotes to ";" is a separator too.
        assert_eq!(parse_commands("\";\" /bin/x").unwrap().commands.len(), 1);
        // `\;` glued to more text is an unknown escape, kept verbatim.
        let p = parse_commands(r"/bin/x c\;").unwrap();
        assert_eq!(vals(&p.commands[0]), ["/bin/x", "c\\;"]);
        assert_eq!(p.unknown_escapes, ["c\\;"]);
    }

    #[test]
    fn empty_and_unbalanced() {
        assert!(Command::parse("").is_err());
        assert!(Command::parse("  ").is_err());
        assert!(Command::parse(";").is_err());
        let e = Command::parse("/bin/x \"a").unwrap_err();
        assert!(e.message.contains("unbalanced quoting"), "{}", e.message);
    }

    #[test]
    fn specifiers_are_checked() {
        cmd("/bin/x %n %N %i %I %% 100% %H %y %Y");
        let e = Command::parse("/bin/x %z").unwrap_err();
        assert!(e.message.contains("unknown specifier %z"), "{}", e.message);
        // An escaped percent is still a specifier after unquoting.
        assert!(Command::parse(r"/bin/x \x25z").is_err());
    }

    #[test]
    fn non_utf8_words_are_refused() {
        assert!(Command::parse(r"/bin/x \xff").is_err());
    }

    #[test]
    fn env_references() {
        let c = cmd("/bin/x $A ${B} --c=${C}x $$D ${E:-x} $F-g pre$H ${A} $A");
        let refs = c.env_references();
        let r: Vec<(&str, bool)> = refs
            .iter()
            .map(|r| (r.name.as_str(), r.whole_word))
            .collect();
        assert_eq!(
            r,
            [
                ("A", true),
                ("B", false),
                ("C", false),
                ("F-g", true),
                ("A", false)
            ]
        );
        assert!(cmd(":/bin/x $A").env_references().is_empty());
    }

    #[test]
    fn strip_equals_and_two_word_forms() {
        let c = cmd(
            "/bin/kube-apiserver --a=1 --audit-log-maxage=30 --audit-log-path /var/log/x \"--audit-policy-file\" '/p y' \
             --audit-log-compress --b --audit-webhook-truncate-enabled=false --audit-log-batch-throttle-enable --c",
        );
        let (s, r) = c.strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/kube-apiserver", "--a=1", "--b", "--c"]);
        let got: Vec<(&str, Option<&str>, &str, usize)> = r
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.value.as_deref(),
                    f.raw.as_str(),
                    f.word_index,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("--audit-log-maxage", Some("30"), "--audit-log-maxage=30", 2),
                (
                    "--audit-log-path",
                    Some("/var/log/x"),
                    "--audit-log-path /var/log/x",
                    3
                ),
                (
                    "--audit-policy-file",
                    Some("/p y"),
                    "\"--audit-policy-file\" '/p y'",
                    5
                ),
                ("--audit-log-compress", None, "--audit-log-compress", 7),
                (
                    "--audit-webhook-truncate-enabled",
                    Some("false"),
                    "--audit-webhook-truncate-enabled=false",
                    9
                ),
                (
                    "--audit-log-batch-throttle-enable",
                    None,
                    "--audit-log-batch-throttle-enable",
                    10
                ),
            ]
        );
    }

    #[test]
    fn strip_value_flag_takes_the_next_word_whatever_it_is() {
        // pflag: a flag that needs a value takes the next argument.
        let (s, r) = cmd("/bin/k --audit-log-path --v=2 --x").strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/k", "--x"]);
        assert_eq!(r[0].value.as_deref(), Some("--v=2"));
        // At the end of the line there is no value word.
        let (s, r) = cmd("/bin/k --x --audit-log-path").strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/k", "--x"]);
        assert_eq!(r[0].value, None);
    }

    #[test]
    fn strip_pflag_spellings() {
        // kube-apiserver reads `_` as `-` in flag names: these are audit flags.
        let (s, r) = cmd(
            "/bin/k --etcd_servers=x --audit_log_path=/var/log/old.log --audit_log_maxbackup 1 --audit-log_format json --audit_log_compress --y",
        )
        .strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/k", "--etcd_servers=x", "--y"]);
        let got: Vec<_> = r
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_deref(), f.raw.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "--audit-log-path",
                    Some("/var/log/old.log"),
                    "--audit_log_path=/var/log/old.log"
                ),
                (
                    "--audit-log-maxbackup",
                    Some("1"),
                    "--audit_log_maxbackup 1"
                ),
                (
                    "--audit-log-format",
                    Some("json"),
                    "--audit-log_format json"
                ),
                ("--audit-log-compress", None, "--audit_log_compress"),
            ]
        );
    }

    #[test]
    fn strip_unknown_audit_flag() {
        let (s, r) = cmd("/bin/k --audit-future v --audit-other --x").strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/k", "--x"]);
        assert_eq!(r[0].raw, "--audit-future v");
        assert_eq!(r[1].raw, "--audit-other");
    }

    #[test]
    fn strip_leaves_single_dash_argv0_and_positional() {
        let (s, r) = cmd("@/bin/k --audit-log-path=/x -audit-log-path=/y -- --audit-log-path=/z")
            .strip_audit_flags();
        assert_eq!(
            vals(&s),
            [
                "/bin/k",
                "--audit-log-path=/x",
                "-audit-log-path=/y",
                "--",
                "--audit-log-path=/z"
            ]
        );
        assert!(r.is_empty());
        let (s, r) = cmd("@/bin/k argv0 --audit-log-path=/x").strip_audit_flags();
        assert_eq!(vals(&s), ["/bin/k", "argv0"]);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn strip_keeps_raw_text_of_the_rest() {
        let c = cmd(r#"-/bin/k "--a=x y" %i --audit-log-path=/x $$ ${V}"#);
        let (s, _) = c.strip_audit_flags();
        assert_eq!(s.raw_text(), r#"-/bin/k "--a=x y" %i $$ ${V}"#);
        assert_eq!(s.prefixes, "-");
    }

    #[test]
    fn render_one_word_per_line() {
        let c = cmd("/usr/bin/kube-apiserver --a=1 \"--b=x y\"");
        let appended = [
            quote_word("--audit-policy-file=/etc/p.yaml").unwrap(),
            quote_word("--x=50%").unwrap(),
        ];
        assert_eq!(
            render_exec_start(&c, &appended),
            "/usr/bin/kube-apiserver \\\n    --a=1 \\\n    \"--b=x y\" \\\n    --audit-policy-file=/etc/p.yaml \\\n    --x=50%%"
        );
        assert_eq!(render_exec_start(&cmd("/bin/x"), &[]), "/bin/x");
    }

    #[test]
    fn render_keeps_comment_like_words_off_line_starts() {
        let c = cmd("/bin/x #a ;b c \\; d");
        let r = render_exec_start(&c, &["#q".into()]);
        assert_eq!(r, "/bin/x #a ;b \\\n    c \\\n    \\; \\\n    d #q");
        for line in r.lines().skip(1) {
            assert!(!line.trim_start().starts_with(['#', ';']), "{line}");
        }
    }

    #[test]
    fn render_trailing_lone_backslash_is_doubled() {
        // systemd keeps a trailing lone backslash as a literal "\"; written at
        // the end of a line it would continue the line, so it is doubled.
        let c = cmd("/bin/x a \\");
        assert_eq!(vals(&c), ["/bin/x", "a", "\\"]);
        assert_eq!(c.raw_text(), "/bin/x a \\\\");
        assert_eq!(render_exec_start(&c, &[]), "/bin/x \\\n    a \\\n    \\\\");
        assert_eq!(vals(&cmd(&c.raw_text())), ["/bin/x", "a", "\\"]);
    }

    #[test]
    fn render_without_env_expansion_undoubles_dollars() {
        let c = cmd(":/bin/x");
        assert_eq!(
            render_exec_start(&c, &[quote_word("--a=$x").unwrap()]),
            ":/bin/x \\\n    --a=$x"
        );
    }

    #[test]
    fn rendered_text_parses_back_to_the_same_words() {
        for s in [
            r#"/usr/bin/kube-apiserver --a="b c" '--d=e' %i %% $$ ${VAR} $VAR \x41 "" '' a"b c"d \; #x ;y"#,
            "-@/bin/x argv0 \\q \"\\\\\" z",
        ] {
            let c = cmd(s);
            let rendered = render_exec_start(&c, &[]);
            let f = crate::unit::parse::parse_unit_file(
                std::path::Path::new("/x.conf"),
                &format!("[Service]\nExecStart={rendered}\n"),
            )
            .unwrap();
            assert_eq!(f.entries.len(), 1);
            let back = cmd(&f.entries[0].value);
            assert_eq!(back.argv_values(), c.argv_values(), "{rendered}");
            assert_eq!(back.prefixes, c.prefixes);
            assert_eq!(raws(&back), raws(&c));
        }
    }
}
