//! Working hours: a weekly schedule with holidays, read in the account's
//! time zone (FEATURES.md §4).
//!
//! A schedule is written `Mon-Fri 09:00-18:00; Sat 10:00-14:00` — days (a
//! range or a comma list) and one or more time ranges, separated by `;`.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// One `days times` part of a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Period {
    /// Bit `n` set: the day `n` (Monday = 0) is in.
    days: u8,
    /// Half-open ranges of minutes since midnight.
    ranges: Vec<(u16, u16)>,
}

/// A weekly schedule of working hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    periods: Vec<Period>,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `Mon`, `monday`, `Tues`… → 0 for Monday.
fn day_number(text: &str) -> Result<u8, String> {
    let lower = text.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|day| lower.len() >= 3 && day.starts_with(&lower))
        .map(|index| index as u8)
        .ok_or_else(|| format!("`{}` is not a day (Mon, Tue … Sun)", text.trim()))
}

fn minutes(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let (hours, minutes) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a time like 09:00"))?;
    let hours: u16 = hours
        .parse()
        .map_err(|_| format!("`{text}` is not a time like 09:00"))?;
    let minutes: u16 = minutes
        .parse()
        .map_err(|_| format!("`{text}` is not a time like 09:00"))?;
    if hours > 24 || minutes > 59 || (hours == 24 && minutes > 0) {
        return Err(format!("`{text}` is not a time of day"));
    }
    Ok(hours * 60 + minutes)
}

impl Schedule {
    /// Parses `Mon-Fri 09:00-18:00; Sat 10:00-14:00`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut periods = Vec::new();
        for part in text.split(';').map(str::trim).filter(|part| !part.is_empty()) {
            let (days_text, times_text) = part
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("`{part}`: expected days then hours, like `Mon-Fri 09:00-18:00`"))?;
            let mut days = 0u8;
            for group in days_text.split(',') {
                match group.split_once('-') {
                    Some((first, last)) => {
                        let (first, last) = (day_number(first)?, day_number(last)?);
                        let mut day = first;
                        loop {
                            days |= 1 << day;
                            if day == last {
                                break;
                            }
                            day = (day + 1) % 7;
                        }
                    }
                    None => days |= 1 << day_number(group)?,
                }
            }
            let mut ranges = Vec::new();
            for range in times_text.split(',') {
                let (start, end) = range
                    .split_once('-')
                    .ok_or_else(|| format!("`{}`: expected a range like 09:00-18:00", range.trim()))?;
                let (start, end) = (minutes(start)?, minutes(end)?);
                if start >= end {
                    return Err(format!("`{}`: the range ends before it starts", range.trim()));
                }
                ranges.push((start, end));
            }
            periods.push(Period { days, ranges });
        }
        if periods.is_empty() {
            return Err("no days and hours given".into());
        }
        Ok(Schedule { periods })
    }

    /// Whether the schedule is open at `date` and `time` (local).
    pub fn is_open_at(&self, weekday: Weekday, time: Time) -> bool {
        let day = weekday.to_monday_zero_offset() as u8;
        let minute = time.hour() as u16 * 60 + time.minute() as u16;
        self.periods.iter().any(|period| {
            period.days & (1 << day) != 0
                && period
                    .ranges
                    .iter()
                    .any(|(start, end)| (*start..*end).contains(&minute))
        })
    }
}

/// Working hours with holidays, in a zone.
#[derive(Clone, Debug)]
pub struct WorkingHours {
    pub schedule: Schedule,
    pub holidays: Vec<Date>,
    pub zone: TimeZone,
}

impl WorkingHours {
    /// Whether `instant` falls within working hours.
    pub fn is_working(&self, instant: Timestamp) -> bool {
        let local = instant.to_zoned(self.zone.clone());
        if self.holidays.contains(&local.date()) {
            return false;
        }
        self.schedule.is_open_at(local.weekday(), local.time())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn weekdays_nine_to_six_in_moscow() {
        let hours = WorkingHours {
            schedule: Schedule::parse("Mon-Fri 09:00-18:00").unwrap(),
            holidays: vec!["2026-12-31".parse().unwrap()],
            zone: TimeZone::get("Europe/Moscow").unwrap(),
        };
        // Monday 23 November 2026, 10:00 in Moscow is 07:00 UTC.
        assert!(hours.is_working(at("2026-11-23T07:00:00Z")));
        assert!(!hours.is_working(at("2026-11-23T05:59:00Z")));
        assert!(!hours.is_working(at("2026-11-23T15:00:00Z")));
        // Saturday.
        assert!(!hours.is_working(at("2026-11-28T08:00:00Z")));
        // A holiday on a Thursday.
        assert!(!hours.is_working(at("2026-12-31T08:00:00Z")));
    }

    #[test]
    fn several_periods_and_ranges() {
        let schedule = Schedule::parse("Mon,Wed 09:00-12:00, 13:00-17:00; Sat 10:00-14:00").unwrap();
        assert!(schedule.is_open_at(Weekday::Wednesday, Time::constant(13, 30, 0, 0)));
        assert!(!schedule.is_open_at(Weekday::Wednesday, Time::constant(12, 30, 0, 0)));
        assert!(!schedule.is_open_at(Weekday::Tuesday, Time::constant(10, 0, 0, 0)));
        assert!(schedule.is_open_at(Weekday::Saturday, Time::constant(10, 0, 0, 0)));
    }

    #[test]
    fn mistakes_are_described() {
        assert!(Schedule::parse("Funday 09:00-10:00")
            .unwrap_err()
            .contains("Funday"));
        assert!(Schedule::parse("Mon 18:00-09:00")
            .unwrap_err()
            .contains("ends before"));
        assert!(Schedule::parse("Mon 9-17").unwrap_err().contains("time like"));
        assert!(Schedule::parse("").is_err());
    }
}
