//! The audit log writer, as `getWriter`/`ensureLogFile` build it (docs/reference.md, Log
//! writer and rotation (lumberjack)):
//!
//! * path `-` → stdout;
//! * otherwise `ensureLogFile`: `MkdirAll(dir, 0700)`, then
//!   `OpenFile(path, O_CREATE|O_APPEND|O_RDWR, 0600)` and close — fatal on error;
//! * ≤1.35 (and 1.36+ with maxsize > 0): a lumberjack v2.2.1 logger. It opens the file
//!   lazily on the first write (`O_APPEND|O_WRONLY`), keeps that descriptor and never
//!   reopens it except to rotate: rename to `audit-<UTC 2006-01-02T15-04-05.000>.log`,
//!   new file `O_CREATE|O_WRONLY|O_TRUNC` with the old mode and owner, then the
//!   maxbackup/maxage/compress "mill". maxsize 0 means 100 MB. An in-memory size
//!   counter ignores external truncation; a deleted file keeps being written.
//! * 1.36+ with maxsize 0: `OpenFile(path, O_APPEND|O_WRONLY, 0644)`, never rotated.
//!
//! Every line goes out in a single write(2).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::gostr::path_error;
use crate::timefmt::{backup_stamp, parse_backup_stamp};

const MEGABYTE: u64 = 1024 * 1024;
const DEFAULT_MAX_SIZE_MB: u64 = 100;

/// Go's `filepath.Dir`.
fn go_dir(path: &str) -> String {
    match Path::new(path).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        Some(_) => ".".into(),
        None => path.to_string(),
    }
}

/// Go's `os.MkdirAll`, with its error texts (`mkdir /proc/x: no such file or directory`).
pub fn mkdir_all(path: &str, mode: u32) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(path_error(
                "mkdir",
                path,
                &io::Error::from_raw_os_error(libc::ENOTDIR),
            ));
        }
        Err(_) => {}
    }
    let trimmed = path.trim_end_matches('/');
    if let Some(j) = trimmed.rfind('/').filter(|&j| j > 0) {
        mkdir_all(&trimmed[..j], mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(()),
        Err(e) => match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(path_error("mkdir", path, &e)),
        },
    }
}

/// `ensureLogFile` (1.22 + 1.25): the error is what follows `ensureLogFile: `.
pub fn ensure_log_file(path: &str) -> Result<(), String> {
    mkdir_all(&go_dir(path), 0o700)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| path_error("open", path, &e))
}

/// lumberjack.Logger, v2.2.1 semantics.
pub struct Lumberjack {
    filename: PathBuf,
    max_bytes: u64,
    max_age_days: i64,
    max_backups: i64,
    compress: bool,
    file: Option<File>,
    size: u64,
}

impl Lumberjack {
    pub fn new(
        filename: &str,
        max_size_mb: i64,
        max_age_days: i64,
        max_backups: i64,
        compress: bool,
    ) -> Self {
        let mb = if max_size_mb > 0 {
            max_size_mb as u64
        } else {
            DEFAULT_MAX_SIZE_MB
        };
        Lumberjack {
            filename: PathBuf::from(filename),
            max_bytes: mb.saturating_mul(MEGABYTE),
            max_age_days,
            max_backups,
            compress,
            file: None,
            size: 0,
        }
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(go_dir(&self.filename.to_string_lossy()))
    }

    fn name(&self) -> String {
        self.filename.to_string_lossy().into_owned()
    }

    /// `prefix-` and `.ext` of backup names.
    fn prefix_and_ext(&self) -> (String, String) {
        let base = self
            .filename
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = match base.rfind('.') {
            Some(i) => base[i..].to_string(),
            None => String::new(),
        };
        (format!("{}-", &base[..base.len() - ext.len()]), ext)
    }

    fn backup_name(&self, now: SystemTime) -> PathBuf {
        let (prefix, ext) = self.prefix_and_ext();
        self.dir()
            .join(format!("{prefix}{}{ext}", backup_stamp(now)))
    }

    /// `Write`: the whole line in one write(2).
    pub fn write(&mut self, line: &[u8]) -> Result<(), String> {
        let len = line.len() as u64;
        if len > self.max_bytes {
            return Err(format!(
                "write length {len} exceeds maximum file size {}",
                self.max_bytes
            ));
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        }
        if self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let f = self.file.as_mut().expect("open");
        let n = write_once(f, line)
            .map_err(|e| path_error("write", &self.filename.to_string_lossy(), &e))?;
        self.size += n as u64;
        Ok(())
    }

