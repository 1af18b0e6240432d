//! Turning raw log fields into text: time stamps, durations, and the
//! escaping that keeps one record on one line.
//!
//! Everything here runs on the writer thread, off the request path, and is
//! pure but for [`Stamps`], the writer's cache of the current second's
//! time-stamp texts.

use super::{AccessEntry, Level};
use crate::http::response::push_decimal_text;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
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

/// Milliseconds since the epoch, rounded toward the past (so -0.5 ms is
/// -1: 23:59:59.999 on the day before). `SystemTime` spans far less than
/// i128 milliseconds, so the conversion cannot saturate in practice; if it
/// ever did, a wrong date in a log beats a panic.
fn epoch_millis(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        Err(before) => {
            let d = before.duration();
            let ms = i128::try_from(d.as_millis()).unwrap_or(i128::MAX);
            let partial = i128::from(d.subsec_nanos() % 1_000_000 != 0);
            -(ms + partial)
        }
    }
}

/// The two time stamps' texts for one second, formatted once per second:
/// under load the writer stamps thousands of lines with the same second,
/// and the calendar arithmetic and `core::fmt` calls are then paid once (a
/// saving measured in docs/bench.md, 2026-12-06). Each line still gets its
/// own second: `tests::stamps_reformat_when_the_second_changes`.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// Seconds since the epoch (rounded toward the past) the texts are
    /// for; `None` before the first line.
    second: Option<i128>,
    /// The Common Log Format time: `28/Nov/2026:03:12:45 +0000`.
    clf: String,
    /// ISO-8601 up to the milliseconds: `2026-11-28T03:12:45.`.
    iso: String,
}

impl Stamps {
    /// Makes the texts those of `t`'s second; returns `t`'s milliseconds
    /// within it.
    fn update(&mut self, t: SystemTime) -> u32 {
        let millis = epoch_millis(t);
        let second = millis.div_euclid(1000);
        if self.second != Some(second) {
            let days = second.div_euclid(86_400);
            let second_of_day = second.rem_euclid(86_400);
            let (year, month, day) = civil_from_days(days);
            let (h, m, s) = (
                second_of_day / 3600,
                second_of_day % 3600 / 60,
                second_of_day % 60,
            );
            // `month` is in 1..=12 (see `civil_from_days`), so the index is in range.
            let name = MONTHS[(month - 1) as usize];
            // Writing to a String cannot fail.
            self.clf.clear();
            let _ = write!(
                self.clf,
                "{day:02}/{name}/{year:04}:{h:02}:{m:02}:{s:02} +0000"
            );
            self.iso.clear();
            let _ = write!(
                self.iso,
                "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}."
            );
            // Last: the texts are the second's only once both are written.
            self.second = Some(second);
        }
        // In 0..1000, so the conversion is lossless.
        u32::try_from(millis.rem_euclid(1000)).unwrap_or(0)
    }

    /// Appends `t` as UTC ISO-8601 with milliseconds, e.g.
    /// `2026-11-27T20:54:39.123Z`. Instants before 1970 work too
    /// (`1969-12-31T23:59:59.000Z`); the milliseconds are truncated toward
    /// the past, like every clock display.
    pub(super) fn push_utc(&mut self, out: &mut String, t: SystemTime) {
        let ms = self.update(t);
        out.push_str(&self.iso);
        push_three_digits(out, ms);
        out.push('Z');
    }

