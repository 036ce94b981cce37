//! RFC 3339 timestamps for serde without a heap allocation: a drop-in for
//! `time::serde::rfc3339` in `#[serde(with = "ciam_core::rfc3339")]`.
//!
//! `time::serde::rfc3339::serialize` formats into a new `String` on every call. The answers
//! ciam serves on every request (`GET /me`, session lists, audit entries) carry several
//! timestamps each, so this module writes the same text from a stack buffer: byte for byte
//! what `time` writes (fractional seconds without trailing zeros, `Z` for UTC, `±hh:mm`
//! otherwise; checked against `time` in the tests). Where `time` refuses a value (a year
//! outside 0-9999, an offset of 24 hours or more or with seconds), this module hands the
//! value to `time`, so the error is `time`'s. Deserializing is `time`'s.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;

/// The longest text: `9999-12-31T23:59:59.999999999+23:59`.
const MAX: usize = 35;

/// Writes `datetime` as an RFC 3339 string (as `time::serde::rfc3339::serialize` does).
///
/// # Errors
///
/// The serializer's, and `time`'s for a value RFC 3339 cannot express (see the module docs).
pub fn serialize<S>(datetime: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
{
    let mut buf = [0u8; MAX];
    match write(datetime, &mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => time::serde::rfc3339::serialize(datetime, serializer),
    }
}

/// Reads an RFC 3339 string (`time::serde::rfc3339::deserialize`).
///
/// # Errors
///
/// When the input is not an RFC 3339 timestamp.
pub fn deserialize<'de, D>(deserializer: D) -> Result<OffsetDateTime, D::Error>
where
    D: Deserializer<'de>,
{
    time::serde::rfc3339::deserialize(deserializer)
}

/// Two decimal digits of `n` (below 100).
fn two(out: &mut [u8], n: u8) {
    out[0] = b'0' + n / 10;
    out[1] = b'0' + n % 10;
}

/// Writes `t` into `buf`; the length, or `None` where `time` would refuse it.
fn write(t: &OffsetDateTime, buf: &mut [u8; MAX]) -> Option<usize> {
    let year = u16::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let offset = t.offset();
    let (offset_hours, offset_minutes, offset_seconds) = offset.as_hms();
    if offset_hours.unsigned_abs() > 23 || offset_seconds != 0 {
        return None;
    }
    two(&mut buf[0..2], (year / 100) as u8);
    two(&mut buf[2..4], (year % 100) as u8);
    buf[4] = b'-';
    two(&mut buf[5..7], u8::from(t.month()));
    buf[7] = b'-';
    two(&mut buf[8..10], t.day());
    buf[10] = b'T';
    two(&mut buf[11..13], t.hour());
    buf[13] = b':';
    two(&mut buf[14..16], t.minute());
    buf[16] = b':';
    two(&mut buf[17..19], t.second());
    let mut n = 19;
    let mut nanos = t.nanosecond();
    if nanos != 0 {
        buf[n] = b'.';
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        for i in (0..digits).rev() {
            buf[n + 1 + i] = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        n += 1 + digits;
    }
    if offset.is_utc() {
        buf[n] = b'Z';
        return Some(n + 1);
    }
    buf[n] = if offset.is_negative() { b'-' } else { b'+' };
    two(&mut buf[n + 1..n + 3], offset_hours.unsigned_abs());
    buf[n + 3] = b':';
    two(&mut buf[n + 4..n + 6], offset_minutes.unsigned_abs());
    Some(n + 6)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::format_description::well_known::Rfc3339;
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    #[derive(Serialize, Deserialize)]
    struct Ours(#[serde(with = "super")] OffsetDateTime);

    #[derive(Serialize)]
    struct Theirs(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

    fn same_as_time(t: OffsetDateTime) {
        let ours = serde_json::to_string(&Ours(t));
        let theirs = serde_json::to_string(&Theirs(t));
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{t:?}");
                let back: Ours = serde_json::from_str(a).unwrap();
                assert_eq!(back.0, t, "{a}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{t:?}"),
            _ => panic!("{t:?}: ours {ours:?}, time's {theirs:?}"),
        }
    }

    #[test]
    fn writes_what_time_writes() {
        // Seeded, so a failure names a case that comes back.
        let mut g = fastrand::Rng::with_seed(20_261_124);
        for _ in 0..50_000 {
            let date =
                Date::from_julian_day(g.i32(Date::MIN.to_julian_day()..=Date::MAX.to_julian_day()))
                    .unwrap();
            // Every nanosecond shape: zero, trailing zeros of every length, nine digits.
            let nanos = match g.u8(..4) {
                0 => 0,
                1 => {
                    let zeros = 10u32.pow(g.u32(..9));
                    g.u32(..1_000_000_000) / zeros * zeros
                }
                _ => g.u32(..1_000_000_000),
            };
            let time = Time::from_hms_nano(g.u8(..24), g.u8(..60), g.u8(..60), nanos).unwrap();
            let offset = match g.u8(..4) {
                0 => UtcOffset::UTC,
                // Whole minutes within ±25:59: time refuses 24 hours and more.
                1 | 2 => UtcOffset::from_whole_seconds(g.i32(-1559..=1559) * 60).unwrap(),
                // Any second within ±25:59:59: time refuses offsets with seconds.
                _ => UtcOffset::from_whole_seconds(g.i32(-93_599..=93_599)).unwrap(),
            };
            same_as_time(PrimitiveDateTime::new(date, time).assume_offset(offset));
        }
    }

    /// (date, time, nanoseconds, offset hours and minutes, text).
    type Case = ((i32, Month, u8), (u8, u8, u8), u32, (i8, i8), &'static str);

    #[test]
    fn known_answers() {
        // The first three are RFC 3339 §5.8's examples.
        let cases: [Case; 6] = [
            (
                (1985, Month::April, 12),
                (23, 20, 50),
                520_000_000,
                (0, 0),
                "1985-04-12T23:20:50.52Z",
            ),
            (
                (1996, Month::December, 19),
                (16, 39, 57),
                0,
                (-8, 0),
                "1996-12-19T16:39:57-08:00",
            ),
            (
                (1937, Month::January, 1),
                (12, 0, 27),
                870_000_000,
                (0, 20),
                "1937-01-01T12:00:27.87+00:20",
            ),
            // A negative offset under an hour keeps its sign.
            (
                (2026, Month::November, 24),
                (0, 0, 0),
                1,
                (0, -30),
                "2026-11-24T00:00:00.000000001-00:30",
            ),
            // The longest text fits.
            (
                (9999, Month::December, 31),
                (23, 59, 59),
                999_999_999,
                (-23, -59),
                "9999-12-31T23:59:59.999999999-23:59",
            ),
            (
                (1970, Month::January, 1),
                (0, 0, 0),
                0,
                (0, 0),
                "1970-01-01T00:00:00Z",
            ),
        ];
        for ((y, mo, d), (h, mi, s), ns, (oh, om), text) in cases {
            let t = PrimitiveDateTime::new(
                Date::from_calendar_date(y, mo, d).unwrap(),
                Time::from_hms_nano(h, mi, s, ns).unwrap(),
            )
            .assume_offset(UtcOffset::from_hms(oh, om, 0).unwrap());
            assert_eq!(
                serde_json::to_string(&Ours(t)).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(t.format(&Rfc3339).unwrap(), text);
        }
        // What RFC 3339 cannot express is time's error.
        let t = Date::from_calendar_date(-1, Month::January, 1)
            .unwrap()
            .midnight()
            .assume_utc();
        assert!(serde_json::to_string(&Ours(t)).is_err());
    }
}
