//! `kaudit-node events`: answers an audit log's questions on the node.
//!
//! ```text
//! config | drop-in ──► log path ──► source::discover ──► live + backups
//!                                                          │
//!   --count, --by: pieces of every file, in parallel ──► tally ─┐
//!   lines:         one stream a file, merged by stageTimestamp ─┼─► render ──► stdout
//!   --follow:      the live file, across renames and truncates ─┘
//! ```
//!
//! Every line goes through [`filter::Filter::may_match`], a memchr screen
//! for the values asked about, and only the lines that pass are decoded
//! (serde_json, borrowed, skipping the request and response bodies) and
//! checked exactly. Memory is a block a stream, whatever the log's size.

pub mod event;
pub mod filter;
pub mod render;
pub mod source;

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::cli::{ByField, EventsArgs, OutputFormat};
use crate::config::{Format, Settings};
use crate::error::{Error, ExitCode, Result};
use crate::root::Root;
use event::Event;
use filter::Filter;
use render::{Summary, Unreadable};
use source::{Line, Skipped};

/// Events held back to put a file's slightly out-of-order lines in time
/// order: an event is printed once this many later ones have been read.
const REORDER_WINDOW: usize = 4096;

/// What to do when a log cannot be read for its permissions.
const PERMISSION_HINT: &str = "; audit logs are readable by root and, when log.group is set, by that group: \
     run kaudit-node events as root or as a member of it";

/// How often `--follow` looks for new lines and rotations when idle.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The selection of a command line, checked before any file is opened:
/// a bad filter is a usage error.
pub fn selection(a: &EventsArgs) -> Result<Filter> {
    Filter::from_args(a, jiff::Timestamp::now()).map_err(|e| Error::new(ExitCode::Usage, e))
}

/// What a run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Lines(OutputFormat),
    Count(OutputFormat),
    By(ByField, OutputFormat),
}

impl Output {
    pub fn from_args(a: &EventsArgs) -> Output {
        match (a.count, a.by) {
            (true, _) => Output::Count(a.format),
            (_, Some(f)) => Output::By(f, a.format),
            _ => Output::Lines(a.format),
        }
    }
}

/// The live log the node writes: the path in kaudit-node's drop-in when it
/// is installed (what runs), else the configuration's. Refused for the
/// legacy format and for standard output.
pub fn live_log(root: &Root, s: &Settings) -> Result<PathBuf> {
    let dropin = crate::dropin::path(&s.unit);
    let argv = root
        .read_optional(&dropin)?
        .filter(|t| crate::dropin::is_ours(t))
        .and_then(|t| crate::dropin::argv(&dropin, &String::from_utf8_lossy(&t)));
    let flag = |name: &str| {
        argv.as_ref().and_then(|a| {
            a.iter()
                .rev()
                .find_map(|w| w.strip_prefix(name).map(str::to_string))
        })
    };
    let path = flag("--audit-log-path=").map_or_else(|| s.log.path.clone(), PathBuf::from);
    let legacy = match flag("--audit-log-format=") {
        Some(f) => f == "legacy",
        None => s.log.format == Format::Legacy,
    };
    if legacy {
        return Err(Error::config(
            "the audit log is in the legacy format (log.format = \"legacy\"); \
             kaudit-node events reads the json format",
        ));
    }
    if path == Path::new("-") {
        return Err(Error::config(
            "the audit log goes to standard output (log.path = \"-\"): read it from the journal",
        ));
    }
    Ok(root.host_path(&path))
}

/// The files a run reads: `--file`s, or the live log and its backups.
pub fn sources(a: &EventsArgs, live: Option<&Path>) -> Result<Vec<PathBuf>> {
    if !a.file.is_empty() {
        return Ok(a.file.clone());
    }
    let live = live.expect("a live log without --file");
    let found = source::discover(live).map_err(|e| {
        let mut err = Error::read(&live.parent().unwrap_or(live).display().to_string(), &e);
        if e.kind() == io::ErrorKind::PermissionDenied {
            err.message.push_str(PERMISSION_HINT);
        }
        err
    })?;
    if found.len() == 1 && !found[0].exists() {
        return Err(Error::no_input(format!(
            "{}: no audit log and no backups of it (has kaudit-node apply run?)",
            live.display()
        )));
    }
    Ok(found)
}

