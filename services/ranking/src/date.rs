//! UTC calendar dates, just what leaderboards need: parse `yyyy-mm-dd`, today,
//! the first day of a week or month, and days since the Unix epoch.

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

/// A day of the proleptic Gregorian calendar, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u32,
    day: u32,
}

/// Seconds in a day.
pub const DAY_SECS: u64 = 86_400;

impl Date {
    /// The date, if it exists.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        (1..=12).contains(&month).then_some(())?;
        (day >= 1 && day <= days_in_month(year, month)).then_some(Self { year, month, day })
    }

    /// Parses `yyyy-mm-dd`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        Self::new(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
    }

    /// The UTC date at `time`.
    pub fn at(time: SystemTime) -> Self {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        Self::from_days((secs / DAY_SECS) as i64)
    }

    /// Today, in UTC.
    pub fn today() -> Self {
        Self::at(SystemTime::now())
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Self {
        let days = days + 719_468;
        let era = days.div_euclid(146_097);
        let day_of_era = days - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
        let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
        let year = (year_of_era + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// The Monday of this date's ISO week.
    pub fn week_start(self) -> Self {
        // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
        let weekday = (self.days() + 3).rem_euclid(7);
        Self::from_days(self.days() - weekday)
    }

    /// The first day of this date's month.
    pub fn month_start(self) -> Self {
        Self { day: 1, ..self }
    }

    /// The first day of the next month.
    pub fn next_month_start(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1, day: 1 }
        } else {
            Self { month: self.month + 1, day: 1, ..self }
        }
    }

    /// Seconds since the Unix epoch at this date's midnight, UTC.
    pub fn epoch_secs(self) -> i64 {
        self.days() * DAY_SECS as i64
    }

    /// `yyyymmdd`, as Redis keys use it.
    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `yyyymm`.
    pub fn compact_month(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_real_dates_in_the_iso_form() {
        assert_eq!(Date::parse("2026-11-27").map(|d| d.to_string()), Some("2026-11-27".into()));
        assert_eq!(Date::parse("2024-02-29").map(|d| d.to_string()), Some("2024-02-29".into()));
        for bad in ["2025-02-29", "2026-13-01", "2026-1-01", "20261127", "2026-11-27x", "", "2026-11-00"] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_numbers_round_trip_and_match_the_epoch() {
        assert_eq!(Date::parse("1970-01-01").unwrap().days(), 0);
        assert_eq!(Date::parse("2000-03-01").unwrap().days(), 11_017);
        for days in [-1000, 0, 59, 10_000, 20_784, 100_000] {
            assert_eq!(Date::from_days(days).days(), days);
        }
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-27 is a Friday.
        let friday = Date::parse("2026-11-27").unwrap();
        assert_eq!(friday.week_start().to_string(), "2026-11-23");
        assert_eq!(Date::parse("2026-11-23").unwrap().week_start().to_string(), "2026-11-23");
        assert_eq!(Date::parse("2027-01-03").unwrap().week_start().to_string(), "2026-12-28");
        assert_eq!(friday.month_start().to_string(), "2026-11-01");
        assert_eq!(Date::parse("2026-12-31").unwrap().next_month_start().to_string(), "2027-01-01");
    }
}
