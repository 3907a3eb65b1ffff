//! The lengths of the rollup periods, in milliseconds: the unit of the store's time columns and of
//! the windows the pages ask for. Constants only.

/// A minute: the finer rollup period.
pub const MINUTE_MS: i64 = 60_000;
/// An hour: the coarser rollup period.
pub const HOUR_MS: i64 = 3_600_000;
