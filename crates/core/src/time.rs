//! Durations as weaver's settings write them.

use std::time::Duration;

/// `30s`, `1m30s`, `500ms`, `72h`: a duration as the settings are written (and
/// `weaver_project::parse_duration` reads them); below a second in milliseconds, else in whole
/// seconds.
pub fn humanize(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = duration.as_secs();
    let parts = [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_they_are_written() {
        assert_eq!(humanize(Duration::ZERO), "0ms");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_secs(20)), "20s");
        assert_eq!(humanize(Duration::from_secs(90)), "1m30s");
        assert_eq!(humanize(Duration::from_secs(300)), "5m");
        assert_eq!(humanize(Duration::from_secs(72 * 3600)), "72h");
    }
}