/// Runs one `events` query over `paths` (the last one the live log, for
/// `--follow`), printing to `out` and notes to `err`.
pub fn run(
    a: &EventsArgs,
    filter: &Filter,
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode> {
    let output = Output::from_args(a);
    let mut summary = Summary {
        kind: render::SUMMARY_KIND,
        files: paths.to_vec(),
        ..Summary::default()
    };
    let written = match output {
        Output::Count(_) | Output::By(..) => tally(paths, filter, output, &mut summary, out),
        Output::Lines(format) if a.follow => {
            let (live, backups) = paths.split_last().expect("a live log");
            let history = a.since.is_some();
            if history && let Err(e) = emit(backups, filter, format, &mut summary, out) {
                return broken_pipe_or(e);
            }
            return follow(live, filter, format, history, out);
        }
        Output::Lines(format) => emit(paths, filter, format, &mut summary, out),
    };
    if let Err(e) = written {
        return broken_pipe_or(e);
    }
    let json = matches!(
        output,
        Output::Lines(OutputFormat::Json)
            | Output::Count(OutputFormat::Json)
            | Output::By(_, OutputFormat::Json)
    );
    let mut notes = String::new();
    if json {
        let trailer = serde_json::to_string(&summary).expect("a summary serializes");
        let _ = writeln!(out, "{trailer}");
    } else if let Some(n) = render::skipped_note(&summary.skipped) {
        notes.push_str(&format!("kaudit-node: {n}\n"));
    }
    for u in &summary.unreadable {
        notes.push_str(&format!(
            "kaudit-node: error: {}: cannot read: {}\n",
            u.path.display(),
            u.error
        ));
    }
    if summary.unreadable.iter().any(|u| u.denied) {
        notes.push_str(&format!(
            "kaudit-node: {}\n",
            PERMISSION_HINT.trim_start_matches("; ")
        ));
    }
    let _ = out.flush();
    let _ = err.write_all(notes.as_bytes());
    Ok(if summary.unreadable.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::IoErr
    })
}

/// A closed pipe (`| head`) ends a run quietly; any other write error is
/// an error.
fn broken_pipe_or(e: io::Error) -> Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(ExitCode::Ok)
    } else {
        Err(Error::io(format!("stdout: {e}")))
    }
}

/// What one line holds for a query: the event bytes and the decoded event
/// when it is selected. Counts in `skipped` what is not an event.
fn examine<'a>(
    line: Line<'a>,
    filter: &Filter,
    skipped: &mut Skipped,
) -> Option<(&'a [u8], Event<'a>)> {
    let bytes = source::trim(line.bytes, skipped)?;
    if line.terminated && !filter.may_match(bytes) {
        // Screened out without decoding: only its shape is checked.
        if !(bytes.starts_with(b"{") && bytes.ends_with(b"}")) {
            skipped.invalid += 1;
        }
        return None;
    }
    match Event::parse(bytes) {
        None if line.terminated => {
            skipped.invalid += 1;
            None
        }
        None => {
            skipped.torn += 1;
            None
        }
        Some(e) => filter.matches(&e).then_some((bytes, e)),
    }
}

/// A worker's share of `--count` or `--by`.
#[derive(Default)]
struct Tally {
    matched: u64,
    by: HashMap<String, u64>,
    skipped: Skipped,
    unreadable: Vec<Unreadable>,
}

