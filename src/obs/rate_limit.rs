//! Warnings that an outage would repeat many times a second, written at most once an
//! interval, with a count of those held back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per interval.
pub(crate) struct RateLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    /// One line per `every`.
    pub(crate) fn every(every: Duration) -> Self {
        RateLimit {
            every,
            state: Mutex::default(),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be written now.
    pub(crate) fn due(&self) -> Option<u64> {
        let mut state = self.state.lock().expect("rate limit");
        let (last, held) = &mut *state;
        if last.is_some_and(|t| t.elapsed() < self.every) {
            *held += 1;
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_an_interval_gets_through_and_the_rest_are_counted() {
        let limit = RateLimit::every(Duration::from_secs(1));
        assert_eq!(limit.due(), Some(0));
        assert_eq!(limit.due(), None);
        assert_eq!(limit.due(), None);
        *limit.state.lock().unwrap() = (Some(Instant::now() - Duration::from_secs(2)), 2);
        assert_eq!(limit.due(), Some(2));
    }
}
