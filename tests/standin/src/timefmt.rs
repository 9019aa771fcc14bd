//! UTC calendar arithmetic and the few time layouts the apiserver writes:
//! RFC 3339 with microseconds (`metav1.MicroTime`, the audit Event timestamps),
//! RFC3339Nano (the legacy format), klog's header, and lumberjack's backup names
//! (`2006-01-02T15-04-05.000`, lumberjack's `backupTimeFormat`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn utc(t: SystemTime) -> Utc {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    Utc {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: ((sod / 60) % 60) as u32,
        second: (sod % 60) as u32,
        nanos: d.subsec_nanos(),
    }
}

/// `2026-11-22T10:00:00.123456Z` (metav1.MicroTime's JSON form).
pub fn rfc3339_micro(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        u.nanos / 1000
    )
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let u = utc(t);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    );
    if u.nanos != 0 {
        let f = format!("{:09}", u.nanos);
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// klog's header time: `1122 10:00:00.123456`.
pub fn klog_stamp(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:02}{:02} {:02}:{:02}:{:02}.{:06}",
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        u.nanos / 1000
    )
}

/// lumberjack's `backupTimeFormat` = `2006-01-02T15-04-05.000`, in UTC.
pub fn backup_stamp(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        u.nanos / 1_000_000
    )
}

/// Parses a `backup_stamp` back (lumberjack's `timeFromName`); `None` if it is not one.
pub fn parse_backup_stamp(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 23 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    for (i, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b'-'),
        (16, b'-'),
        (19, b'.'),
    ] {
        if b[i] != sep {
            return None;
        }
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats() {
        // 2026-11-22T10:00:00Z
        let t = at(1_795_341_600, 123_456_789);
        assert_eq!(rfc3339_micro(t), "2026-11-22T10:00:00.123456Z");
        assert_eq!(rfc3339_nano(t), "2026-11-22T10:00:00.123456789Z");
        assert_eq!(rfc3339_nano(at(1_795_341_600, 0)), "2026-11-22T10:00:00Z");
        assert_eq!(
            rfc3339_nano(at(1_795_341_600, 500_000_000)),
            "2026-11-22T10:00:00.5Z"
        );
        assert_eq!(klog_stamp(t), "1122 10:00:00.123456");
        assert_eq!(backup_stamp(t), "2026-11-22T10-00-00.123");
        assert_eq!(
            rfc3339_micro(at(951_782_400, 0)),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn backup_stamp_round_trip() {
        let t = at(1_795_341_600, 123_000_000);
        assert_eq!(parse_backup_stamp(&backup_stamp(t)), Some(t));
        assert_eq!(parse_backup_stamp("2026-11-22T10-00-00"), None);
        assert_eq!(parse_backup_stamp("2026-11-22T10:00:00.123"), None);
        assert_eq!(parse_backup_stamp("2026-13-22T10-00-00.123"), None);
    }
}
