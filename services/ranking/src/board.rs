//! Boards: which sorted set a period and date map to, when it expires, and
//! how each board keeps a user's score.

use std::{
    fmt,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{date::Date, score::MAX_TICK};

/// The length of a leaderboard's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A UTC day.
    Daily,
    /// An ISO week, Monday to Sunday, UTC.
    Weekly,
    /// A UTC calendar month.
    Monthly,
    /// Forever.
    AllTime,
}

impl Period {
    /// Every period, in the order submissions report them.
    pub const ALL: [Period; 4] = [Period::Daily, Period::Weekly, Period::Monthly, Period::AllTime];

    /// The name used in keys and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::AllTime => "all-time",
        }
    }

    /// How long one tick of the tie-break clock is: the period must fit in
    /// [`MAX_TICK`] ticks so that score and tie-break share one exact double.
    fn tick(self) -> Duration {
        match self {
            Period::Daily => Duration::from_millis(20),
            Period::Weekly => Duration::from_millis(100),
            Period::Monthly => Duration::from_secs(1),
            Period::AllTime => Duration::from_secs(60),
        }
    }
}

/// Where ALL_TIME's tie-break clock starts. With one-minute ticks it runs
/// for about 16 years; after that ties are broken by user id only.
const ALL_TIME_EPOCH: &str = "2025-01-01";

/// How a board combines a user's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Keep the user's best score (and when it was first reached).
    Best,
    /// Add every score up (saturating at the maximum score).
    Sum,
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "best" => Ok(Policy::Best),
            "sum" => Ok(Policy::Sum),
            other => Err(format!("unknown scoring policy {other:?}: use best or sum")),
        }
    }
}

impl Policy {
    /// The name the Lua script expects.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Best => "best",
            Policy::Sum => "sum",
        }
    }
}

/// The scoring policy of each period's boards, from configuration such as
/// `daily=best,weekly=best,monthly=sum,all-time=sum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    by_period: [Policy; 4],
}

impl Default for Policies {
    fn default() -> Self {
        Self { by_period: [Policy::Best; 4] }
    }
}

impl Policies {
    /// The policy of `period`'s boards.
    pub fn of(&self, period: Period) -> Policy {
        self.by_period[Period::ALL.iter().position(|p| *p == period).expect("every period is listed")]
    }
}

impl FromStr for Policies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut policies = Policies::default();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let Some((period, policy)) = item.split_once('=') else {
                return Err(format!("{item:?}: expected PERIOD=POLICY, e.g. daily=best"));
            };
            let index = Period::ALL
                .iter()
                .position(|p| p.name() == period.trim().to_ascii_lowercase().replace('_', "-"))
                .ok_or_else(|| format!("unknown period {period:?}: use daily, weekly, monthly or all-time"))?;
            policies.by_period[index] = policy.trim().parse()?;
        }
        Ok(policies)
    }
}

/// One leaderboard: a period and the date it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoardId {
    /// The period.
    pub period: Period,
    /// The first day of the period (1970-01-01 for ALL_TIME).
    pub start: Date,
}

impl BoardId {
    /// The board of `period` that contains `date`.
    pub fn containing(period: Period, date: Date) -> Self {
        let start = match period {
            Period::Daily => date,
            Period::Weekly => date.week_start(),
            Period::Monthly => date.month_start(),
            Period::AllTime => Date::from_days(0),
        };
        Self { period, start }
    }

    /// The Redis key. The `{ranking}` hash tag keeps every key of the service
    /// in one cluster slot, so one script can update all boards atomically.
    pub fn key(&self) -> String {
        match self.period {
            Period::Daily => format!("{{ranking}}:daily:{}", self.start.compact()),
            Period::Weekly => format!("{{ranking}}:weekly:{}", self.start.compact()),
            Period::Monthly => format!("{{ranking}}:monthly:{}", self.start.compact_month()),
            Period::AllTime => "{ranking}:all-time".to_owned(),
        }
    }

