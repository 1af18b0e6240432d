//! Turning raw log fields into text: time stamps, durations, and the
//! escaping that keeps one record on one line.
//!
//! Everything here is pure and runs on the writer thread, off the request
//! path.

use super::AccessEntry;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A message must stay on one line: a newline in it (a request path cannot
/// hold one, but an error text might) would forge a second log line.
pub(super) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        std::borrow::Cow::Owned(text.replace('\n', "\\n").replace('\r', "\\r"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `d` in milliseconds with three decimals (microsecond resolution): `0.123ms`.
#[must_use]
pub fn format_millis(d: Duration) -> String {
    let micros = d.as_micros();
    format!("{}.{:03}ms", micros / 1000, micros % 1000)
}

/// `t` as UTC ISO-8601 with milliseconds, e.g. `2026-11-27T20:54:39.123Z`.
///
/// Instants before 1970 work too (`1969-12-31T23:59:59.000Z`); the
/// milliseconds are truncated toward the past, like every clock display.
#[must_use]
pub fn format_utc(t: SystemTime) -> String {
    // Signed milliseconds since the epoch. `SystemTime` spans far less than
    // i128 milliseconds, so the conversion cannot saturate in practice; if
    // it ever did, a wrong date in a log beats a panic.
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        Err(before) => {
            // Round toward the past: -0.5 ms is 23:59:59.999 on the day before.
            let d = before.duration();
            let ms = i128::try_from(d.as_millis()).unwrap_or(i128::MAX);
            let partial = i128::from(d.subsec_nanos() % 1_000_000 != 0);
            -(ms + partial)
        }
    };
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date
/// Algorithms"). The trick: count from 0000-03-01 so that the leap day is
/// the *last* day of a year, and split time into 400-year eras of exactly
/// 146 097 days, in which every calendar repeats.
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
                                            // Years of 365 days, minus the leap days of years 4, 100 (not) and 400.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    }; // [1, 12]
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    // Both conversions are lossless (the ranges are stated on the lines
    // above); the fallback only keeps the function total.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Seconds since the epoch → (days, second of day), for any instant.
fn split_epoch_seconds(t: SystemTime) -> (i128, i128) {
    let secs: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::from(after.as_secs()),
        Err(before) => {
            let d = before.duration();
            let partial = i128::from(d.subsec_nanos() != 0);
            -(i128::from(d.as_secs()) + partial)
        }
    };
    (secs.div_euclid(86_400), secs.rem_euclid(86_400))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` as the Common Log Format's time, in UTC: `28/Nov/2026:03:12:45 +0000`
/// (Apache's `%t` without the brackets; seconds truncated toward the past).
#[must_use]
pub fn format_clf_time(t: SystemTime) -> String {
    let (days, second_of_day) = split_epoch_seconds(t);
    let (year, month, day) = civil_from_days(days);
    // `month` is in 1..=12 (see `civil_from_days`), so the index is in range.
    let name = MONTHS[(month - 1) as usize];
    format!(
        "{day:02}/{name}/{year:04}:{:02}:{:02}:{:02} +0000",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Appends `text` (any bytes: a header value need not be UTF-8) for use
/// inside a quoted field of an access-log line, the way Apache's
/// `mod_log_config` and nginx escape: `"` and `\` get a backslash, and
/// every control byte and every byte outside ASCII becomes `\xHH`. So a
/// hostile header can neither end the quoted field early nor start a new
/// line, and the line stays ASCII.
pub fn push_escaped(out: &mut String, text: &[u8]) {
    for &b in text {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// One access-log line (with its newline) in the Combined Log Format plus
/// the duration in seconds:
///
/// ```text
/// 127.0.0.1 - - [28/Nov/2026:03:12:45 +0000] "POST /api/states_mean?x=1 HTTP/1.1" 200 22 "-" "curl/8.5.0" 0.245
/// ```
///
/// What is unknown is `-`: the client address, a referer or user agent
/// not sent, and the whole request line when it could not be parsed.
pub fn access_line(entry: &AccessEntry) -> String {
    let mut line = String::with_capacity(160);
    match entry.peer {
        Some(IpAddr::V4(ip)) => {
            let _ = write!(line, "{ip}");
        }
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => {
                let _ = write!(line, "{v4}");
            }
            None => {
                let _ = write!(line, "{ip}");
            }
        },
        None => line.push('-'),
    }
    let _ = write!(line, " - - [{}] \"", format_clf_time(entry.at));
    if entry.method == "-" || entry.method.is_empty() {
        line.push('-');
    } else {
        push_escaped(&mut line, entry.method.as_bytes());
        line.push(' ');
        push_escaped(&mut line, entry.target.as_bytes());
        if !entry.version.is_empty() {
            line.push(' ');
            push_escaped(&mut line, entry.version.as_bytes());
        }
    }
    let _ = write!(line, "\" {} {} \"", entry.status, entry.body_bytes);
    push_field(&mut line, entry.referer.as_deref());
    line.push_str("\" \"");
    push_field(&mut line, entry.user_agent.as_deref());
    let _ = writeln!(line, "\" {}", format_seconds(entry.duration));
    line
}

/// A quoted header value, or `-` when it was not sent (or sent empty).
fn push_field(out: &mut String, value: Option<&[u8]>) {
    match value {
        Some(text) if !text.is_empty() => push_escaped(out, text),
        _ => out.push('-'),
    }
}

/// `d` in seconds with three decimals, as the access log prints it: `0.245`.
#[must_use]
pub fn format_seconds(d: Duration) -> String {
    let micros = d.as_micros();
    format!("{}.{:03}", micros / 1_000_000, micros % 1_000_000 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> SystemTime {
        let base = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        base + Duration::from_millis(u64::from(millis))
    }

    #[test]
    fn known_instants() {
        // Expected values from `date -u -d @SECS`.
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (1_709_210_096, 789, "2024-02-29T12:34:56.789Z"),
            (951_868_800, 0, "2000-03-01T00:00:00.000Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000Z"),
            (946_684_799, 999, "1999-12-31T23:59:59.999Z"),
            (1_795_812_879, 123, "2026-11-27T20:54:39.123Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000Z"),
            (-1, 0, "1969-12-31T23:59:59.000Z"),
            (-1, 500, "1969-12-31T23:59:59.500Z"),
        ];
        for (secs, millis, expected) in cases {
            assert_eq!(format_utc(at(secs, millis)), expected, "{secs}.{millis}");
        }
    }

    #[test]
    fn before_epoch_rounds_toward_the_past() {
        let t = UNIX_EPOCH - Duration::from_micros(500);
        assert_eq!(format_utc(t), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        // Walk 1900-01-01 .. 2300-01-01 and check the date advances by
        // exactly one calendar day each time.
        let mut previous = civil_from_days(-25_567); // 1900-01-01
        assert_eq!(previous, (1900, 1, 1));
        for days in -25_566..120_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_ok = (y == py && m == pm && d == pd + 1)
                || (y == py && m == pm + 1 && d == 1)
                || (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
            assert!(next_ok, "{previous:?} -> {:?}", (y, m, d));
            previous = (y, m, d);
        }
    }

    #[test]
    fn millis_format() {
        assert_eq!(format_millis(Duration::from_micros(123)), "0.123ms");
        assert_eq!(format_millis(Duration::from_micros(400)), "0.400ms");
        assert_eq!(format_millis(Duration::from_millis(1234)), "1234.000ms");
        assert_eq!(format_millis(Duration::ZERO), "0.000ms");
    }

    #[test]
    fn clf_times() {
        // Expected values from `date -u -d @SECS +'%d/%b/%Y:%H:%M:%S %z'`.
        assert_eq!(format_clf_time(at(0, 0)), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(
            format_clf_time(at(1_709_210_096, 789)),
            "29/Feb/2024:12:34:56 +0000"
        );
        assert_eq!(
            format_clf_time(at(1_795_812_879, 999)),
            "27/Nov/2026:20:54:39 +0000"
        );
        assert_eq!(format_clf_time(at(-1, 500)), "31/Dec/1969:23:59:59 +0000");
    }

    #[test]
    fn escaping_keeps_a_field_quoted_and_the_line_one_line() {
        let mut out = String::new();
        push_escaped(&mut out, "a\"b\\c\td\ne\x7fé".as_bytes());
        assert_eq!(out, r#"a\"b\\c\x09d\x0ae\x7f\xc3\xa9"#);
        // Bytes that are not UTF-8 (a Latin-1 é) are escaped the same way.
        out.clear();
        push_escaped(&mut out, b"caf\xe9");
        assert_eq!(out, r"caf\xe9");
    }

    fn entry() -> AccessEntry {
        AccessEntry {
            at: at(1_795_812_879, 123),
            peer: Some(IpAddr::from([127, 0, 0, 1])),
            method: "POST".into(),
            target: "/api/states_mean?x=1".into(),
            version: "HTTP/1.1",
            status: 200,
            body_bytes: 22,
            referer: None,
            user_agent: Some(b"curl/8.5.0".to_vec()),
            duration: Duration::from_micros(245_678),
        }
    }

    #[test]
    fn access_lines() {
        assert_eq!(
            access_line(&entry()),
            "127.0.0.1 - - [27/Nov/2026:20:54:39 +0000] \"POST /api/states_mean?x=1 HTTP/1.1\" 200 22 \"-\" \"curl/8.5.0\" 0.245\n"
        );
        // A hostile User-Agent cannot close the quotes or add a line.
        let hostile = AccessEntry {
            user_agent: Some(b"x\" 200 1 \"-\" \"y\n1.2.3.4 - -".to_vec()),
            referer: Some(b"http://a/\"".to_vec()),
            ..entry()
        };
        assert_eq!(
            access_line(&hostile),
            "127.0.0.1 - - [27/Nov/2026:20:54:39 +0000] \"POST /api/states_mean?x=1 HTTP/1.1\" 200 22 \"http://a/\\\"\" \"x\\\" 200 1 \\\"-\\\" \\\"y\\x0a1.2.3.4 - -\" 0.245\n"
        );
        // A request line that did not parse, from an unknown peer; an IPv6
        // peer that is a mapped IPv4 address prints as IPv4.
        let unparsed = AccessEntry {
            peer: None,
            method: "-".into(),
            target: "-".into(),
            version: "",
            status: 400,
            body_bytes: 55,
            user_agent: None,
            ..entry()
        };
        assert_eq!(
            access_line(&unparsed),
            "- - - [27/Nov/2026:20:54:39 +0000] \"-\" 400 55 \"-\" \"-\" 0.245\n"
        );
        let mapped = AccessEntry {
            peer: Some("::ffff:10.0.0.1".parse().unwrap()),
            ..entry()
        };
        assert!(access_line(&mapped).starts_with("10.0.0.1 - - ["));
        let v6 = AccessEntry {
            peer: Some("::1".parse().unwrap()),
            ..entry()
        };
        assert!(access_line(&v6).starts_with("::1 - - ["));
    }

    #[test]
    fn seconds_format() {
        assert_eq!(format_seconds(Duration::from_micros(245_678)), "0.245");
        assert_eq!(format_seconds(Duration::from_millis(12_034)), "12.034");
        assert_eq!(format_seconds(Duration::ZERO), "0.000");
    }

    #[test]
    fn newlines_cannot_forge_lines() {
        assert_eq!(one_line("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(one_line("plain"), "plain");
    }
}
