//! Value parsers shared by every layer's settings. Each layer declares its own settings
//! (clap `Args`, each with its environment variable, default and help text); the
//! composition root (`bootstrap::Settings`) gathers them.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The one vocabulary of on/off settings: `on`, `true`, `1` and `off`, `false`, `0`.
pub fn switch(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("{raw:?} is not on/off, true/false or 1/0")),
    }
}

pub fn milliseconds(raw: &str) -> Result<Duration, String> {
    raw.parse().map(Duration::from_millis).map_err(|_| format!("{raw:?} is not a whole number of milliseconds"))
}

pub fn seconds(raw: &str) -> Result<Duration, String> {
    raw.parse().map(Duration::from_secs).map_err(|_| format!("{raw:?} is not a whole number of seconds"))
}

pub fn rfc3339(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("{raw:?} is not an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_of_value() {
        assert_eq!(switch("ON"), Ok(true));
        assert_eq!(switch("0"), Ok(false));
        assert!(switch("maybe").is_err());
        assert_eq!(milliseconds("40"), Ok(Duration::from_millis(40)));
        assert!(milliseconds("fast").is_err());
        assert_eq!(seconds("300"), Ok(Duration::from_secs(300)));
        assert!(rfc3339("2027-01-01T00:00:00Z").is_ok());
        assert!(rfc3339("tomorrow").is_err());
    }
}
