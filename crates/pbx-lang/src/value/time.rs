//! Timestamps: the calendar arithmetic behind the date built-ins, their
//! textual forms, and the clock tasks read.
//!
//! A timestamp is a count of seconds with no zone attached. `GMTTime()` gives
//! the time in GMT; `LocalTime()` and `GMTToLocal` give a timestamp shifted
//! by the zone's offset, whose calendar fields (`Year`, `TimeOfDay`...) read
//! as local wall-clock time. So the field functions here work in plain UTC
//! arithmetic and only the shifting functions consult a time zone.

use std::fmt::Write as _;
use std::sync::Arc;

pub use jiff::tz::TimeZone;

use super::{Seconds, REMOTE_FUTURE, REMOTE_PAST};

const SECONDS_PER_DAY: i64 = 86_400;

/// Where tasks read the current time from. Tests and demos start the clock
/// at a chosen instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the epoch, GMT.
    fn now(&self) -> Seconds;
}

/// The system clock, optionally moved by a fixed offset.
#[derive(Debug, Default)]
pub struct SystemClock {
    /// Added to the system time.
    pub offset: Seconds,
}

impl SystemClock {
    /// A clock that reads `start` now and runs from there.
    pub fn starting_at(start: Seconds) -> SystemClock {
        SystemClock {
            offset: start - system_now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Seconds {
        system_now() + self.offset
    }
}

/// A clock that always reads the same instant (tests).
#[derive(Debug)]
pub struct FrozenClock(pub Seconds);

impl Clock for FrozenClock {
    fn now(&self) -> Seconds {
        self.0
    }
}

fn system_now() -> Seconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// The default clock: system time.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock::default())
}

/// A calendar date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Days since 1970-01-01 of a calendar date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The calendar date of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// The calendar fields of a timestamp (none for the remote past and future).
pub fn civil(time: Seconds) -> Option<Civil> {
    if time == REMOTE_PAST || time == REMOTE_FUTURE {
        return None;
    }
    let days = time.div_euclid(SECONDS_PER_DAY);
    let seconds = time.rem_euclid(SECONDS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    Some(Civil {
        year,
        month,
        day,
        hour: seconds / 3600,
        minute: seconds / 60 % 60,
        second: seconds % 60,
    })
}

/// The timestamp of a calendar date and time, if the fields are valid.
pub fn from_civil(civil: Civil) -> Option<Seconds> {
    if !(1..=12).contains(&civil.month)
        || civil.day < 1
        || civil.day > days_in_month(civil.year, civil.month)
        || civil.hour > 23
        || civil.minute > 59
        || civil.second > 59
        || !(0..=9999).contains(&civil.year)
    {
        return None;
    }
    let days = days_from_civil(civil.year, civil.month, civil.day);
    Some(
        days * SECONDS_PER_DAY
            + i64::from(civil.hour) * 3600
            + i64::from(civil.minute) * 60
            + i64::from(civil.second),
    )
}

/// Day of the week, 0 = Monday.
pub fn weekday(time: Seconds) -> u32 {
    // 1970-01-01 was a Thursday (3 counting from Monday = 0).
    (time.div_euclid(SECONDS_PER_DAY) + 3).rem_euclid(7) as u32
}

/// Three-letter English month names.
pub const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Three-letter English day names, Monday first.
pub const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `24-10-2008_10:51:24`, `PAST` or `FUTURE`: the form `String(t)` gives and
/// the textual form `#T…` carries.
pub fn format_plain(time: Seconds) -> String {
    match civil(time) {
        None if time == REMOTE_PAST => "PAST".into(),
        None => "FUTURE".into(),
        Some(c) => {
            let mut text = String::with_capacity(19);
            let _ = write!(
                text,
                "{:02}-{:02}-{:04}_{:02}:{:02}:{:02}",
                c.day, c.month, c.year, c.hour, c.minute, c.second
            );
            text
        }
    }
}

/// RFC 822 form in GMT, used by `ObjectToJSON`: `Fri, 24 Oct 2008 10:51:24 +0000`.
pub fn format_rfc822(time: Seconds) -> String {
    match civil(time) {
        None => format_plain(time),
        Some(c) => format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
            DAY_NAMES[weekday(time) as usize],
            c.day,
            MONTH_NAMES[(c.month - 1) as usize],
            c.year,
            c.hour,
            c.minute,
            c.second
        ),
    }
}

/// Parses a timestamp written as `dd-mm-yyyy[_hh:mm:ss]` (optionally after
/// `#T`), `PAST`/`FUTURE`, RFC 3339 (`2008-10-24T10:51:24Z`) or RFC 822.
pub fn parse(text: &str) -> Option<Seconds> {
    let text = text.trim();
    let text = text.strip_prefix("#T").unwrap_or(text);
    if text.eq_ignore_ascii_case("past") {
        return Some(REMOTE_PAST);
    }
    if text.eq_ignore_ascii_case("future") {
        return Some(REMOTE_FUTURE);
    }
    if let Some(time) = parse_plain(text) {
        return Some(time);
    }
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Some(timestamp.as_second());
    }
    jiff::fmt::rfc2822::parse(text)
        .ok()
        .map(|zoned| zoned.timestamp().as_second())
}

fn parse_plain(text: &str) -> Option<Seconds> {
    let (date, time) = match text.split_once('_') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut date_parts = date.split('-');
    let day = date_parts.next()?.parse().ok()?;
    let month = date_parts.next()?.parse().ok()?;
    let year = date_parts.next()?.parse().ok()?;
    if date_parts.next().is_some() {
        return None;
    }
    let (hour, minute, second) = match time {
        None => (0, 0, 0),
        Some(time) => {
            let mut parts = time.split(':');
            let hour = parts.next()?.parse().ok()?;
            let minute = parts.next()?.parse().ok()?;
            let second = parts.next()?.parse().ok()?;
            if parts.next().is_some() {
                return None;
            }
            (hour, minute, second)
        }
    };
    from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// The offset in seconds of `zone` at the GMT instant `time`.
pub fn offset_at(zone: &jiff::tz::TimeZone, time: Seconds) -> i64 {
    jiff::Timestamp::from_second(time)
        .map(|instant| i64::from(zone.to_offset(instant).seconds()))
        .unwrap_or(0)
}

/// GMT to local wall-clock time in `zone`.
pub fn gmt_to_local(zone: &jiff::tz::TimeZone, time: Seconds) -> Seconds {
    if time == REMOTE_PAST || time == REMOTE_FUTURE {
        return time;
    }
    time.saturating_add(offset_at(zone, time))
}

/// Local wall-clock time in `zone` to GMT. Around a change of offset the
/// offset in force just before the wall-clock time is used.
pub fn local_to_gmt(zone: &jiff::tz::TimeZone, time: Seconds) -> Seconds {
    if time == REMOTE_PAST || time == REMOTE_FUTURE {
        return time;
    }
    let guess = time.saturating_sub(offset_at(zone, time));
    time.saturating_sub(offset_at(zone, guess))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(17) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(format_plain(1_224_845_484), "24-10-2008_10:51:24");
        assert_eq!(parse("#T24-10-2008_10:51:24"), Some(1_224_845_484));
        assert_eq!(weekday(0), 3);
        assert_eq!(format_rfc822(1_224_845_484), "Fri, 24 Oct 2008 10:51:24 +0000");
    }
}
