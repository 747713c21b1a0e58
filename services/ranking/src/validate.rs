//! Checking requests: every rejection is INVALID_ARGUMENT naming the field
//! and the value.

use tonic::Status;

use crate::{
    board::{BoardId, Period},
    date::Date,
    score::MAX_SCORE,
    store::RankOn,
};
use contracts::ranking::v1 as pb;

/// The longest user id accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;
/// The most entries one GetTop returns.
pub const MAX_LIMIT: u32 = 1000;
/// GetTop's limit when none is given.
pub const DEFAULT_LIMIT: u32 = 10;
/// The widest GetAround radius.
pub const MAX_RADIUS: u32 = 100;
/// GetAround's radius when none is given.
pub const DEFAULT_RADIUS: u32 = 5;
/// The most scores in one SubmitScores.
pub const MAX_BATCH: usize = 1000;
/// The longest profile name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A user id: 1 to 128 bytes, no control characters.
pub fn user_id(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field}: must not be empty")));
    }
    if value.len() > MAX_USER_ID_BYTES {
        return Err(Status::invalid_argument(format!(
            "{field}: {} bytes is over the limit of {MAX_USER_ID_BYTES}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!("{field}: {value:?} contains control characters")));
    }
    Ok(())
}

/// A submission id: 1 to 128 of `A-Z a-z 0-9 . _ : -` (it is part of a
/// Redis key, and a caller's match or request id fits).
pub fn submission_id(field: &str, value: &str) -> Result<(), Status> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._:-".contains(c);
    if value.is_empty() || value.len() > 128 || !value.chars().all(allowed) {
        return Err(Status::invalid_argument(format!(
            "{field}: {value:.140?} must be 1 to 128 of A-Z a-z 0-9 . _ : -"
        )));
    }
    Ok(())
}

/// A score from 0 to [`MAX_SCORE`].
pub fn score(field: &str, value: i64) -> Result<(), Status> {
    if !(0..=MAX_SCORE).contains(&value) {
        return Err(Status::invalid_argument(format!("{field}: {value} is outside 0..={MAX_SCORE}")));
    }
    Ok(())
}

/// A period as the API sends it (PERIOD_UNSPECIFIED is DAILY).
pub fn period(field: &str, value: i32) -> Result<Period, Status> {
    match pb::Period::try_from(value) {
        Ok(pb::Period::Unspecified | pb::Period::Daily) => Ok(Period::Daily),
        Ok(pb::Period::Weekly) => Ok(Period::Weekly),
        Ok(pb::Period::Monthly) => Ok(Period::Monthly),
        Ok(pb::Period::AllTime) => Ok(Period::AllTime),
        Err(_) => Err(Status::invalid_argument(format!("{field}: unknown value {value}"))),
    }
}

/// The boards of a submission whose rank the caller wants: every one when
/// `rank_periods` is absent.
pub fn rank_on(rank_periods: Option<&pb::Periods>) -> Result<RankOn, Status> {
    let Some(rank_periods) = rank_periods else { return Ok(RankOn::ALL) };
    let mut wanted = Vec::with_capacity(rank_periods.periods.len());
    for (index, value) in rank_periods.periods.iter().enumerate() {
        let period = period(&format!("rank_periods.periods[{index}]"), *value)?;
        wanted.push(Period::ALL.iter().position(|candidate| *candidate == period).expect("every period is listed"));
    }
    Ok(RankOn::boards(wanted))
}

/// The board a request names; `today` is the current UTC date.
pub fn board(board: Option<&pb::Board>, today: Date) -> Result<BoardId, Status> {
    let default = pb::Board::default();
    let board = board.unwrap_or(&default);
    let period = period("board.period", board.period)?;
    let date = if board.date.is_empty() {
        today
    } else {
        let date = Date::parse(&board.date).ok_or_else(|| {
            Status::invalid_argument(format!("board.date: {:?} is not a date (yyyy-mm-dd)", board.date))
        })?;
        if date > today {
            return Err(Status::invalid_argument(format!(
                "board.date: {date} is in the future (today is {today} UTC)"
            )));
        }
        date
    };
    Ok(BoardId::containing(period, date))
}

/// A count from a request: `0` means `default`, over `max` is rejected.
pub fn count(field: &str, value: u32, default: u32, max: u32) -> Result<u64, Status> {
    match value {
        0 => Ok(u64::from(default)),
        value if value > max => Err(Status::invalid_argument(format!("{field}: {value} is over the limit of {max}"))),
        value => Ok(u64::from(value)),
    }
}

/// A profile: a name of at most [`MAX_NAME_CHARS`] characters, a grade of 0
/// or more.
pub fn profile(profile: Option<&pb::Profile>) -> Result<pb::Profile, Status> {
    let profile = profile.ok_or_else(|| Status::invalid_argument("profile: missing"))?;
    if profile.name.chars().count() > MAX_NAME_CHARS {
        return Err(Status::invalid_argument(format!("profile.name: longer than {MAX_NAME_CHARS} characters")));
    }
    if profile.grade < 0 {
        return Err(Status::invalid_argument(format!("profile.grade: {} is negative", profile.grade)));
    }
    Ok(profile.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::parse("2026-11-27").unwrap()
    }

    #[test]
    fn user_ids_must_be_present_short_and_printable() {
        assert!(user_id("user_id", "alice").is_ok());
        assert!(user_id("user_id", "").unwrap_err().message().starts_with("user_id: must not be empty"));
        assert!(user_id("user_id", &"x".repeat(129)).unwrap_err().message().contains("over the limit of 128"));
        assert!(user_id("user_id", "a\nb").is_err());
    }

    #[test]
    fn scores_must_be_in_range() {
        assert!(score("score", 0).is_ok());
        assert!(score("score", MAX_SCORE).is_ok());
        assert!(score("score", -1).unwrap_err().message().starts_with("score: -1 is outside"));
        assert!(score("score", MAX_SCORE + 1).is_err());
    }

    #[test]
    fn boards_default_to_today_and_reject_the_future_and_unknown_periods() {
        let daily = board(None, today()).unwrap();
        assert_eq!(daily.key(), "{ranking}:daily:20261127");
        let past = pb::Board { period: pb::Period::Monthly as i32, date: "2026-10-03".into() };
        assert_eq!(board(Some(&past), today()).unwrap().key(), "{ranking}:monthly:202610");
        let future = pb::Board { period: 1, date: "2026-11-28".into() };
        assert!(
            board(Some(&future), today()).unwrap_err().message().contains("board.date: 2026-11-28 is in the future")
        );
        let unknown = pb::Board { period: 9, date: String::new() };
        assert_eq!(board(Some(&unknown), today()).unwrap_err().message(), "board.period: unknown value 9");
        let garbled = pb::Board { period: 1, date: "27/11/2026".into() };
        assert!(board(Some(&garbled), today()).unwrap_err().message().starts_with("board.date:"));
    }

    #[test]
    fn counts_default_and_cap() {
        assert_eq!(count("limit", 0, 10, 1000).unwrap(), 10);
        assert_eq!(count("limit", 1000, 10, 1000).unwrap(), 1000);
        assert_eq!(count("limit", 1001, 10, 1000).unwrap_err().message(), "limit: 1001 is over the limit of 1000");
    }
}