    fn open_existing_or_new(&mut self, write_len: u64) -> Result<(), String> {
        self.mill();
        let name = self.name();
        let info = match fs::metadata(&name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.open_new(),
            Err(e) => {
                return Err(format!(
                    "error getting log file info: {}",
                    path_error("stat", &name, &e)
                ));
            }
            Ok(i) => i,
        };
        if info.len() + write_len >= self.max_bytes {
            return self.rotate();
        }
        match OpenOptions::new().append(true).mode(0o644).open(&name) {
            Ok(f) => {
                self.file = Some(f);
                self.size = info.len();
                Ok(())
            }
            Err(_) => self.open_new(),
        }
    }

    fn open_new(&mut self) -> Result<(), String> {
        let dir = self.dir().to_string_lossy().into_owned();
        mkdir_all(&dir, 0o755)
            .map_err(|e| format!("can't make directories for new logfile: {e}"))?;
        let name = self.name();
        let mut mode = 0o600;
        if let Ok(info) = fs::metadata(&name) {
            mode = info.permissions().mode() & 0o7777;
            let newname = self.backup_name(SystemTime::now());
            fs::rename(&name, &newname).map_err(|e| {
                format!(
                    "can't rename log file: rename {name} {}: {}",
                    newname.to_string_lossy(),
                    crate::gostr::errno_text(&e)
                )
            })?;
            // lumberjack's chown(): create the new file and give it the old owner.
            let f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(mode)
                .open(&name)
                .map_err(|e| path_error("open", &name, &e))?;
            drop(f);
            std::os::unix::fs::chown(&name, Some(info.uid()), Some(info.gid()))
                .map_err(|e| path_error("chown", &name, &e))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(&name)
            .map_err(|e| format!("can't open new logfile: {}", path_error("open", &name, &e)))?;
        self.file = Some(f);
        self.size = 0;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.file = None;
        self.open_new()?;
        self.mill();
        Ok(())
    }

    /// The backups, newest first (`oldLogFiles`).
    fn old_log_files(&self) -> Vec<(SystemTime, String)> {
        let (prefix, ext) = self.prefix_and_ext();
        let gz_ext = format!("{ext}.gz");
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.dir()) else {
            return out;
        };
        for entry in rd.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(true) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = |ext: &str| -> Option<SystemTime> {
                let inner = name.strip_prefix(&prefix)?.strip_suffix(ext)?;
                parse_backup_stamp(inner)
            };
            if let Some(t) = stamp(&ext).or_else(|| stamp(&gz_ext)) {
                out.push((t, name));
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.0));
        out
    }

    /// `millRunOnce`: drop backups beyond maxbackup or older than maxage, gzip the rest.
    fn mill(&self) {
        if self.max_backups == 0 && self.max_age_days == 0 && !self.compress {
            return;
        }
        let mut files = self.old_log_files();
        let mut remove = Vec::new();
        if self.max_backups > 0 && (self.max_backups as usize) < files.len() {
            let mut preserved: Vec<String> = Vec::new();
            let mut remaining = Vec::new();
            for f in files {
                let base = f.1.strip_suffix(".gz").unwrap_or(&f.1).to_string();
                if !preserved.contains(&base) {
                    preserved.push(base);
                }
                if preserved.len() > self.max_backups as usize {
                    remove.push(f);
                } else {
                    remaining.push(f);
                }
            }
            files = remaining;
        }
        if self.max_age_days > 0 {
            let age = Duration::from_secs(self.max_age_days as u64 * 86_400);
            let cutoff = SystemTime::now()
                .checked_sub(age)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let (old, young): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.0 < cutoff);
            remove.extend(old);
            files = young;
        }
        let dir = self.dir();
        for (_, name) in &remove {
            let _ = fs::remove_file(dir.join(name));
        }
        if self.compress {
            for (_, name) in files.iter().filter(|f| !f.1.ends_with(".gz")) {
                let _ = compress_log_file(&dir.join(name));
            }
        }
    }
}

/// One write(2); a short write is reported, never split into a second write.
fn write_once(f: &mut File, line: &[u8]) -> io::Result<usize> {
    let n = f.write(line)?;
    if n < line.len() {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(n)
}

/// lumberjack's `compressLogFile`: `src` → `src.gz` with src's mode and owner, then remove src.
fn compress_log_file(src: &Path) -> io::Result<()> {
    let meta = fs::metadata(src)?;
    let mut data = Vec::new();
    File::open(src)?.read_to_end(&mut data)?;
    let dst = PathBuf::from(format!("{}.gz", src.to_string_lossy()));
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(meta.permissions().mode() & 0o7777)
        .open(&dst)?;
    std::os::unix::fs::fchown(&out, Some(meta.uid()), Some(meta.gid()))?;
    out.write_all(&gzip_stored(&data))?;
    out.sync_all()?;
    fs::remove_file(src)
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// A valid gzip member using stored (uncompressed) deflate blocks: std only, and
/// `gunzip`/`zcat` read it like lumberjack's output.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(if chunks.peek().is_none() { 1 } else { 0 });
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Where audit lines go.
pub enum Sink {
    Stdout,
    Lumberjack(Lumberjack),
    /// 1.36+ with `--audit-log-maxsize=0`.
    Plain {
        file: File,
        path: String,
    },
}

impl Sink {
    pub fn write(&mut self, line: &[u8]) -> Result<(), String> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line)
                    .and_then(|_| out.flush())
                    .map_err(|e| path_error("write", "/dev/stdout", &e))
            }
            Sink::Lumberjack(l) => l.write(line),
            Sink::Plain { file, path } => write_once(file, line)
                .map(drop)
                .map_err(|e| path_error("write", path, &e)),
        }
    }
}

