//! Dates (sprig's date.go) on Go's `time` package semantics: `time.Time` values with Go's methods
//! and printing, layouts in Go's reference-time notation (`2006-01-02 15:04:05`), Go's parser and
//! its errors, `time.Duration` parsing and printing. Zones come from jiff ("Local" is the system zone).

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use gotemplate::{FuncError, Function, Object, Templates, Type, Value};
use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};

use crate::go;
use crate::str_arg;

pub(crate) fn register(t: &mut Templates) {
    t.add_function("now", Function::new(&[], |_, _| Ok(GoTime::now().into_value())));
    t.add_function(
        "date",
        Function::new(&[Type::String, Type::Any], |_, a| Ok(Value::from(date_in_zone(str_arg(a, 0), &a[1], "Local")?))),
    );
    for name in ["dateInZone", "date_in_zone"] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::Any, Type::String], |_, a| {
                Ok(Value::from(date_in_zone(str_arg(a, 0), &a[1], str_arg(a, 2))?))
            }),
        );
    }
    t.add_function(
        "htmlDate",
        Function::new(&[Type::Any], |_, a| Ok(Value::from(date_in_zone("2006-01-02", &a[0], "Local")?))),
    );
    t.add_function(
        "htmlDateInZone",
        Function::new(&[Type::Any, Type::String], |_, a| {
            Ok(Value::from(date_in_zone("2006-01-02", &a[0], str_arg(a, 1))?))
        }),
    );
    for name in ["dateModify", "date_modify"] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::Any], |_, a| {
                let t = time_arg(&a[1])?;
                Ok(match parse_duration(str_arg(a, 0)) {
                    Ok(d) => t.add(d)?.into_value(),
                    Err(_) => a[1].clone(),
                })
            }),
        );
    }
    for name in ["mustDateModify", "must_date_modify"] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::Any], |_, a| {
                let t = time_arg(&a[1])?;
                let d = parse_duration(str_arg(a, 0)).map_err(FuncError::new)?;
                Ok(t.add(d)?.into_value())
            }),
        );
    }
    t.add_function(
        "toDate",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(parse(str_arg(a, 0), str_arg(a, 1)).unwrap_or_else(|_| GoTime::zero()).into_value())
        }),
    );
    t.add_function(
        "mustToDate",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(parse(str_arg(a, 0), str_arg(a, 1)).map_err(FuncError::new)?.into_value())
        }),
    );
    t.add_function(
        "unixEpoch",
        Function::new(&[Type::Any], |_, a| Ok(Value::from(time_arg(&a[0])?.zoned.timestamp().as_second().to_string()))),
    );
    t.add_function(
        "ago",
        Function::new(&[Type::Any], |_, a| {
            let then = match &a[0] {
                Value::Int(s) | Value::Int64(s) => unix(*s)?,
                other => as_time(other).unwrap_or_else(GoTime::now),
            };
            let since = GoTime::now().sub(&then);
            Ok(Value::from(format_duration(round_duration(since, SECOND))))
        }),
    );
    t.add_function(
        "duration",
        Function::new(&[Type::Any], |_, a| {
            let seconds = match &a[0] {
                Value::String(s) => go::parse_int(s, 10).unwrap_or(0),
                Value::Int64(i) => *i,
                _ => 0,
            };
            Ok(Value::from(format_duration(seconds.wrapping_mul(SECOND))))
        }),
    );
    t.add_function(
        "durationRound",
        Function::new(&[Type::Any], |_, a| {
            let d = match &a[0] {
                Value::String(s) => parse_duration(s).unwrap_or(0),
                Value::Int64(i) => *i,
                other => as_time(other).map_or(0, |t| GoTime::now().sub(&t)),
            };
            Ok(Value::from(duration_round(d)))
        }),
    );
}

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Where a time is: Go's `*time.Location` as far as printing needs it.
#[derive(Clone, Debug, PartialEq)]
enum Location {
    Utc,
    Local,
    Named(String),
    /// time.FixedZone(name, offset), as time.Parse makes for zones it does not know.
    Fixed(String),
}

/// A Go `time.Time`.
#[derive(Clone, Debug)]
pub(crate) struct GoTime {
    zoned: Zoned,
    location: Location,
    /// The monotonic clock reading `time.Now` attaches, printed as `m=+0.000000001`.
    monotonic: Option<i64>,
}

static LOCAL: LazyLock<TimeZone> = LazyLock::new(TimeZone::system);
static PROCESS_START: LazyLock<Instant> = LazyLock::new(Instant::now);

fn unix(seconds: i64) -> Result<GoTime, FuncError> {
    let ts = Timestamp::from_second(seconds).map_err(|e| FuncError::new(format!("time out of range: {e}")))?;
    Ok(GoTime { zoned: ts.to_zoned(LOCAL.clone()), location: Location::Local, monotonic: None })
}