/// `--count` and `--by`: every piece of every file, by as many workers as
/// there are CPUs; counts need no order.
fn tally(
    paths: &[PathBuf],
    filter: &Filter,
    output: Output,
    summary: &mut Summary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut pieces = Vec::new();
    let mut total = Tally::default();
    for (p, piece) in paths.iter().zip_pieces() {
        match piece {
            Ok(piece) => pieces.push(piece),
            Err(e) => total.unreadable.push(Unreadable::new(p, &e)),
        }
    }
    let by = match output {
        Output::By(f, _) => Some(f),
        _ => None,
    };
    let next = AtomicUsize::new(0);
    let shared = Mutex::new(total);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pieces.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut mine = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(piece) = pieces.get(i) else { break };
                    if let Err(e) = tally_piece(piece, filter, by, &mut mine) {
                        mine.unreadable.push(Unreadable::new(&piece.path, &e));
                    }
                }
                let mut t = shared.lock().expect("no worker panics holding it");
                t.matched += mine.matched;
                t.skipped.add(mine.skipped);
                t.unreadable.append(&mut mine.unreadable);
                for (k, v) in mine.by {
                    *t.by.entry(k).or_default() += v;
                }
            });
        }
    });
    let t = shared.into_inner().expect("the workers are done");
    summary.matched = t.matched;
    summary.skipped = t.skipped;
    summary.unreadable = t.unreadable;
    summary.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    summary.unreadable.dedup_by(|a, b| a.path == b.path);
    match output {
        Output::Count(OutputFormat::Text) => writeln!(out, "{}", t.matched),
        Output::By(f, OutputFormat::Text) => out.write_all(render::by_table(f, &t.by).as_bytes()),
        Output::By(f, OutputFormat::Json) => {
            summary.by = Some(render::by_name(f));
            summary.rows = Some(
                render::sorted(&t.by)
                    .into_iter()
                    .map(|(v, n)| render::Row {
                        value: v.to_string(),
                        count: n,
                    })
                    .collect(),
            );
            Ok(())
        }
        // JSON counts are the trailer's `matched`.
        _ => Ok(()),
    }
}

fn tally_piece(
    piece: &source::Piece,
    filter: &Filter,
    by: Option<ByField>,
    t: &mut Tally,
) -> io::Result<()> {
    let mut lines = source::lines(piece)?;
    while let Some(line) = lines.next_line()? {
        if let Some((_, e)) = examine(line, filter, &mut t.skipped) {
            t.matched += 1;
            if let Some(f) = by {
                *t.by.entry(render::by_value(f, &e)).or_default() += 1;
            }
        }
    }
    Ok(())
}

/// Each path with the pieces it is cut into, errors included.
trait ZipPieces<'a> {
    fn zip_pieces(self) -> Vec<(&'a PathBuf, io::Result<source::Piece>)>;
}

impl<'a, I: Iterator<Item = &'a PathBuf>> ZipPieces<'a> for I {
    fn zip_pieces(self) -> Vec<(&'a PathBuf, io::Result<source::Piece>)> {
        self.flat_map(|p| {
            source::pieces(std::slice::from_ref(p))
                .into_iter()
                .map(move |piece| (p, piece))
        })
        .collect()
    }
}

/// One file's selected events, one at a time, rendered.
struct Stream {
    path: PathBuf,
    lines: source::Lines<Box<dyn Read + Send>>,
    /// The next selected event: its stageTimestamp and what it prints.
    head: Option<(String, Vec<u8>)>,
}

impl Stream {
    fn advance(
        &mut self,
        filter: &Filter,
        format: OutputFormat,
        skipped: &mut Skipped,
    ) -> io::Result<()> {
        self.head = None;
        while let Some(line) = self.lines.next_line()? {
            if let Some((bytes, e)) = examine(line, filter, skipped) {
                self.head = Some((
                    e.stage_timestamp.to_string(),
                    render_event(bytes, &e, format),
                ));
                break;
            }
        }
        Ok(())
    }
}