/// `getWriter`: `None` when the log backend is off. The error follows `ensureLogFile: `
/// (or is the 1.36 plain-open error).
pub fn get_writer(
    path: &str,
    max_size: i64,
    max_age: i64,
    max_backups: i64,
    compress: bool,
    v136: bool,
) -> Result<Option<Sink>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    if path == "-" {
        return Ok(Some(Sink::Stdout));
    }
    ensure_log_file(path).map_err(|e| format!("ensureLogFile: {e}"))?;
    if v136 && max_size == 0 {
        let file = OpenOptions::new()
            .append(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| path_error("open", path, &e))?;
        return Ok(Some(Sink::Plain {
            file,
            path: path.to_string(),
        }));
    }
    Ok(Some(Sink::Lumberjack(Lumberjack::new(
        path,
        max_size,
        max_age,
        max_backups,
        compress,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("standin-writer-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ensure_log_file_modes_and_errors() {
        let d = tmpdir("ensure");
        let path = d.join("a/b/audit.log");
        let p = path.to_string_lossy().into_owned();
        ensure_log_file(&p).unwrap();
        let umask_free = |m: u32| m & 0o777;
        assert_eq!(
            umask_free(fs::metadata(d.join("a/b")).unwrap().permissions().mode()) & !0o700,
            0
        );
        assert_eq!(
            umask_free(fs::metadata(&path).unwrap().permissions().mode()),
            0o600
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(
            ensure_log_file("/proc/standin-nope/audit.log").unwrap_err(),
            "mkdir /proc/standin-nope: no such file or directory"
        );
        let file_as_dir = format!("{p}/x.log");
        assert_eq!(
            ensure_log_file(&file_as_dir).unwrap_err(),
            format!("mkdir {p}: not a directory")
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lazy_open_append_and_rotation() {
        let d = tmpdir("rotate");
        let path = d.join("audit.log").to_string_lossy().into_owned();
        ensure_log_file(&path).unwrap();
        fs::write(&path, b"old\n").unwrap();
        let mut lj = Lumberjack::new(&path, 1, 0, 2, false);
        assert!(lj.file.is_none(), "opened lazily");
        lj.write(b"line\n").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"old\nline\n",
            "existing file appended to"
        );
        // Fill up to the limit; the next write rotates.
        lj.size = lj.max_bytes - 2;
        lj.write(b"rotated\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"rotated\n");
        let backups = lj.old_log_files();
        assert_eq!(backups.len(), 1);
        assert!(backups[0].1.starts_with("audit-") && backups[0].1.ends_with(".log"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "mode copied"
        );
        // maxbackup=2: a fourth generation drops the oldest backup.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            lj.size = lj.max_bytes;
            lj.write(b"x\n").unwrap();
        }
        assert_eq!(lj.old_log_files().len(), 2);
        assert!(
            lj.write(&vec![b'x'; (MEGABYTE + 1) as usize])
                .unwrap_err()
                .starts_with("write length")
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn maxsize_zero_is_100_mb() {
        assert_eq!(
            Lumberjack::new("/x/audit.log", 0, 0, 0, false).max_bytes,
            100 * MEGABYTE
        );
    }

    #[test]
    fn compression_makes_valid_gzip() {
        let gz = gzip_stored(b"hello\n");
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(crc32(b"hello\n"), 0x363a_3020);
        let d = tmpdir("gzip");
        let path = d.join("audit.log").to_string_lossy().into_owned();
        let mut lj = Lumberjack::new(&path, 1, 0, 0, true);
        lj.write(b"first\n").unwrap();
        lj.size = lj.max_bytes;
        lj.write(b"second\n").unwrap();
        let backups = lj.old_log_files();
        assert_eq!(backups.len(), 1);
        assert!(backups[0].1.ends_with(".log.gz"));
        if Path::new("/bin/gzip").exists() {
            let out = std::process::Command::new("/bin/gzip")
                .arg("-dc")
                .arg(d.join(&backups[0].1))
                .output()
                .unwrap();
            assert_eq!(out.stdout, b"first\n");
        }
        fs::remove_dir_all(&d).unwrap();
    }
}