fn out_of_range(e: jiff::Error) -> FuncError {
    FuncError::new(format!("time out of range: {e}"))
}

impl GoTime {
    fn now() -> GoTime {
        let monotonic = PROCESS_START.elapsed().as_nanos().max(1) as i64;
        GoTime {
            zoned: Zoned::now().with_time_zone(LOCAL.clone()),
            location: Location::Local,
            monotonic: Some(monotonic),
        }
    }

    /// time.Time{}: January 1, year 1, 00:00:00 UTC.
    fn zero() -> GoTime {
        let zoned = DateTime::constant(1, 1, 1, 0, 0, 0, 0).to_zoned(TimeZone::UTC).unwrap_or_else(|_| Zoned::now());
        GoTime { zoned, location: Location::Utc, monotonic: None }
    }

    fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }

    fn in_location(&self, location: Location, tz: TimeZone) -> GoTime {
        GoTime { zoned: self.zoned.with_time_zone(tz), location, monotonic: self.monotonic }
    }

    fn add(&self, nanos: i64) -> Result<GoTime, FuncError> {
        let zoned = self.zoned.checked_add(jiff::SignedDuration::from_nanos(nanos)).map_err(out_of_range)?;
        Ok(GoTime {
            zoned,
            location: self.location.clone(),
            monotonic: self.monotonic.map(|m| m.saturating_add(nanos)),
        })
    }

    /// t.Sub(u) in nanoseconds, saturating as Go's does.
    fn sub(&self, other: &GoTime) -> i64 {
        if let (Some(a), Some(b)) = (self.monotonic, other.monotonic) {
            return a.saturating_sub(b);
        }
        let d = self.zoned.timestamp().as_nanosecond() - other.zoned.timestamp().as_nanosecond();
        d.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    fn offset(&self) -> i32 {
        self.zoned.offset().seconds()
    }

    /// The zone's abbreviation as Go names it ("" for unnamed fixed zones).
    fn zone_name(&self) -> String {
        match &self.location {
            Location::Utc => "UTC".to_string(),
            Location::Fixed(name) => name.clone(),
            Location::Local | Location::Named(_) => {
                let info = self.zoned.time_zone().to_offset_info(self.zoned.timestamp());
                info.abbreviation().to_string()
            }
        }
    }

    fn format(&self, layout: &str) -> String {
        format(self, layout)
    }

    /// time.Time.String.
    fn to_go_string(&self) -> String {
        let mut s = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if let Some(m) = self.monotonic {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            s.push_str(&format!(" m={sign}{}.{:09}", m / 1_000_000_000, m % 1_000_000_000));
        }
        s
    }

    fn location_name(&self) -> String {
        match &self.location {
            Location::Utc => "UTC".to_string(),
            Location::Local => "Local".to_string(),
            Location::Named(name) | Location::Fixed(name) => name.clone(),
        }
    }
}

/// A `time.Time` as Go's `time.Parse(layout, value)` returns it; with `zone`, the same wall clock
/// in a zone of that name at offset 0 (BurntSushi/toml's local date-times are in "datetime-local",
/// "date-local" and "time-local"). `None` when `value` does not match `layout`.
pub fn parse_time(layout: &str, value: &str, zone: Option<&str>) -> Option<Value> {
    let parsed = parse(layout, value).ok()?;
    let t = match zone {
        Some(name) => GoTime {
            zoned: parsed.zoned.datetime().to_zoned(TimeZone::fixed(Offset::UTC)).ok()?,
            location: Location::Fixed(name.to_string()),
            monotonic: None,
        },
        None => parsed,
    };
    Some(t.into_value())
}

/// A `time.Time` argument: the value itself, or a typed error for anything else.
fn time_arg(value: &Value) -> Result<GoTime, FuncError> {
    as_time(value)
        .ok_or_else(|| FuncError::new(format!("wrong type for value; expected time.Time; got {}", value.type_name())))
}

fn as_time(value: &Value) -> Option<GoTime> {
    match value {
        Value::Object(o) => {
            let any: &dyn std::any::Any = o.as_ref();
            any.downcast_ref::<GoTime>().cloned()
        }
        _ => None,
    }
}

/// sprig's dateInZone: a time, or seconds since the epoch for ints; anything else means now.
fn date_in_zone(layout: &str, date: &Value, zone: &str) -> Result<String, FuncError> {
    let t = match date {
        Value::Int(s) | Value::Int64(s) => unix(*s)?,
        other => as_time(other).unwrap_or_else(GoTime::now),
    };
    let (location, tz) = load_location(zone).unwrap_or((Location::Utc, TimeZone::UTC));
    Ok(t.in_location(location, tz).format(layout))
}