    /// Appends `t` as the Common Log Format's time, in UTC:
    /// `28/Nov/2026:03:12:45 +0000` (Apache's `%t` without the brackets;
    /// seconds truncated toward the past).
    pub(super) fn push_clf(&mut self, out: &mut String, t: SystemTime) {
        self.update(t);
        out.push_str(&self.clf);
    }
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

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

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

/// Appends one access-log line (with its newline) to `out`, in the
/// Combined Log Format plus the duration in seconds:
///
/// ```text
/// 127.0.0.1 - - [28/Nov/2026:03:12:45 +0000] "POST /api/states_mean?x=1 HTTP/1.1" 200 22 "-" "curl/8.5.0" 0.245
/// ```
///
/// What is unknown is `-`: the client address, a referer or user agent
/// not sent, and the whole request line when it could not be parsed.
pub(super) fn access_line(out: &mut String, entry: &AccessEntry, stamps: &mut Stamps) {
    // Writing to a String cannot fail.
    match entry.peer {
        Some(IpAddr::V4(ip)) => push_ipv4(out, ip),
        Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => push_ipv4(out, v4),
            None => {
                let _ = write!(out, "{ip}");
            }
        },
        None => out.push('-'),
    }
    out.push_str(" - - [");
    stamps.push_clf(out, entry.at);
    out.push_str("] \"");
    let method = entry.method();
    if method == b"-" || method.is_empty() {
        out.push('-');
    } else {
        push_escaped(out, method);
        out.push(' ');
        push_escaped(out, entry.target());
        if !entry.version.is_empty() {
            out.push(' ');
            push_escaped(out, entry.version.as_bytes());
        }
    }
    out.push_str("\" ");
    push_decimal_text(out, u64::from(entry.status));
    out.push(' ');
    push_decimal_text(out, entry.body_bytes);
    out.push_str(" \"");
    push_field(out, entry.referer());
    out.push_str("\" \"");
    push_field(out, entry.user_agent());
    out.push_str("\" ");
    push_seconds(out, entry.duration);
    out.push('\n');
}

/// Appends `ip` in dotted decimal, as its `Display` does, without
/// `core::fmt`.
fn push_ipv4(out: &mut String, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal_text(out, u64::from(octet));
    }
}

/// Appends one server-log line (with its newline) to `out`:
/// `2026-11-27T20:54:39.124Z INFO job_id_7 submitted: states_mean`.
pub(super) fn server_line(
    out: &mut String,
    at: SystemTime,
    level: Level,
    text: &str,
    stamps: &mut Stamps,
) {
    stamps.push_utc(out, at);
    out.push(' ');
    out.push_str(level.as_str());
    out.push(' ');
    out.push_str(&one_line(text));
    out.push('\n');
}

/// A quoted header value, or `-` when it was not sent or sent empty (an
/// entry keeps both as empty).
fn push_field(out: &mut String, value: &[u8]) {
    if value.is_empty() {
        out.push('-');
    } else {
        push_escaped(out, value);
    }
}

/// Appends `d` in seconds with three decimals (truncated to the
/// millisecond), as the access log prints it: `0.245`; without `core::fmt`.
fn push_seconds(out: &mut String, d: Duration) {
    push_decimal_text(out, d.as_secs());
    out.push('.');
    push_three_digits(out, d.subsec_millis());
}

