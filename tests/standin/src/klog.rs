//! klog-style lines on stderr, as kube-apiserver prints them
//! (`E1122 10:00:00.123456   12345 run.go:74] "command failed" err="…"`, as a real v1.28.7 prints it).
//! Times are UTC; each line goes out in one write(2).

use std::io::Write;
use std::time::SystemTime;

use crate::gostr::quote;
use crate::timefmt::klog_stamp;

/// One klog line with the header for `severity` (`I`, `W`, `E`) and call site `site`.
pub fn format_line(severity: char, site: &str, msg: &str, now: SystemTime, pid: u32) -> String {
    let mut line = format!("{severity}{} {pid:>7} {site}] {msg}", klog_stamp(now));
    if !line.ends_with('\n') {
        line.push('\n');
    }
    line
}

fn emit(severity: char, site: &str, msg: &str) {
    let line = format_line(severity, site, msg, SystemTime::now(), std::process::id());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `klog.Infof`-style line (the message is printed as is).
pub fn info(site: &str, msg: &str) {
    emit('I', site, msg);
}

/// `klog.Warningf`-style line.
pub fn warning(site: &str, msg: &str) {
    emit('W', site, msg);
}

/// `klog.Errorf`-style line.
pub fn error(site: &str, msg: &str) {
    emit('E', site, msg);
}

/// `klog.InfoS(msg, k, v, …)`: the message and string values quoted like `%q`.
pub fn info_s(site: &str, msg: &str, kv: &[(&str, &str)]) {
    emit('I', site, &structured(msg, kv));
}

/// The structured form: `"msg" key="value" …`.
pub fn structured(msg: &str, kv: &[(&str, &str)]) -> String {
    let mut s = quote(msg);
    for (k, v) in kv {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(&quote(v));
    }
    s
}

/// The line component-base's `cli.Run` prints for a start-up failure (run.go:74).
pub fn command_failed_line(err: &str) -> String {
    format_line(
        'E',
        "run.go:74",
        &structured("command failed", &[("err", err)]),
        SystemTime::now(),
        std::process::id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn header_like_klog() {
        let t = UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_000);
        assert_eq!(
            format_line('E', "run.go:74", "\"x\"", t, 4242),
            "E1122 10:00:00.123456    4242 run.go:74] \"x\"\n"
        );
    }

    #[test]
    fn command_failed_quotes_like_klog() {
        let line = command_failed_line(
            "invalid audit log format bogus, allowed formats are \"legacy,json\"",
        );
        assert!(line.starts_with('E'));
        assert!(line.ends_with(
            "run.go:74] \"command failed\" err=\"invalid audit log format bogus, allowed formats are \\\"legacy,json\\\"\"\n"
        ));
    }
}