/// time.LoadLocation.
fn load_location(name: &str) -> Option<(Location, TimeZone)> {
    match name {
        "" | "UTC" => Some((Location::Utc, TimeZone::UTC)),
        "Local" => Some((Location::Local, LOCAL.clone())),
        _ => {
            if name.contains("..") || name.starts_with('/') || name.contains('\\') {
                return None;
            }
            TimeZone::get(name).ok().map(|tz| (Location::Named(name.to_string()), tz))
        }
    }
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// The elements of a Go layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// Fractional seconds: the separator, the digit count, and whether trailing zeros are trimmed.
    Frac(u8, usize, bool),
}

/// Go's nextStdChunk: the text before the next layout element, the element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|rest| rest.starts_with(s));
    let starts_lower = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found = |std: Std, len: usize| (&layout[..i], Some(std), &layout[i + len..]);
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return found(Std::LongMonth, 7);
                }
                if !starts_lower(i + 3) {
                    return found(Std::Month, 3);
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        return found(Std::LongWeekDay, 6);
                    }
                    if !starts_lower(i + 3) {
                        return found(Std::WeekDay, 3);
                    }
                }
                if at(i, "MST") {
                    return found(Std::Tz, 3);
                }
            }
            b'0' => {
                if let Some(&c) = b.get(i + 1)
                    && (b'1'..=b'6').contains(&c)
                {
                    let std =
                        [Std::ZeroMonth, Std::ZeroDay, Std::ZeroHour12, Std::ZeroMinute, Std::ZeroSecond, Std::Year];
                    return found(std[(c - b'1') as usize], 2);
                }
                if at(i, "002") {
                    return found(Std::ZeroYearDay, 3);
                }
            }
            b'1' => {
                if at(i, "15") {
                    return found(Std::Hour, 2);
                }
                return found(Std::NumMonth, 1);
            }
            b'2' => {
                if at(i, "2006") {
                    return found(Std::LongYear, 4);
                }
                return found(Std::Day, 1);
            }
            b'_' => {
                if at(i, "_2") {
                    // "_2006" is a literal underscore then the year.
                    if at(i + 1, "2006") {
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    return found(Std::UnderDay, 2);
                }
                if at(i, "__2") {
                    return found(Std::UnderYearDay, 3);
                }
            }
            b'3' => return found(Std::Hour12, 1),
            b'4' => return found(Std::Minute, 1),
            b'5' => return found(Std::Second, 1),
            b'P' if at(i, "PM") => return found(Std::PM, 2),
            b'p' if at(i, "pm") => return found(Std::Pm, 2),
            b'-' => {
                for (s, std) in [
                    ("-070000", Std::NumSecondsTz),
                    ("-07:00:00", Std::NumColonSecondsTz),
                    ("-0700", Std::NumTz),
                    ("-07:00", Std::NumColonTz),
                    ("-07", Std::NumShortTz),
                ] {
                    if at(i, s) {
                        return found(std, s.len());
                    }
                }
            }
            b'Z' => {
                for (s, std) in [
                    ("Z070000", Std::Iso8601SecondsTz),
                    ("Z07:00:00", Std::Iso8601ColonSecondsTz),
                    ("Z0700", Std::Iso8601Tz),
                    ("Z07:00", Std::Iso8601ColonTz),
                    ("Z07", Std::Iso8601ShortTz),
                ] {
                    if at(i, s) {
                        return found(std, s.len());
                    }
                }
            }
            sep @ (b'.' | b',') => {
                if let Some(&ch) = b.get(i + 1)
                    && (ch == b'0' || ch == b'9')
                {
                    let mut j = i + 1;
                    while j < b.len() && b[j] == ch {
                        j += 1;
                    }
                    if !b.get(j).is_some_and(u8::is_ascii_digit) {
                        return (&layout[..i], Some(Std::Frac(sep, j - (i + 1), ch == b'9')), &layout[j..]);
                    }
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

fn pad(out: &mut String, n: i64, width: usize) {
    if n < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", n.unsigned_abs()));
}

/// time.Time.Format.
fn format(t: &GoTime, layout: &str) -> String {
    let dt = t.zoned.datetime();
    let (year, month, day) = (i64::from(dt.year()), dt.month() as usize, i64::from(dt.day()));
    let (hour, minute, second) = (i64::from(dt.hour()), i64::from(dt.minute()), i64::from(dt.second()));
    let nanos = i64::from(dt.subsec_nanosecond());
    let yday = i64::from(dt.day_of_year());
    let weekday = dt.weekday().to_sunday_zero_offset() as usize;
    let offset = i64::from(t.offset());
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (prefix, std, suffix) = next_std_chunk(rest);
        out.push_str(prefix);
        let Some(std) = std else { break };
        rest = suffix;
        match std {
            Std::Year => pad(&mut out, year % 100, 2),
            Std::LongYear => pad(&mut out, year, 4),
            Std::Month => out.push_str(&LONG_MONTHS[month - 1][..3]),
            Std::LongMonth => out.push_str(LONG_MONTHS[month - 1]),
            Std::NumMonth => pad(&mut out, month as i64, 0),
            Std::ZeroMonth => pad(&mut out, month as i64, 2),
            Std::WeekDay => out.push_str(&LONG_DAYS[weekday][..3]),
            Std::LongWeekDay => out.push_str(LONG_DAYS[weekday]),
            Std::Day => pad(&mut out, day, 0),
            Std::UnderDay => {
                if day < 10 {
                    out.push(' ');
                }
                pad(&mut out, day, 0);
            }
            Std::ZeroDay => pad(&mut out, day, 2),
            Std::UnderYearDay => {
                if yday < 100 {
                    out.push(' ');
                    if yday < 10 {
                        out.push(' ');
                    }
                }
                pad(&mut out, yday, 0);
            }
            Std::ZeroYearDay => pad(&mut out, yday, 3),
            Std::Hour => pad(&mut out, hour, 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = if hour % 12 == 0 { 12 } else { hour % 12 };
                pad(&mut out, h, if std == Std::Hour12 { 0 } else { 2 });
            }
            Std::Minute => pad(&mut out, minute, 0),
            Std::ZeroMinute => pad(&mut out, minute, 2),
            Std::Second => pad(&mut out, second, 0),
            Std::ZeroSecond => pad(&mut out, second, 2),
            Std::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                let name = t.zone_name();
                if name.is_empty() {
                    let zone = offset / 60;
                    out.push(if zone < 0 { '-' } else { '+' });
                    pad(&mut out, zone.abs() / 60, 2);
                    pad(&mut out, zone.abs() % 60, 2);
                } else {
                    out.push_str(&name);
                }
            }
            Std::Frac(sep, digits, trim) => {
                if trim && (digits == 0 || nanos == 0) {
                    continue;
                }
                let mut frac = format!("{nanos:09}");
                frac.truncate(digits.min(9));
                if trim {
                    frac.truncate(frac.trim_end_matches('0').len());
                    if frac.is_empty() {
                        continue;
                    }
                }
                out.push(char::from(sep));
                out.push_str(&frac);
            }
            zone_std => {
                let iso = matches!(
                    zone_std,
                    Std::Iso8601Tz
                        | Std::Iso8601ColonTz
                        | Std::Iso8601SecondsTz
                        | Std::Iso8601ShortTz
                        | Std::Iso8601ColonSecondsTz
                );
                if offset == 0 && iso {
                    out.push('Z');
                    continue;
                }
                let zone = offset / 60;
                out.push(if zone < 0 { '-' } else { '+' });
                let (zone, abs) = (zone.abs(), offset.abs());
                pad(&mut out, zone / 60, 2);
                let colon = matches!(
                    zone_std,
                    Std::Iso8601ColonTz | Std::NumColonTz | Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz
                );
                if colon {
                    out.push(':');
                }
                if !matches!(zone_std, Std::NumShortTz | Std::Iso8601ShortTz) {
                    pad(&mut out, zone % 60, 2);
                }
                if matches!(
                    zone_std,
                    Std::Iso8601SecondsTz | Std::NumSecondsTz | Std::NumColonSecondsTz | Std::Iso8601ColonSecondsTz
                ) {
                    if matches!(zone_std, Std::NumColonSecondsTz | Std::Iso8601ColonSecondsTz) {
                        out.push(':');
                    }
                    pad(&mut out, abs % 60, 2);
                }
            }
        }
    }
    out
}

fn quote(s: &str) -> String {
    gotemplate::strconv::quote(s, false)
}

/// time.ParseInLocation(layout, value, time.Local), with Go's error messages.
fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let (full_layout, full_value) = (layout, value);
    let cannot = |value_elem: &str, layout_elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quote(full_value),
            quote(full_layout),
            quote(value_elem),
            quote(layout_elem)
        )
    };
    let message = |m: &str| format!("parsing time {}{m}", quote(full_value));
    let (mut layout, mut value) = (layout, value);
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let (mut am, mut pm) = (false, false);
    let mut utc = false;
    let mut zone_offset: Option<i64> = None;
    let mut zone_name = String::new();
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        let std_str = &layout[prefix.len()..layout.len() - suffix.len()];
        value = skip(value, prefix).ok_or_else(|| cannot(value, prefix))?;
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(message(&format!(": extra text: {}", quote(value))));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let mut range_err = "";
        let ok: Option<()> = (|| {
            match std {
                Std::Year => {
                    let p = value.get(..2)?;
                    year = atoi(p)?;
                    value = &value[2..];
                    year += if year >= 69 { 1900 } else { 2000 };
                }
                Std::LongYear => {
                    if !value.as_bytes().first()?.is_ascii_digit() {
                        return None;
                    }
                    year = atoi(value.get(..4)?)?;
                    value = &value[4..];
                }
                Std::Month | Std::LongMonth => {
                    let names: Vec<&str> = if std == Std::Month {
                        LONG_MONTHS.iter().map(|m| &m[..3]).collect()
                    } else {
                        LONG_MONTHS.to_vec()
                    };
                    let (i, rest) = lookup(&names, value)?;
                    month = i as i64 + 1;
                    value = rest;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (n, rest) = getnum(value, std == Std::ZeroMonth)?;
                    (month, value) = (n, rest);
                    if !(1..=12).contains(&month) {
                        range_err = "month";
                    }
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let names: Vec<&str> = if std == Std::WeekDay {
                        LONG_DAYS.iter().map(|d| &d[..3]).collect()
                    } else {
                        LONG_DAYS.to_vec()
                    };
                    value = lookup(&names, value)?.1;
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && value.starts_with(' ') {
                        value = &value[1..];
                    }
                    (day, value) = getnum(value, std == Std::ZeroDay)?;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && value.starts_with(' ') {
                            value = &value[1..];
                        }
                    }
                    (yday, value) = getnum3(value, std == Std::ZeroYearDay)?;
                }
                Std::Hour => {
                    (hour, value) = getnum(value, false)?;
                    if !(0..24).contains(&hour) {
                        range_err = "hour";
                    }
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    (hour, value) = getnum(value, std == Std::ZeroHour12)?;
                    if !(0..=12).contains(&hour) {
                        range_err = "hour";
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    (min, value) = getnum(value, std == Std::ZeroMinute)?;
                    if !(0..60).contains(&min) {
                        range_err = "minute";
                    }
                }
                Std::Second | Std::ZeroSecond => {
                    (sec, value) = getnum(value, std == Std::ZeroSecond)?;
                    if !(0..60).contains(&sec) {
                        range_err = "second";
                        return Some(());
                    }
                    let b = value.as_bytes();
                    // A fraction in the value without one in the layout is still read.
                    if b.len() >= 2 && matches!(b[0], b'.' | b',') && b[1].is_ascii_digit() {
                        if matches!(next_std_chunk(layout).1, Some(Std::Frac(..))) {
                            return Some(());
                        }
                        let n = 2 + b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                        nsec = parse_nanoseconds(value, n)?;
                        value = &value[n..];
                    }
                }
                Std::PM | Std::Pm => {
                    let p = value.get(..2)?;
                    let (upper_am, upper_pm) = if std == Std::PM { ("AM", "PM") } else { ("am", "pm") };
                    if p == upper_pm {
                        pm = true;
                    } else if p == upper_am {
                        am = true;
                    } else {
                        return None;
                    }
                    value = &value[2..];
                }
                Std::Tz => {
                    if value.starts_with("UTC") {
                        utc = true;
                        value = &value[3..];
                        return Some(());
                    }
                    let n = parse_time_zone(value)?;
                    zone_name = value[..n].to_string();
                    value = &value[n..];
                }
                Std::Frac(_, digits, false) => {
                    let n = 1 + digits;
                    if value.len() < n {
                        return None;
                    }
                    nsec = parse_nanoseconds(value, n)?;
                    value = &value[n..];
                }
                Std::Frac(_, _, true) => {
                    let b = value.as_bytes();
                    if b.len() < 2 || !matches!(b[0], b'.' | b',') || !b[1].is_ascii_digit() {
                        return Some(());
                    }
                    let i = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nsec = parse_nanoseconds(value, 1 + i)?;
                    value = &value[1 + i..];
                }
                zone_std => {
                    let iso = matches!(
                        zone_std,
                        Std::Iso8601Tz
                            | Std::Iso8601ShortTz
                            | Std::Iso8601ColonTz
                            | Std::Iso8601SecondsTz
                            | Std::Iso8601ColonSecondsTz
                    );
                    if iso && value.starts_with('Z') {
                        value = &value[1..];
                        utc = true;
                        return Some(());
                    }
                    let b = value.as_bytes();
                    let (sign, h, m, s, used) = match zone_std {
                        Std::Iso8601ColonTz | Std::NumColonTz => {
                            if b.len() < 6 || b[3] != b':' {
                                return None;
                            }
                            (b[0], value.get(1..3)?, value.get(4..6)?, "00", 6)
                        }
                        Std::NumShortTz | Std::Iso8601ShortTz => {
                            if b.len() < 3 {
                                return None;
                            }
                            (b[0], value.get(1..3)?, "00", "00", 3)
                        }
                        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                            if b.len() < 9 || b[3] != b':' || b[6] != b':' {
                                return None;
                            }
                            (b[0], value.get(1..3)?, value.get(4..6)?, value.get(7..9)?, 9)
                        }
                        Std::Iso8601SecondsTz | Std::NumSecondsTz => {
                            if b.len() < 7 {
                                return None;
                            }
                            (b[0], value.get(1..3)?, value.get(3..5)?, value.get(5..7)?, 7)
                        }
                        _ => {
                            if b.len() < 5 {
                                return None;
                            }
                            (b[0], value.get(1..3)?, value.get(3..5)?, "00", 5)
                        }
                    };
                    value = value.get(used..)?;
                    let hr = getnum(h, true)?.0;
                    let mm = getnum(m, true)?.0;
                    let ss = getnum(s, true)?.0;
                    if hr > 24 {
                        range_err = "time zone offset hour";
                    }
                    if mm > 60 {
                        range_err = "time zone offset minute";
                    }
                    if ss > 60 {
                        range_err = "time zone offset second";
                    }
                    let offset = (hr * 60 + mm) * 60 + ss;
                    zone_offset = Some(match sign {
                        b'+' => offset,
                        b'-' => -offset,
                        _ => return None,
                    });
                }
            }
            Some(())
        })();
        if !range_err.is_empty() {
            return Err(message(&format!(": {range_err} out of range")));
        }
        if ok.is_none() {
            return Err(cannot(hold, std_str));
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = |m: i64, y: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if yday >= 0 {
        let (mut m, mut d) = (0, 0);
        if leap(year) {
            if yday == 31 + 29 {
                (m, d) = (2, 29);
            } else if yday > 31 + 29 {
                yday -= 1;
            }
        }
        if !(1..=365).contains(&yday) {
            return Err(message(": day-of-year out of range"));
        }
        if m == 0 {
            let days_before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
            m = (yday - 1) / 31 + 1;
            if days_before[m as usize] < yday {
                m += 1;
            }
            d = yday - days_before[(m - 1) as usize];
        }
        if month >= 0 && month != m {
            return Err(message(": day-of-year does not match month"));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(message(": day-of-year does not match day"));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(message(": day out of range"));
    }
    let civil = Date::new(year as i16, month as i8, day as i8)
        .map(|d| d.at(hour as i8, min as i8, sec as i8, nsec as i32))
        .map_err(|e| message(&format!(": {e}")))?;
    let in_zone = |tz: TimeZone, location: Location| -> Result<GoTime, String> {
        let zoned = civil.to_zoned(tz).map_err(|e| message(&format!(": {e}")))?;
        Ok(GoTime { zoned, location, monotonic: None })
    };
    if utc {
        return in_zone(TimeZone::UTC, Location::Utc);
    }
    if let Some(offset) = zone_offset {
        let fixed = Offset::from_seconds(offset as i32).map_err(|e| message(&format!(": {e}")))?;
        let t = in_zone(TimeZone::fixed(fixed), Location::Fixed(zone_name.clone()))?;
        let local = t.in_location(Location::Local, LOCAL.clone());
        if i64::from(local.offset()) == offset && (zone_name.is_empty() || local.zone_name() == zone_name) {
            return Ok(local);
        }
        return Ok(t);
    }
    if !zone_name.is_empty() {
        let as_local = in_zone(LOCAL.clone(), Location::Local)?;
        if as_local.zone_name() == zone_name {
            return Ok(as_local);
        }
        return in_zone(TimeZone::UTC, Location::Fixed(zone_name));
    }
    in_zone(LOCAL.clone(), Location::Local)
}

/// Go's skip: the layout's literal text must be in the value; spaces match runs of spaces. Bytes
/// are compared, and a whole matched prefix ends on a character boundary of the value too.
fn skip<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let (v, p) = (value.as_bytes(), prefix.as_bytes());
    let (mut vi, mut pi) = (0, 0);
    while pi < p.len() {
        if p[pi] == b' ' {
            if vi < v.len() && v[vi] != b' ' {
                return None;
            }
            while pi < p.len() && p[pi] == b' ' {
                pi += 1;
            }
            while vi < v.len() && v[vi] == b' ' {
                vi += 1;
            }
            continue;
        }
        if vi >= v.len() || v[vi] != p[pi] {
            return None;
        }
        vi += 1;
        pi += 1;
    }
    value.get(vi..)
}

fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        if fixed {
            return None;
        }
        return Some((i64::from(b[0] - b'0'), &s[1..]));
    }
    Some((i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'), &s[2..]))
}

fn getnum3(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let n = b.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || fixed && n != 3 {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// Go's lookup: a case-insensitive (ASCII) prefix match of one of the names.
fn lookup<'v>(names: &[&str], value: &'v str) -> Option<(usize, &'v str)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let head = value.get(..name.len())?;
        head.eq_ignore_ascii_case(name).then(|| (i, &value[name.len()..]))
    })
}

fn parse_nanoseconds(value: &str, n: usize) -> Option<i64> {
    if !matches!(value.as_bytes().first(), Some(b'.' | b',')) {
        return None;
    }
    let n = n.min(10);
    let mut ns = atoi(value.get(1..n)?)?;
    for _ in 0..10 - n {
        ns *= 10;
    }
    Some(ns)
}

/// Go's parseTimeZone for abbreviations: three to five capitals (four or five ending in T).
fn parse_time_zone(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    if value.starts_with("GMT") {
        return Some(3);
    }
    let upper = b.iter().take(6).take_while(|c| c.is_ascii_uppercase()).count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || value.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

/// time.ParseDuration, in nanoseconds.
fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(text));
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for c in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|v| *v <= 1 << 63)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.starts_with('.') {
            s = &s[1..];
            let frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (i64::MAX as u64) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > 1 << 63 {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = &s[frac_len..];
        }
        if int_len == 0 && !post {
            return Err(invalid());
        }
        let unit_len = s.bytes().take_while(|c| !(*c == b'.' || c.is_ascii_digit())).count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(text)));
        }
        let unit_name = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_name {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => SECOND as u64,
            "m" => MINUTE as u64,
            "h" => HOUR as u64,
            _ => return Err(format!("time: unknown unit {} in duration {}", quote(unit_name), quote(text))),
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        total += v;
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// time.Duration.String.
fn format_duration(d: i64) -> String {
    let negative = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    let frac = |u: u64, prec: u32| -> (String, u64) {
        let mut digits = String::new();
        let mut v = u;
        let mut print = false;
        for _ in 0..prec {
            let digit = v % 10;
            print = print || digit != 0;
            if print {
                digits.insert(0, char::from(b'0' + digit as u8));
            }
            v /= 10;
        }
        if print {
            digits.insert(0, '.');
        }
        (digits, v)
    };
    if u < SECOND as u64 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let (fraction, whole) = frac(u, prec);
        out.push_str(&format!("{whole}{fraction}{unit}"));
    } else {
        let (fraction, whole) = frac(u, 9);
        u = whole;
        let mut text = format!("{}{fraction}s", u % 60);
        u /= 60;
        if u > 0 {
            text = format!("{}m{text}", u % 60);
            u /= 60;
            if u > 0 {
                text = format!("{u}h{text}");
            }
        }
        out.push_str(&text);
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// time.Duration.Round(m): halfway values away from zero, saturating.
fn round_duration(d: i64, m: i64) -> i64 {
    let r = d % m;
    if d < 0 {
        let r = -r;
        if r + r < m {
            return d + r;
        }
        d.checked_sub(m - r).unwrap_or(i64::MIN)
    } else {
        if r + r < m {
            return d - r;
        }
        d.checked_add(m - r).unwrap_or(i64::MAX)
    }
}

/// sprig's durationRound: the largest whole unit (y, mo, d, h, m, s) of the duration.
fn duration_round(d: i64) -> String {
    let u = d.unsigned_abs();
    let hour = HOUR as u64;
    for (size, unit) in [
        (hour * 24 * 365, "y"),
        (hour * 24 * 30, "mo"),
        (hour * 24, "d"),
        (hour, "h"),
        (MINUTE as u64, "m"),
        (SECOND as u64, "s"),
    ] {
        if u > size {
            return format!("{}{unit}", u / size);
        }
    }
    "0s".to_string()
}

/// A Go named integer type with a String method (time.Month, time.Weekday, time.Duration).
#[derive(Debug)]
struct Named {
    type_name: &'static str,
    value: i64,
    text: String,
}

impl Object for Named {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::Int64(self.value))
    }

    fn display(&self) -> String {
        self.text.clone()
    }
}

