//! A phase's figure (or a probe's total) as it ended: measured to the phase's end, or waited until a
//! timeout fired. Data only; the table and the pages spell it where they show it.

use super::{FailureClass, Phase};

/// One figure of a probe, in milliseconds, and how it ended. A timed-out phase records the time it
/// waited (about its timeout): the phase would have taken at least that long, so a slow edge does
/// not read like a fast one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseTime {
    /// The phase (or the probe) ended by itself after `ms`: done, or failed fast.
    Measured {
        /// The time it took.
        ms: f64,
    },
    /// A timeout ended it after `ms`.
    TimedOut {
        /// The time it waited.
        ms: f64,
    },
}

impl PhaseTime {
    /// The figure `ms` of `phase` in a probe that failed with `failure` (its class and phase), if
    /// it failed: timed out when that failure is this phase's timeout.
    pub fn of_phase(ms: f64, phase: Phase, failure: Option<(FailureClass, Phase)>) -> PhaseTime {
        match failure {
            Some((class, failed_in)) if class.is_timeout() && failed_in == phase => {
                PhaseTime::TimedOut { ms }
            }
            _ => PhaseTime::Measured { ms },
        }
    }

    /// The total `ms` of a probe that failed with `failure`, if it failed: timed out when any of
    /// its phases did.
    pub fn of_total(ms: f64, failure: Option<(FailureClass, Phase)>) -> PhaseTime {
        match failure {
            Some((class, _)) if class.is_timeout() => PhaseTime::TimedOut { ms },
            _ => PhaseTime::Measured { ms },
        }
    }

    /// The figure, in milliseconds.
    pub fn ms(self) -> f64 {
        match self {
            PhaseTime::Measured { ms } | PhaseTime::TimedOut { ms } => ms,
        }
    }

    /// Whether a timeout ended it.
    pub fn timed_out(self) -> bool {
        matches!(self, PhaseTime::TimedOut { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_phase_whose_timeout_fired_is_marked_and_the_total_with_it() {
        let fb = Some((FailureClass::HttpTimeout, Phase::Processing));
        assert!(PhaseTime::of_phase(400.0, Phase::Processing, fb).timed_out());
        assert!(!PhaseTime::of_phase(0.3, Phase::Connect, fb).timed_out());
        assert!(PhaseTime::of_total(401.0, fb).timed_out());
        let refused = Some((FailureClass::TcpRefused, Phase::Connect));
        assert!(!PhaseTime::of_phase(0.1, Phase::Connect, refused).timed_out());
        assert!(!PhaseTime::of_total(0.5, refused).timed_out());
        assert_eq!(
            PhaseTime::of_total(2.5, None),
            PhaseTime::Measured { ms: 2.5 }
        );
    }
}