fn render_event(bytes: &[u8], e: &Event, format: OutputFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    match format {
        OutputFormat::Json => {
            out.extend_from_slice(bytes);
            out.push(b'\n');
        }
        OutputFormat::Text => render::text_line(e, &mut out),
    }
    out
}

/// The selected events of every file, merged by stageTimestamp (files
/// that overlap in time interleave; a tie keeps the order read), through
/// a [`REORDER_WINDOW`].
fn emit(
    paths: &[PathBuf],
    filter: &Filter,
    format: OutputFormat,
    summary: &mut Summary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut streams = Vec::new();
    for p in paths {
        let opened = source::lines(&source::Piece {
            path: p.clone(),
            start: 0,
            end: None,
        })
        .and_then(|lines| {
            let mut s = Stream {
                path: p.clone(),
                lines,
                head: None,
            };
            s.advance(filter, format, &mut summary.skipped)?;
            Ok(s)
        });
        match opened {
            Ok(s) => streams.push(s),
            Err(e) => summary.unreadable.push(Unreadable::new(p, &e)),
        }
    }
    // A file's lines are in write order, which is not quite time order
    // (a request that began earlier can finish a little later): a window
    // of the latest events puts them in order before they are printed.
    let mut window = std::collections::BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let next = streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.as_ref().map(|(ts, _)| (ts, i)))
            .min()
            .map(|(_, i)| i);
        let Some(i) = next else { break };
        let s = &mut streams[i];
        let (ts, bytes) = s.head.take().expect("the chosen stream has a head");
        window.push(std::cmp::Reverse((ts, seq, bytes)));
        seq += 1;
        if window.len() > REORDER_WINDOW
            && let Some(std::cmp::Reverse((_, _, bytes))) = window.pop()
        {
            out.write_all(&bytes)?;
        }
        summary.matched += 1;
        if let Err(e) = s.advance(filter, format, &mut summary.skipped) {
            summary.unreadable.push(Unreadable::new(&s.path, &e));
            s.head = None;
        }
    }
    while let Some(std::cmp::Reverse((_, _, bytes))) = window.pop() {
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// `--follow`: the live log, like `tail -F`: from its start (`history`)
/// or its end, then what is appended, reopened when the apiserver renames
/// it to a backup (after draining the old file) and read again from the
/// start when logrotate's copytruncate empties it. Runs until killed, or
/// until standard output closes.
fn follow(
    live: &Path,
    filter: &Filter,
    format: OutputFormat,
    history: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let mut skipped = Skipped::default();
    let mut opened = open_live(live, !history)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut block = vec![0u8; 1 << 20];
    // Set when the path was seen to be a new file: the old one is read
    // once more to its end (the writer wrote its last line before the
    // rename), then the new one is opened.
    let mut draining = false;
    // The first bytes of the file as last seen: a copytruncate that the
    // file outgrew again between two looks changes them.
    let mut head: Vec<u8> = Vec::new();
    loop {
        let (file, pos, ino) = &mut opened;
        let n = match file.read(&mut block) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::read(&live.display().to_string(), &e)),
        };
        if n > 0 {
            *pos += n as u64;
            pending.extend_from_slice(&block[..n]);
            let Some(i) = memchr::memrchr(b'\n', &pending) else {
                continue;
            };
            let text = render_lines(&pending[..i], filter, format, &mut skipped);
            pending.drain(..=i);
            if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
                return broken_pipe_or(e);
            }
            continue;
        }
        if draining {
            draining = false;
            pending.clear();
            head.clear();
            opened = open_live(live, false)?;
            continue;
        }
        // Idle: wait, then look for a rotation right before reading again.
        std::thread::sleep(FOLLOW_POLL);
        let rewritten = !same_head(file, &mut head);
        match std::fs::metadata(live) {
            Ok(m) if m.ino() != *ino => draining = true,
            // Emptied in place (copytruncate). What was written after our
            // last read and before the copy is in logrotate's copy: read
            // it from there first.
            Ok(m) if m.len() < *pos || rewritten => {
                if let Some(rest) = copy_tail(live, *pos, &pending) {
                    let end = memchr::memrchr(b'\n', &rest).map_or(0, |i| i + 1);
                    let text =
                        render_lines(&rest[..end.saturating_sub(1)], filter, format, &mut skipped);
                    if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
                        return broken_pipe_or(e);
                    }
                }
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| Error::read(&live.display().to_string(), &e))?;
                *pos = 0;
                pending.clear();
                head.clear();
            }
            _ => {}
        }
    }
}

