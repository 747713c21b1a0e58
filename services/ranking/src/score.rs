//! One exact number per user and board: the score, and the tie-break.
//!
//! Redis orders a sorted set by a double. A double holds integers exactly up
//! to 2^53, so the composite `score * 2^23 + (2^23 - 1 - tick)` stays exact
//! for scores below 2^30: a higher score always ranks first, and for equal
//! scores the earlier tick (who reached it first) ranks first. Equal
//! composites (same score, same tick) fall back to the member order Redis
//! uses, which the memory store copies, so every read agrees.

/// The largest score accepted (just under 2^30).
pub const MAX_SCORE: i64 = 999_999_999;

/// Bits of the tie-break.
const TICK_BITS: u32 = 23;
/// Ticks of the tie-break clock.
const TICK_SPAN: u64 = 1 << TICK_BITS;
/// The largest tick; later moments share it.
pub const MAX_TICK: u64 = TICK_SPAN - 1;

/// The composite sort value of `score` reached at `tick`.
pub fn encode(score: i64, tick: u64) -> f64 {
    debug_assert!((0..=MAX_SCORE).contains(&score));
    (score as u64 * TICK_SPAN + (MAX_TICK - tick.min(MAX_TICK))) as f64
}

/// The score inside a composite.
pub fn decode(composite: f64) -> i64 {
    (composite as u64 / TICK_SPAN) as i64
}

/// The constant the Lua script uses, kept beside the encoding it mirrors.
pub const LUA_TICK_SPAN: u64 = TICK_SPAN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_composite_is_exact_in_a_double() {
        let largest = encode(MAX_SCORE, 0);
        assert!(largest < (1u64 << 53) as f64);
        assert_eq!(largest as u64 as f64, largest);
        assert_eq!(decode(largest), MAX_SCORE);
    }

    #[test]
    fn higher_scores_rank_first_then_earlier_ticks() {
        assert!(encode(11, MAX_TICK) > encode(10, 0));
        assert!(encode(10, 5) > encode(10, 6));
        assert_eq!(decode(encode(123_456_789, 4_000_000)), 123_456_789);
        assert_eq!(decode(encode(0, 0)), 0);
    }
}
