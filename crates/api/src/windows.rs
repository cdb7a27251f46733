//! An EnvironmentSync's windows (`spec.windows`), as Argo CD's sync windows: each a cron
//! schedule in a time zone that opens a window of a duration, `allow` or `deny`. At a moment,
//! an active deny window holds applies and approvals back (deny wins); with allow windows
//! given, so does the absence of an active one. Nothing holds an EnvironmentSync without
//! windows.

use jiff::{SignedDuration, Timestamp, Zoned, tz::TimeZone};

use crate::environment_sync::{Window, WindowKind};

/// How far ahead "until when" is looked for, and over how many windows at most (each a step
/// of the search: a day of one-minute windows is 1,440): past either, a hold says only that it
/// holds, and the controller looks again at its interval.
const HORIZON: SignedDuration = SignedDuration::from_hours(24 * 366);
const MAX_STEPS: usize = 20_000;

/// A window as checked: its schedule parsed, its zone and duration read.
struct Checked<'a> {
    window: &'a Window,
    cron: croner::Cron,
    zone: TimeZone,
    duration: SignedDuration,
}

/// What holds an apply or an approval back at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// `deny window "0 22 * * *" (Europe/Berlin, 8h)`, or `no allow window is open`.
    pub reason: String,
    /// When the windows next let it through; None when none was found ahead (see `HORIZON`).
    pub until: Option<Timestamp>,
}

/// The windows of an EnvironmentSync, checked: a schedule, a zone or a duration that cannot be
/// read is an error naming the window (`spec.windows[1].schedule: …`).
pub struct Windows<'a>(Vec<Checked<'a>>);

impl<'a> Windows<'a> {
    pub fn parse(windows: &'a [Window]) -> Result<Windows<'a>, String> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .build();
        let checked = windows.iter().enumerate().map(|(i, window)| {
            let at = |field: &str| format!("spec.windows[{i}].{field}");
            let cron = parser.parse(&window.schedule).map_err(|err| {
                format!("{}: {:?} is not a cron schedule of 5 fields: {err}", at("schedule"), window.schedule)
            })?;
            let zone = match window.time_zone.as_deref() {
                None | Some("") | Some("UTC") => TimeZone::UTC,
                Some(name) => TimeZone::get(name)
                    .map_err(|_| format!("{}: {name:?} is not a time zone of the tz database", at("timeZone")))?,
            };
            let duration = parse_duration(&window.duration).map_err(|why| format!("{}: {why}", at("duration")))?;
            Ok(Checked { window, cron, zone, duration })
        });
        checked.collect::<Result<_, String>>().map(Windows)
    }

    /// What holds back at `now`, if anything.
    pub fn hold(&self, now: Timestamp) -> Option<Hold> {
        let denying: Vec<&Checked> = self.0.iter().filter(|w| w.window.kind == WindowKind::Deny).collect();
        let allowing: Vec<&Checked> = self.0.iter().filter(|w| w.window.kind == WindowKind::Allow).collect();
        if let Some(deny) = denying.iter().find(|w| w.active_at(now)) {
            return Some(Hold { reason: format!("deny window {}", deny.describe()), until: self.opens_after(now) });
        }
        if !allowing.is_empty() && !allowing.iter().any(|w| w.active_at(now)) {
            return Some(Hold { reason: "no allow window is open".to_string(), until: self.opens_after(now) });
        }
        None
    }

    /// The first moment after `now` at which nothing holds, within [`HORIZON`] and [`MAX_STEPS`]:
    /// each step goes to the end of the deny windows active then, or the next start of an allow
    /// window.
    fn opens_after(&self, now: Timestamp) -> Option<Timestamp> {
        let mut at = now;
        for _ in 0..MAX_STEPS {
            if at.duration_since(now) > HORIZON {
                return None;
            }
            let denying: Vec<&Checked> =
                self.0.iter().filter(|w| w.window.kind == WindowKind::Deny && w.active_at(at)).collect();
            if !denying.is_empty() {
                at = denying.iter().filter_map(|w| w.active_end(at)).max()?;
                continue;
            }
            let allowing: Vec<&Checked> = self.0.iter().filter(|w| w.window.kind == WindowKind::Allow).collect();
            if allowing.is_empty() || allowing.iter().any(|w| w.active_at(at)) {
                return Some(at);
            }
            at = allowing.iter().filter_map(|w| w.next_start(at)).min()?;
        }
        None
    }
}

impl Checked<'_> {
    /// The start of the window open at `at`, if one is: the last start at or before it, less
    /// than its duration ago.
    fn active_start(&self, at: Timestamp) -> Option<Timestamp> {
        let local = at.to_zoned(self.zone.clone());
        let start: Zoned = self.cron.find_previous_occurrence(&local, true).ok()?;
        (at.duration_since(start.timestamp()) < self.duration).then(|| start.timestamp())
    }

    fn active_at(&self, at: Timestamp) -> bool {
        self.active_start(at).is_some()
    }

    fn active_end(&self, at: Timestamp) -> Option<Timestamp> {
        self.active_start(at)?.checked_add(self.duration).ok()
    }

    fn next_start(&self, at: Timestamp) -> Option<Timestamp> {
        let local = at.to_zoned(self.zone.clone());
        self.cron.find_next_occurrence(&local, false).ok().map(|z: Zoned| z.timestamp())
    }

    /// `"0 22 * * *" (Europe/Berlin, 8h)`.
    fn describe(&self) -> String {
        let zone = self.window.time_zone.as_deref().filter(|z| !z.is_empty()).unwrap_or("UTC");
        format!("{:?} ({zone}, {})", self.window.schedule, self.window.duration)
    }
}