fn named(type_name: &'static str, value: i64, text: String) -> Value {
    Value::Object(Arc::new(Named { type_name, value, text }))
}

impl Object for GoTime {
    fn type_name(&self) -> &str {
        "time.Time"
    }

    fn method(&self, name: &str) -> Option<Function> {
        let t = self.clone();
        let int = |n: i64| -> Function { Function::new(&[], move |_, _| Ok(Value::Int(n))) };
        let dt = self.zoned.datetime();
        let ts = self.zoned.timestamp();
        Some(match name {
            "Year" => int(i64::from(dt.year())),
            "Day" => int(i64::from(dt.day())),
            "Hour" => int(i64::from(dt.hour())),
            "Minute" => int(i64::from(dt.minute())),
            "Second" => int(i64::from(dt.second())),
            "Nanosecond" => int(i64::from(dt.subsec_nanosecond())),
            "YearDay" => int(i64::from(dt.day_of_year())),
            "Month" => {
                let m = dt.month();
                Function::new(&[], move |_, _| {
                    Ok(named("time.Month", i64::from(m), LONG_MONTHS[m as usize - 1].to_string()))
                })
            }
            "Weekday" => {
                let w = dt.weekday().to_sunday_zero_offset();
                Function::new(&[], move |_, _| {
                    Ok(named("time.Weekday", i64::from(w), LONG_DAYS[w as usize].to_string()))
                })
            }
            "Unix" => Function::new(&[], move |_, _| Ok(Value::Int64(ts.as_second()))),
            "UnixMilli" => Function::new(&[], move |_, _| Ok(Value::Int64(ts.as_millisecond()))),
            "UnixMicro" => Function::new(&[], move |_, _| Ok(Value::Int64(ts.as_microsecond()))),
            "UnixNano" => Function::new(&[], move |_, _| Ok(Value::Int64(ts.as_nanosecond() as i64))),
            "IsZero" => {
                let zero = ts == GoTime::zero().zoned.timestamp();
                Function::new(&[], move |_, _| Ok(Value::Bool(zero)))
            }
            "String" => Function::new(&[], move |_, _| Ok(Value::from(t.to_go_string()))),
            "Format" => Function::new(&[Type::String], move |_, a| Ok(Value::from(t.format(str_arg(a, 0))))),
            "UTC" => Function::new(&[], move |_, _| {
                let mut utc = t.in_location(Location::Utc, TimeZone::UTC);
                utc.monotonic = t.monotonic;
                Ok(utc.into_value())
            }),
            "Local" => Function::new(&[], move |_, _| Ok(t.in_location(Location::Local, LOCAL.clone()).into_value())),
            "Location" => Function::new(&[], move |_, _| Ok(Value::from(t.location_name()))),
            "Add" => Function::new(&[Type::Int64], move |_, a| Ok(t.add(a[0].as_int().unwrap_or(0))?.into_value())),
            "Sub" => Function::new(&[Type::Any], move |_, a| {
                let d = t.sub(&time_arg(&a[0])?);
                Ok(named("time.Duration", d, format_duration(d)))
            }),
            "Before" | "After" | "Equal" | "Compare" => {
                let method = name.to_string();
                Function::new(&[Type::Any], move |_, a| {
                    let other = time_arg(&a[0])?;
                    let ordering = t.zoned.timestamp().cmp(&other.zoned.timestamp());
                    Ok(match method.as_str() {
                        "Before" => Value::Bool(ordering.is_lt()),
                        "After" => Value::Bool(ordering.is_gt()),
                        "Equal" => Value::Bool(ordering.is_eq()),
                        _ => Value::Int(ordering as i64),
                    })
                })
            }
            "AddDate" => Function::new(&[Type::Int, Type::Int, Type::Int], move |_, a| {
                let n = |i: usize| a[i].as_int().unwrap_or(0);
                let dt = t.zoned.datetime();
                // Go normalizes out-of-range months and days (Oct 31 + 1 month is Dec 1).
                let months = i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1 + n(0) * 12 + n(1);
                let first = Date::new(months.div_euclid(12) as i16, (months.rem_euclid(12) + 1) as i8, 1)
                    .map_err(out_of_range)?;
                let date =
                    first.checked_add(jiff::Span::new().days(i64::from(dt.day()) - 1 + n(2))).map_err(out_of_range)?;
                let zoned = date.to_datetime(dt.time()).to_zoned(t.zoned.time_zone().clone()).map_err(out_of_range)?;
                Ok(GoTime { zoned, location: t.location.clone(), monotonic: None }.into_value())
            }),
            _ => return None,
        })
    }

    fn display(&self) -> String {
        self.to_go_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90 * SECOND), "1m30s");
        assert_eq!(format_duration(HOUR), "1h0m0s");
        assert_eq!(format_duration(1_500_000), "1.5ms");
        assert_eq!(format_duration(-1_500 * 1_000_000), "-1.5s");
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("1.5h"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("-2s"), Ok(-2 * SECOND));
        assert!(parse_duration("1d").unwrap_err().contains("unknown unit \"d\""));
        assert!(parse_duration("1").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn layouts_format_and_parse() {
        let t = parse("2006-01-02T15:04:05Z07:00", "2024-02-29T13:04:05+02:00").unwrap();
        assert_eq!(t.format("Mon Jan _2 03:04:05PM 2006 -0700"), "Thu Feb 29 01:04:05PM 2024 +0200");
        assert_eq!(t.format(".000 .999 002 __2"), ".000  060  60");
        assert!(parse("2006-01-02", "2024-13-01").unwrap_err().ends_with("month out of range"));
    }
}
