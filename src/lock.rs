//! One kaudit-node run at a time on a node: an exclusive `flock(2)` on
//! `/run/lock/kaudit-node.lock` (under the root). The kernel drops the lock
//! when the holder dies, so a killed run never leaves a stale lock; the file
//! records the holder's PID for the waiting message.

use std::fs::OpenOptions;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg, OFlag};

use crate::error::{Error, ExitCode, Result};
use crate::root::Root;

pub const LOCK_PATH: &str = "/run/lock/kaudit-node.lock";

pub struct Lock {
    _flock: Flock<std::fs::File>,
}

/// Takes the lock, waiting up to `wait` for another run to finish.
pub fn acquire(root: &Root, wait: Duration, progress: &mut dyn FnMut(&str)) -> Result<Lock> {
    let node = Path::new(LOCK_PATH);
    let host = root.host_path(node);
    if let Some(dir) = host.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("{}: cannot create: {e}", dir.display())))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(&host)
        .map_err(|e| {
            Error::new(
                ExitCode::NoPerm,
                format!("{LOCK_PATH}: cannot open the lock: {e}"),
            )
        })?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut l) => {
                let _ = l.set_len(0);
                let _ = l.rewind();
                let _ = writeln!(l, "{}", std::process::id());
                return Ok(Lock { _flock: l });
            }
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                file = f;
                if !told {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let _ = file.rewind();
                    progress(&format!(
                        "waiting for another kaudit-node run (PID {}) to finish",
                        holder.trim()
                    ));
                    told = true;
                }
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        ExitCode::TempFail,
                        format!(
                            "another kaudit-node run still holds {LOCK_PATH} after {}s",
                            wait.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, e)) => return Err(Error::io(format!("{LOCK_PATH}: cannot lock: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gives_up() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path());
        let first = acquire(&root, Duration::from_secs(1), &mut |_| {}).unwrap();
        let mut notes = Vec::new();
        let e = acquire(&root, Duration::from_millis(300), &mut |m| {
            notes.push(m.to_string())
        })
        .err()
        .unwrap();
        assert!(e.message.contains("still holds"), "{e}");
        assert!(
            notes[0].contains(&std::process::id().to_string()),
            "{notes:?}"
        );
        drop(first);
        acquire(&root, Duration::from_millis(300), &mut |_| {}).unwrap();
    }
}