/// A duration as Go and Flux write them (`30m`, `8h`, `1h30m`; the CRD's pattern), which
/// jiff's friendly format reads, above zero.
fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    match text.parse::<SignedDuration>() {
        Ok(duration) if duration.is_positive() => Ok(duration),
        Ok(_) => Err(format!("{text:?} is no time: a window lasts a while")),
        Err(_) => Err(format!("{text:?} is not a duration such as 30m, 8h or 1h30m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: WindowKind, schedule: &str, duration: &str, zone: Option<&str>) -> Window {
        Window { kind, schedule: schedule.into(), duration: duration.into(), time_zone: zone.map(String::from) }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_deny_window_holds_from_its_start_for_its_duration_in_its_zone() {
        // 22:00 in Berlin (UTC+1 in November) for 8 hours: 21:00 to 05:00 UTC.
        let given = [window(WindowKind::Deny, "0 22 * * *", "8h", Some("Europe/Berlin"))];
        let windows = Windows::parse(&given).unwrap();
        assert_eq!(windows.hold(at("2026-11-27T20:59:59Z")), None);
        let hold = windows.hold(at("2026-11-27T21:00:00Z")).unwrap();
        assert_eq!(hold.reason, "deny window \"0 22 * * *\" (Europe/Berlin, 8h)");
        assert_eq!(hold.until, Some(at("2026-11-28T05:00:00Z")));
        assert!(windows.hold(at("2026-11-28T04:59:59Z")).is_some());
        assert_eq!(windows.hold(at("2026-11-28T05:00:00Z")), None);
    }

    #[test]
    fn deny_wins_over_allow_and_without_an_open_allow_window_everything_waits() {
        let given = [
            // Weekdays 08:00–18:00 UTC allowed; Fridays from 12:00 denied.
            window(WindowKind::Allow, "0 8 * * 1-5", "10h", None),
            window(WindowKind::Deny, "0 12 * * 5", "6h", None),
        ];
        let windows = Windows::parse(&given).unwrap();
        // 2026-11-26 is a Thursday.
        assert_eq!(windows.hold(at("2026-11-26T09:00:00Z")), None);
        let evening = windows.hold(at("2026-11-26T19:00:00Z")).unwrap();
        assert_eq!(evening.reason, "no allow window is open");
        assert_eq!(evening.until, Some(at("2026-11-27T08:00:00Z")));
        let friday = windows.hold(at("2026-11-27T13:00:00Z")).unwrap();
        assert!(friday.reason.starts_with("deny window"), "{friday:?}");
        // The deny window ends at 18:00, when the allow window has closed too: Monday 08:00.
        assert_eq!(friday.until, Some(at("2026-11-30T08:00:00Z")));
    }

    #[test]
    fn windows_that_join_are_held_through_and_none_holds_nothing() {
        let given =
            [window(WindowKind::Deny, "0 0 * * *", "12h", None), window(WindowKind::Deny, "0 11 * * *", "3h", None)];
        let hold = Windows::parse(&given).unwrap().hold(at("2026-11-27T01:00:00Z")).unwrap();
        assert_eq!(hold.until, Some(at("2026-11-27T14:00:00Z")));
        assert_eq!(Windows::parse(&[]).unwrap().hold(at("2026-11-27T01:00:00Z")), None);
    }

    #[test]
    fn until_is_found_past_many_short_windows_and_none_is_said_of_windows_without_a_gap() {
        // Every minute of Saturdays and Sundays: some 2,880 windows from Saturday morning.
        let weekend = [window(WindowKind::Deny, "* * * * 0,6", "1m", None)];
        let hold = Windows::parse(&weekend).unwrap().hold(at("2026-11-28T09:00:00Z")).unwrap();
        assert_eq!(hold.until, Some(at("2026-11-30T00:00:00Z")));
        let always = [window(WindowKind::Deny, "* * * * *", "1m", None)];
        assert_eq!(Windows::parse(&always).unwrap().hold(at("2026-11-28T09:00:00Z")).unwrap().until, None);
    }

    #[test]
    fn what_cannot_be_read_is_named() {
        let bad = |w: Window| Windows::parse(&[w]).err().unwrap();
        let err = bad(window(WindowKind::Deny, "0 22 * *", "8h", None));
        assert!(err.starts_with("spec.windows[0].schedule: \"0 22 * *\" is not a cron schedule of 5 fields"), "{err}");
        let err = bad(window(WindowKind::Deny, "0 22 * * *", "8 lunar cycles", None));
        assert!(err.starts_with("spec.windows[0].duration: \"8 lunar cycles\" is not a duration"), "{err}");
        let err = bad(window(WindowKind::Deny, "0 22 * * *", "0m", None));
        assert!(err.contains("is no time"), "{err}");
        let err = bad(window(WindowKind::Allow, "0 22 * * *", "8h", Some("Mars/Olympus")));
        assert_eq!(err, "spec.windows[0].timeZone: \"Mars/Olympus\" is not a time zone of the tz database");
    }
}
