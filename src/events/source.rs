//! Where the events are, and their lines: the live log and the backups of
//! both rotation owners, plain or gzip, read in large blocks and split at
//! newlines, with what is not a line of an event counted, never fatal.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Blocks are read this large; a longer line grows the buffer to fit it.
const BLOCK: usize = 1 << 20;
/// Plain files are split into pieces of about this size for `--count` and
/// `--by`, which can read them in parallel.
pub const PIECE: u64 = 32 << 20;

/// The live log `live` and every backup beside it, in name order (the
/// merge puts their events in time order):
/// - kube-apiserver's (lumberjack): `audit-2026-12-02T05-05-50.092.log`,
///   `.gz` when `--audit-log-compress`;
/// - logrotate's: `audit.log-20261202-1764651950` (kaudit-node's
///   `dateext`), `audit.log-20261202`, or `audit.log.1`, each maybe `.gz`.
///
/// Lumberjack's name is matched by hand because it is lumberjack's format:
/// the stem, `-`, `2006-01-02T15-04-05.000`, the extension.
pub fn discover(live: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = live.parent().unwrap_or(Path::new("/"));
    let name = live
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(n) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if is_lumberjack_backup(&n, stem, ext) || is_logrotate_backup(&n, name) {
            found.push(entry.path());
        }
    }
    found.sort();
    if live.exists() || found.is_empty() {
        found.push(live.to_path_buf());
    }
    Ok(found)
}

fn is_lumberjack_backup(n: &str, stem: &str, ext: &str) -> bool {
    let n = n.strip_suffix(".gz").unwrap_or(n);
    let Some(ts) = n
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix(ext))
    else {
        return false;
    };
    // 2006-01-02T15-04-05.000
    let t = ts.as_bytes();
    t.len() == 23
        && t.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

fn is_logrotate_backup(n: &str, name: &str) -> bool {
    let n = n.strip_suffix(".gz").unwrap_or(n);
    match n.strip_prefix(name) {
        Some(r) => match r.as_bytes().first() {
            // dateext: `-` then digits and dashes (dateformat -%Y%m%d-%s).
            Some(b'-') => r.len() > 1 && r[1..].bytes().all(|c| c.is_ascii_digit() || c == b'-'),
            // Numbered: `.1`.
            Some(b'.') => r.len() > 1 && r[1..].bytes().all(|c| c.is_ascii_digit()),
            _ => false,
        },
        None => false,
    }
}

/// A part of a file to read: all of it, or (for a plain file) the lines
/// that start in `start..end`.
#[derive(Debug, Clone)]
pub struct Piece {
    pub path: PathBuf,
    pub start: u64,
    pub end: Option<u64>,
}

/// `paths` cut into pieces: gzip files whole, plain files in [`PIECE`]s.
pub fn pieces(paths: &[PathBuf]) -> Vec<io::Result<Piece>> {
    pieces_of(paths, PIECE)
}

fn pieces_of(paths: &[PathBuf], size: u64) -> Vec<io::Result<Piece>> {
    let mut out = Vec::new();
    for p in paths {
        let whole = |p: &Path| Piece {
            path: p.to_path_buf(),
            start: 0,
            end: None,
        };
        match File::open(p).and_then(|mut f| Ok((is_gzip(&mut f)?, f.metadata()?.len()))) {
            Err(e) => out.push(Err(e)),
            Ok((true, _)) => out.push(Ok(whole(p))),
            Ok((false, len)) if len <= size => out.push(Ok(whole(p))),
            Ok((false, len)) => {
                let mut start = 0;
                while start < len {
                    let end = (start + size).min(len);
                    out.push(Ok(Piece {
                        path: p.clone(),
                        start,
                        end: (end < len).then_some(end),
                    }));
                    start = end;
                }
            }
        }
    }
    out
}

fn is_gzip(f: &mut File) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(got == 2 && magic == [0x1f, 0x8b])
}

/// Opens `path`, decompressing when it is gzip (by its magic, not its
/// name: a backup may be compressed after it was listed).
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    Ok(if is_gzip(&mut f)? {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    })
}

/// What was skipped, and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// An unterminated last line that is not a whole event (a cut at a
    /// rotation or a crash).
    pub torn: u64,
    /// Runs of NUL bytes (a writer's offset kept after copytruncate).
    pub nul_runs: u64,
    /// Lines that are not audit events (other JSON, log text).
    pub invalid: u64,
}

impl Skipped {
    pub fn add(&mut self, o: Skipped) {
        self.torn += o.torn;
        self.nul_runs += o.nul_runs;
        self.invalid += o.invalid;
    }
    pub fn lines(&self) -> u64 {
        self.torn + self.invalid
    }
}

/// One line, without its newline; `terminated` is false for the last
/// bytes of a stream that has no newline after them.
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub terminated: bool,
}

