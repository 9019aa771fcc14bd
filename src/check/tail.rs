//! The last complete line of a file, read from its end: a window of 4 KiB
//! before the end, doubled until it holds the line, up to [`MAX_LINE`].
//! The cost depends on the length of the last line, not of the file (a
//! 5 GB log costs what a 1 MB one does).
//!
//! A last line still being written (no newline yet) is skipped: the line
//! before it is the last complete one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// The longest last line read (1 MiB; an audit event above the default
/// `--audit-log-truncate-max-event-size` of 100 KiB is already unusual).
pub const MAX_LINE: u64 = 1 << 20;
const FIRST_WINDOW: u64 = 4 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastLine {
    /// The file is empty.
    Empty,
    /// The last complete line, without its newline.
    Line(Vec<u8>),
    /// No newline at all: one line still being written.
    NoCompleteLine,
    /// The last line is longer than [`MAX_LINE`].
    TooLong,
}

/// Reads the last complete line of `f`, whose length is `len`.
pub fn last_line<R: Read + Seek>(f: &mut R, len: u64) -> io::Result<LastLine> {
    if len == 0 {
        return Ok(LastLine::Empty);
    }
    let mut window = FIRST_WINDOW.min(len);
    loop {
        let start = len - window;
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity(window as usize);
        f.by_ref().take(window).read_to_end(&mut buf)?;
        let at_file_start = start == 0;
        if let Some(end) = buf.iter().rposition(|b| *b == b'\n') {
            match buf[..end].iter().rposition(|b| *b == b'\n') {
                Some(prev) => return Ok(LastLine::Line(buf[prev + 1..end].to_vec())),
                None if at_file_start => return Ok(LastLine::Line(buf[..end].to_vec())),
                None => {}
            }
        } else if at_file_start {
            return Ok(LastLine::NoCompleteLine);
        }
        if window > MAX_LINE || window == len {
            return Ok(LastLine::TooLong);
        }
        window = (window * 2).min(MAX_LINE + 1).min(len);
    }
}

/// Opens a file for reading without updating its access time when the
/// kernel allows it (`O_NOATIME` needs the file's owner or CAP_FOWNER).
pub fn open_noatime(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let noatime = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOATIME.bits())
        .open(path);
    match noatime {
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => File::open(path),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn last(b: &[u8]) -> LastLine {
        last_line(&mut Cursor::new(b), b.len() as u64).unwrap()
    }

    #[test]
    fn lines() {
        assert_eq!(last(b""), LastLine::Empty);
        assert_eq!(last(b"one\n"), LastLine::Line(b"one".to_vec()));
        assert_eq!(last(b"one\ntwo\n"), LastLine::Line(b"two".to_vec()));
        assert_eq!(
            last(b"one\ntwo\nthr"),
            LastLine::Line(b"two".to_vec()),
            "a line being written is skipped"
        );
        assert_eq!(last(b"partial"), LastLine::NoCompleteLine);
        assert_eq!(last(b"\n"), LastLine::Line(Vec::new()));
    }

    #[test]
    fn long_lines_grow_the_window() {
        let long = "x".repeat(50_000);
        let text = format!("first\n{long}\n");
        assert_eq!(last(text.as_bytes()), LastLine::Line(long.into_bytes()));
        let huge = format!("a\n{}\n", "y".repeat(MAX_LINE as usize + 10));
        assert_eq!(last(huge.as_bytes()), LastLine::TooLong);
        let one = format!("{}\n", "z".repeat(MAX_LINE as usize - 1));
        assert!(
            matches!(last(one.as_bytes()), LastLine::Line(l) if l.len() == MAX_LINE as usize - 1)
        );
    }

    /// Counts what is read, to show the cost does not depend on the length.
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        read: u64,
    }
    impl Read for Counting<'_> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(b)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    impl Seek for Counting<'_> {
        fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
            self.inner.seek(p)
        }
    }

    #[test]
    fn reads_only_the_end() {
        let mut big = vec![b'a'; 8 << 20];
        big.extend_from_slice(b"\n{\"kind\":\"Event\"}\n");
        let mut c = Counting {
            inner: Cursor::new(&big),
            read: 0,
        };
        let l = last_line(&mut c, big.len() as u64).unwrap();
        assert_eq!(l, LastLine::Line(b"{\"kind\":\"Event\"}".to_vec()));
        assert_eq!(c.read, FIRST_WINDOW);
    }
}
