//! Logging: to the journal when stderr is the journal (`$JOURNAL_STREAM`
//! names stderr's device and inode, systemd.exec(5)), to stderr otherwise,
//! with colour only on a terminal and no timestamps of our own. Verbosity
//! from `-v` or `KAUDIT_NODE_LOG` (an `EnvFilter` directive, which a unit
//! drop-in can set).

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(md) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(md.dev()) && ino.parse::<u64>().ok() == Some(md.ino())
}

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "kaudit_node=info",
        1 => "kaudit_node=debug",
        _ => "kaudit_node=trace",
    };
    let filter =
        EnvFilter::try_from_env("KAUDIT_NODE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let journald = if stderr_is_journal() {
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_syslog_identifier("kaudit-node".into()))
    } else {
        None
    };
    let fmt = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(fmt)
        .try_init();
}
