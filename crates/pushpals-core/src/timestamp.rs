//! Timestamps as RFC 3339 text in UTC, as they are stored and hashed.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a point in time as RFC 3339 in UTC with fixed precision
/// (milliseconds), so that equal instants hash alike.
pub fn format_utc(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let truncated = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    truncated
        .format(&Rfc3339)
        .unwrap_or_else(|_| truncated.unix_timestamp().to_string())
}

/// The current time, formatted by [`format_utc`].
pub fn now() -> String {
    format_utc(OffsetDateTime::now_utc())
}

/// Parses RFC 3339 text.
pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &Rfc3339)
}

/// A duration for people: `45s`, `3m05s`, `1h02m`.
pub fn duration_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration_words(45), "45s");
        assert_eq!(duration_words(185), "3m05s");
        assert_eq!(duration_words(3720), "1h02m");
    }

    #[test]
    fn round_trips_with_millisecond_precision() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let text = format_utc(at);
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse(&text).unwrap().millisecond(), 123);
    }
}