/// Appends `n`, below 1000, as three digits: `007`, `245`.
fn push_three_digits(out: &mut String, n: u32) {
    for digit in [n / 100 % 10, n / 10 % 10, n % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestRecord;

    // Each time stamp alone, from a fresh `Stamps`.
    fn format_utc(t: SystemTime) -> String {
        let mut out = String::new();
        Stamps::default().push_utc(&mut out, t);
        out
    }

    fn format_clf_time(t: SystemTime) -> String {
        let mut out = String::new();
        Stamps::default().push_clf(&mut out, t);
        out
    }

    fn format_seconds(d: Duration) -> String {
        let mut out = String::new();
        push_seconds(&mut out, d);
        out
    }

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

    fn record() -> RequestRecord<'static> {
        RequestRecord {
            peer: Some(IpAddr::from([127, 0, 0, 1])),
            method: "POST",
            path: "/api/states_mean",
            target: "/api/states_mean?x=1",
            version: "HTTP/1.1",
            status: 200,
            body_bytes: 22,
            referer: None,
            user_agent: Some(b"curl/8.5.0"),
            duration: Duration::from_micros(245_678),
        }
    }

    fn line_of(record: &RequestRecord<'_>) -> String {
        let mut out = String::new();
        let entry = AccessEntry::new(record, at(1_795_812_879, 123));
        access_line(&mut out, &entry, &mut Stamps::default());
        out
    }

    #[test]
    fn access_lines() {
        assert_eq!(
            line_of(&record()),
            "127.0.0.1 - - [27/Nov/2026:20:54:39 +0000] \"POST /api/states_mean?x=1 HTTP/1.1\" 200 22 \"-\" \"curl/8.5.0\" 0.245\n"
        );
        // A hostile User-Agent cannot close the quotes or add a line.
        let hostile = RequestRecord {
            user_agent: Some(b"x\" 200 1 \"-\" \"y\n1.2.3.4 - -"),
            referer: Some(b"http://a/\""),
            ..record()
        };
        assert_eq!(
            line_of(&hostile),
            "127.0.0.1 - - [27/Nov/2026:20:54:39 +0000] \"POST /api/states_mean?x=1 HTTP/1.1\" 200 22 \"http://a/\\\"\" \"x\\\" 200 1 \\\"-\\\" \\\"y\\x0a1.2.3.4 - -\" 0.245\n"
        );
        // A request line that did not parse, from an unknown peer; an IPv6
        // peer that is a mapped IPv4 address prints as IPv4; a header sent
        // empty prints as one not sent.
        let unparsed = RequestRecord {
            status: 400,
            body_bytes: 55,
            ..RequestRecord::unparsed(None, 0, 0, Duration::from_micros(245_678))
        };
        assert_eq!(
            line_of(&unparsed),
            "- - - [27/Nov/2026:20:54:39 +0000] \"-\" 400 55 \"-\" \"-\" 0.245\n"
        );
        let mapped = RequestRecord {
            peer: Some("::ffff:10.0.0.1".parse().unwrap()),
            ..record()
        };
        assert!(line_of(&mapped).starts_with("10.0.0.1 - - ["));
        let v6 = RequestRecord {
            peer: Some("::1".parse().unwrap()),
            referer: Some(b""),
            ..record()
        };
        let line = line_of(&v6);
        assert!(line.starts_with("::1 - - ["), "{line}");
        assert!(line.contains(" 22 \"-\" \"curl/8.5.0\" "), "{line}");
    }

    #[test]
    fn ipv4_addresses_print_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.9",
            "255.255.255.255",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            let mut out = String::new();
            push_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn stamps_reformat_when_the_second_changes() {
        // One `Stamps` across lines, as the writer keeps it: each line
        // must carry its own time, not the first line's.
        let mut stamps = Stamps::default();
        let mut out = String::new();
        for (secs, millis, utc, clf) in [
            (
                1_795_812_879,
                123,
                "2026-11-27T20:54:39.123Z",
                "27/Nov/2026:20:54:39 +0000",
            ),
            (
                1_795_812_879,
                999,
                "2026-11-27T20:54:39.999Z",
                "27/Nov/2026:20:54:39 +0000",
            ),
            (
                1_795_812_880,
                0,
                "2026-11-27T20:54:40.000Z",
                "27/Nov/2026:20:54:40 +0000",
            ),
            (
                1_795_812_879,
                5,
                "2026-11-27T20:54:39.005Z",
                "27/Nov/2026:20:54:39 +0000",
            ),
            (
                -1,
                500,
                "1969-12-31T23:59:59.500Z",
                "31/Dec/1969:23:59:59 +0000",
            ),
            (
                0,
                0,
                "1970-01-01T00:00:00.000Z",
                "01/Jan/1970:00:00:00 +0000",
            ),
        ] {
            out.clear();
            stamps.push_utc(&mut out, at(secs, millis));
            assert_eq!(out, utc);
            out.clear();
            stamps.push_clf(&mut out, at(secs, millis));
            assert_eq!(out, clf);
        }
    }

    #[test]
    fn server_lines() {
        let mut out = String::new();
        let mut stamps = Stamps::default();
        server_line(
            &mut out,
            at(1_795_812_879, 124),
            Level::Info,
            "job_id_7 submitted",
            &mut stamps,
        );
        server_line(
            &mut out,
            at(1_795_812_880, 2),
            Level::Warn,
            "a\nb",
            &mut stamps,
        );
        assert_eq!(
            out,
            "2026-11-27T20:54:39.124Z INFO job_id_7 submitted\n2026-11-27T20:54:40.002Z WARN a\\nb\n"
        );
    }

    #[test]
    fn seconds_format() {
        assert_eq!(format_seconds(Duration::from_micros(245_678)), "0.245");
        assert_eq!(format_seconds(Duration::from_nanos(1_999_999_999)), "1.999");
        assert_eq!(format_seconds(Duration::from_millis(12_034)), "12.034");
        assert_eq!(format_seconds(Duration::ZERO), "0.000");
        assert_eq!(format_seconds(Duration::from_millis(7)), "0.007");
        assert_eq!(format_seconds(Duration::from_millis(60_050)), "60.050");
    }

    #[test]
    fn newlines_cannot_forge_lines() {
        assert_eq!(one_line("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(one_line("plain"), "plain");
    }
}
