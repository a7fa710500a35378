//! Times: one grammar for every time a user writes (stream records, CLI
//! arguments, HTTP bodies, CSV and Parquet string columns):
//!
//! ```text
//! time      = date [("T" | " ") hh ":" mm ":" ss ["." 1*9digit] [zone]]
//! date      = yyyy "-" mm "-" dd
//! zone      = "Z" | ("+" | "-") hh ":" mm
//! ```
//!
//! A time without a zone, and a bare date (midnight), is UTC, as Feast reads
//! tz-naive times. Stream records may also carry epoch numbers
//! ([`epoch_to_us`]); the CLI takes `now` besides.

/// A time of the grammar above, in microseconds since the epoch (digits
/// below the microsecond are dropped: refuse them first where that matters,
/// as `get-historical` does with [`crate::transform::frame::check_microseconds`]).
pub fn parse_us(s: &str) -> Option<i64> {
    parse_time_fast(s.as_bytes()).or_else(|| parse_time_general(s))
}

/// The common shapes, `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH:MM]`, without
/// chrono's general parser; `None` for anything else (which then goes to
/// it, so the two must agree wherever this one answers).
fn parse_time_fast(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(at..at + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    // A leap second (:60) is left to chrono.
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut micros = 0i64;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let n = at - start;
        if n == 0 || n > 9 {
            return None;
        }
        let frac = digits(b, start, n.min(6))?;
        micros = frac * 10i64.pow(6 - n.min(6) as u32);
    }
    let offset_s = match &b[at..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let tz = [*h1, *h2, *m1, *m2];
            let (h, m) = (digits(&tz, 0, 2)?, digits(&tz, 2, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1_000_000 + micros)
}

fn parse_time_general(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .ok()
        .or_else(|| {
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
        })
}

/// An epoch number in seconds, milliseconds or microseconds (by magnitude:
/// values past the year 5138 in seconds are read as milliseconds, and past
/// 5138 in milliseconds as microseconds), in microseconds.
pub fn epoch_to_us(x: f64) -> i64 {
    let a = x.abs();
    if a >= 1e14 {
        x as i64
    } else if a >= 1e11 {
        (x * 1e3).round() as i64
    } else {
        (x * 1e6).round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-01-01T00:00:00Z in microseconds.
    const T: i64 = 1_735_689_600_000_000;

    #[test]
    fn the_grammar_in_examples() {
        for (s, want) in [
            ("2025-01-01T00:00:00Z", Some(T)),
            ("2025-01-01T01:00:00+01:00", Some(T)),
            ("2025-01-01 00:00:00.25", Some(T + 250_000)),
            ("2025-01-01T00:00:00.000001", Some(T + 1)),
            ("2025-01-01", Some(T)),
            ("2025-01-01T00:00", None),
            ("noon", None),
            ("", None),
        ] {
            assert_eq!(parse_us(s), want, "{s:?}");
        }
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let mut cases: Vec<String> = vec![
            "2025-01-01T00:00:00Z".into(),
            "2024-02-29T23:59:59.999999Z".into(),
            "2023-02-29T00:00:00Z".into(),
            "1969-12-31T23:59:59.5Z".into(),
            "1900-03-01 12:00:00".into(),
            "2000-02-29T12:34:56.123456789+05:30".into(),
            "2025-06-30T00:00:00-07:00".into(),
            "2025-13-01T00:00:00Z".into(),
            "2025-01-01T24:00:00Z".into(),
            "2025-01-01T00:00:00.Z".into(),
            "2025-01-01T00:00:00z".into(),
            "2025-01-01T00:00:60Z".into(),
            "2025-01-01T00:00:00+0100".into(),
        ];
        // Every month's last days, at many offsets, over four centuries.
        let mut x: u64 = 7;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (y, m, d) = (1800 + x % 400, 1 + (x >> 9) % 12, 25 + (x >> 13) % 7);
            let frac = match (x >> 17) % 4 {
                0 => String::new(),
                1 => format!(".{}", (x >> 20) % 1000),
                2 => format!(".{:06}", (x >> 20) % 1_000_000),
                _ => format!(".{:09}", (x >> 20) % 1_000_000_000),
            };
            let zone = match (x >> 40) % 4 {
                0 => "Z".to_owned(),
                1 => String::new(),
                2 => format!("+{:02}:{:02}", (x >> 42) % 24, (x >> 47) % 60),
                _ => format!("-{:02}:{:02}", (x >> 42) % 24, (x >> 47) % 60),
            };
            let sep = if (x >> 53).is_multiple_of(2) {
                'T'
            } else {
                ' '
            };
            cases.push(format!(
                "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}{frac}{zone}",
                (x >> 24) % 24,
                (x >> 29) % 60,
                (x >> 35) % 60
            ));
        }
        let mut answered = 0;
        for s in &cases {
            let fast = parse_time_fast(s.as_bytes());
            if let Some(t) = fast {
                answered += 1;
                assert_eq!(Some(t), parse_time_general(s), "{s}");
            }
            assert_eq!(parse_us(s), parse_time_general(s), "{s}");
        }
        assert!(
            answered > 2000,
            "the fast path answered only {answered} cases"
        );
        assert_eq!(parse_us("2025-01-01T00:00:00Z"), Some(T));
        assert_eq!(parse_time_fast(b"2025-01-01T00:00:00.000001Z"), Some(T + 1));
    }

    #[test]
    fn epoch_numbers_of_each_unit() {
        assert_eq!(epoch_to_us(-1.0), -1_000_000);
        assert_eq!(epoch_to_us(1_735_689_600.25), T + 250_000);
        assert_eq!(epoch_to_us(1_735_689_600_250.0), T + 250_000);
        assert_eq!(epoch_to_us(1_735_689_600_250_001.0), T + 250_001);
    }
}