/// Lines of a reader, split with memchr over large blocks.
pub struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The stream offset of `buf[start]`, and where lines stop starting.
    offset: u64,
    stop: Option<u64>,
}

impl<R: Read> Lines<R> {
    pub fn new(r: R) -> Lines<R> {
        Lines {
            r,
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            stop: None,
        }
    }

    /// The next line, or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if self.stop.is_some_and(|s| self.offset >= s) {
                return Ok(None);
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let s = self.start;
                self.start += i + 1;
                self.offset += i as u64 + 1;
                return Ok(Some(Line {
                    bytes: &self.buf[s..s + i],
                    terminated: true,
                }));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let s = self.start;
                self.offset += (self.end - s) as u64;
                self.start = self.end;
                return Ok(Some(Line {
                    bytes: &self.buf[s..self.end],
                    terminated: false,
                }));
            }
            self.fill()?;
        }
    }

    /// Reads more: moves the unfinished line to the front, and grows the
    /// buffer when that line fills it.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The lines of `p`: of a whole file, or those that start in its range.
pub fn lines(p: &Piece) -> io::Result<Lines<Box<dyn Read + Send>>> {
    if p.start == 0 && p.end.is_none() {
        return Ok(Lines::new(open(&p.path)?));
    }
    let mut f = File::open(&p.path)?;
    // The line that spans `start` belongs to the piece before: start one
    // byte early and drop everything up to the first newline.
    let from = p.start.saturating_sub(1);
    f.seek(SeekFrom::Start(from))?;
    let mut l = Lines::new(Box::new(f) as Box<dyn Read + Send>);
    l.offset = from;
    l.stop = p.end;
    if p.start > 0 {
        l.next_line()?;
    }
    Ok(l)
}

/// A line's event bytes: without the NUL run in front (counted) and
/// surrounding whitespace; `None` for a line with nothing else.
pub fn trim<'a>(line: &'a [u8], skipped: &mut Skipped) -> Option<&'a [u8]> {
    let mut l = line;
    if l.first() == Some(&0) || l.last() == Some(&0) {
        let lead = l.iter().take_while(|c| **c == 0).count();
        let trail = l[lead..].iter().rev().take_while(|c| **c == 0).count();
        skipped.nul_runs += u64::from(lead > 0) + u64::from(trail > 0);
        l = &l[lead..l.len() - trail];
    }
    let l = l.trim_ascii();
    (!l.is_empty()).then_some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_of_both_owners() {
        for (n, yes) in [
            ("audit-2026-12-02T05-05-50.092.log", true),
            ("audit-2026-12-02T05-05-50.092.log.gz", true),
            ("audit.log-20261202-1764651950", true),
            ("audit.log-20261202.gz", true),
            ("audit.log.1", true),
            ("audit.log.2.gz", true),
            ("audit.log", false),
            ("audit-2026-12-02.log", false),
            ("audit.log.bak", false),
            ("other-2026-12-02T05-05-50.092.log", false),
            ("audit.log-", false),
        ] {
            let got =
                is_lumberjack_backup(n, "audit", ".log") || is_logrotate_backup(n, "audit.log");
            assert_eq!(got, yes, "{n}");
        }
    }

    #[test]
    fn lines_across_blocks_and_a_torn_end() {
        let text = format!("{}\nb\n\nlast", "a".repeat(3 * BLOCK));
        let mut l = Lines::new(text.as_bytes());
        let mut got = Vec::new();
        while let Some(line) = l.next_line().unwrap() {
            got.push((line.bytes.len(), line.terminated));
        }
        assert_eq!(got, [(3 * BLOCK, true), (1, true), (0, true), (4, false)]);
    }

    #[test]
    fn nul_runs_are_cut_and_counted() {
        let mut s = Skipped::default();
        assert_eq!(trim(b"\0\0\0{\"a\":1}", &mut s), Some(&b"{\"a\":1}"[..]));
        assert_eq!(trim(b"\0\0", &mut s), None);
        assert_eq!(trim(b"  ", &mut s), None);
        assert_eq!(s.nul_runs, 2);
    }

    #[test]
    fn pieces_give_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.log");
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let ps: Vec<Piece> = pieces_of(std::slice::from_ref(&p), 100_003)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(ps.len() > 1, "{} bytes in one piece", text.len());
        let mut n = 0u64;
        let mut sum = 0u64;
        for piece in &ps {
            let mut l = lines(piece).unwrap();
            while let Some(line) = l.next_line().unwrap() {
                let s = std::str::from_utf8(line.bytes).unwrap();
                sum += s[5..s.len() - 1].parse::<u64>().unwrap();
                n += 1;
            }
        }
        assert_eq!((n, sum), (200_000, (0..200_000u64).sum()));
    }
}