    /// The first day of the period as the API shows it; empty for ALL_TIME.
    pub fn start_label(&self) -> String {
        match self.period {
            Period::AllTime => String::new(),
            _ => self.start.to_string(),
        }
    }

    /// Unix seconds when the period ends; `None` for ALL_TIME.
    pub fn ends_at(&self) -> Option<i64> {
        let end = match self.period {
            Period::Daily => Date::from_days(self.start.days() + 1),
            Period::Weekly => Date::from_days(self.start.days() + 7),
            Period::Monthly => self.start.next_month_start(),
            Period::AllTime => return None,
        };
        Some(end.epoch_secs())
    }

    /// Unix seconds when the board's key should expire: `grace` after the
    /// period ends, so yesterday's board can still be read for a while.
    pub fn expires_at(&self, grace: Duration) -> Option<i64> {
        self.ends_at().map(|end| end + grace.as_secs() as i64)
    }

    /// The tie-break clock at `now`: ticks since the period started, so that
    /// an earlier submission gets a smaller tick.
    pub fn tick_at(&self, now: SystemTime) -> u64 {
        let origin = match self.period {
            Period::AllTime => Date::parse(ALL_TIME_EPOCH).expect("valid epoch").epoch_secs(),
            _ => self.start.epoch_secs(),
        };
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let since = now.saturating_sub(Duration::from_secs(origin.max(0) as u64));
        ((since.as_nanos() / self.period.tick().as_nanos()) as u64).min(MAX_TICK)
    }
}

impl fmt::Display for BoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::DAY_SECS;

    fn date(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    #[test]
    fn keys_name_the_period_and_its_start() {
        let friday = date("2026-11-27");
        assert_eq!(BoardId::containing(Period::Daily, friday).key(), "{ranking}:daily:20261127");
        assert_eq!(BoardId::containing(Period::Weekly, friday).key(), "{ranking}:weekly:20261123");
        assert_eq!(BoardId::containing(Period::Monthly, friday).key(), "{ranking}:monthly:202611");
        assert_eq!(BoardId::containing(Period::AllTime, friday).key(), "{ranking}:all-time");
    }

    #[test]
    fn boards_expire_a_grace_period_after_they_end() {
        let grace = Duration::from_secs(3600);
        let day = BoardId::containing(Period::Daily, date("2026-11-27"));
        assert_eq!(day.expires_at(grace), Some(date("2026-11-28").epoch_secs() + 3600));
        let month = BoardId::containing(Period::Monthly, date("2026-12-15"));
        assert_eq!(month.ends_at(), Some(date("2027-01-01").epoch_secs()));
        assert_eq!(BoardId::containing(Period::AllTime, date("2026-12-15")).expires_at(grace), None);
    }

    #[test]
    fn every_period_fits_the_tie_break_clock() {
        let start = date("2026-11-01");
        for (period, last_moment) in [
            (Period::Daily, Duration::from_secs(DAY_SECS) - Duration::from_millis(1)),
            (Period::Weekly, Duration::from_secs(7 * DAY_SECS) - Duration::from_millis(1)),
            (Period::Monthly, Duration::from_secs(31 * DAY_SECS) - Duration::from_millis(1)),
        ] {
            let board = BoardId::containing(period, start);
            let end = UNIX_EPOCH + Duration::from_secs(board.start.epoch_secs() as u64) + last_moment;
            assert!(board.tick_at(end) < MAX_TICK, "{period:?} overflows the clock");
        }
    }

    #[test]
    fn policies_parse_per_period_with_clear_errors() {
        let policies: Policies = "daily=best, all_time=sum".parse().unwrap();
        assert_eq!(policies.of(Period::Daily), Policy::Best);
        assert_eq!(policies.of(Period::AllTime), Policy::Sum);
        assert_eq!(policies.of(Period::Weekly), Policy::Best);
        assert!("hourly=best".parse::<Policies>().unwrap_err().contains("unknown period"));
        assert!("daily=max".parse::<Policies>().unwrap_err().contains("unknown scoring policy"));
    }
}