/// Whether the file still starts with `head` (then `head` grows to up to
/// 256 bytes of it).
fn same_head(file: &std::fs::File, head: &mut Vec<u8>) -> bool {
    use std::os::unix::fs::FileExt;
    let mut now = [0u8; 256];
    let Ok(n) = file.read_at(&mut now, 0) else {
        return true;
    };
    let k = n.min(head.len());
    if now[..k] != head[..k] {
        return false;
    }
    if n > head.len() {
        *head = now[..n].to_vec();
    }
    true
}

/// The complete lines of `text` (newline-separated, the last without
/// one) that the filter selects, rendered.
fn render_lines(
    text: &[u8],
    filter: &Filter,
    format: OutputFormat,
    skipped: &mut Skipped,
) -> Vec<u8> {
    let mut out = Vec::new();
    if text.is_empty() {
        return out;
    }
    for l in text.split(|c| *c == b'\n') {
        let line = Line {
            bytes: l,
            terminated: true,
        };
        if let Some((bytes, e)) = examine(line, filter, skipped) {
            out.extend_from_slice(&render_event(bytes, &e, format));
        }
    }
    out
}

/// After a copytruncate of `live` read up to `pos` (with `pending`, the
/// start of a line, not yet printed): the rest of logrotate's copy from
/// that line on. The copy is the newest plain backup beside the log whose
/// bytes before `pos` end with `pending` at a line start, so that it is a
/// copy of what was read; `None` when there is no such file.
fn copy_tail(live: &Path, pos: u64, pending: &[u8]) -> Option<Vec<u8>> {
    let from = pos.checked_sub(pending.len() as u64)?;
    let mut copies: Vec<(Option<std::time::SystemTime>, PathBuf)> = source::discover(live)
        .ok()?
        .into_iter()
        .filter(|p| p != live && p.extension().is_none_or(|e| e != "gz"))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            (m.len() >= pos).then(|| (m.modified().ok(), p))
        })
        .collect();
    copies.sort();
    copies
        .iter()
        .rev()
        .find_map(|(_, p)| tail_if_copy(p, from, pending))
}

/// `copy` from offset `from`, when a line starts there and begins with
/// `pending`.
fn tail_if_copy(copy: &Path, from: u64, pending: &[u8]) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(copy).ok()?;
    f.seek(SeekFrom::Start(from.saturating_sub(1))).ok()?;
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).ok()?;
    let tail = if from == 0 {
        &rest[..]
    } else {
        (rest.first() == Some(&b'\n')).then(|| &rest[1..])?
    };
    tail.starts_with(pending).then(|| tail.to_vec())
}

/// The live file, its offset and inode; waits for it to exist.
fn open_live(live: &Path, at_end: bool) -> Result<(std::fs::File, u64, u64)> {
    loop {
        match std::fs::File::open(live) {
            Ok(mut f) => {
                let m = f
                    .metadata()
                    .map_err(|e| Error::read(&live.display().to_string(), &e))?;
                let pos = if at_end {
                    f.seek(SeekFrom::End(0))
                        .map_err(|e| Error::read(&live.display().to_string(), &e))?
                } else {
                    0
                };
                return Ok((f, pos, m.ino()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::thread::sleep(FOLLOW_POLL),
            Err(e) => return Err(Error::read(&live.display().to_string(), &e)),
        }
    }
}
