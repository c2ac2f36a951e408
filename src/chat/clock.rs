//! Where message timestamps come from: `timezone.now()` (UTC, microseconds), or an instant a
//! test pins to check a frame byte for byte (e.g. a timestamp with zero microseconds, which
//! Python's `isoformat()` writes without a fraction).

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::db::datetime;
use crate::django::dates;

#[derive(Debug, Default)]
pub struct Clock {
    pinned: Mutex<Option<DateTime<Utc>>>,
}

impl Clock {
    /// The time a message saved now gets.
    pub fn now(&self) -> DateTime<Utc> {
        let pinned = *self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        pinned
            .map(dates::truncate_to_micros)
            .unwrap_or_else(datetime::now)
    }

    /// Pins every following timestamp to `at` (`None` returns to the system clock).
    pub fn pin(&self, at: Option<DateTime<Utc>>) {
        *self.pinned.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    #[test]
    fn pinned_then_released() {
        let clock = Clock::default();
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        clock.pin(Some(at));
        assert_eq!(clock.now(), at);
        clock.pin(None);
        assert_ne!(clock.now(), at);
        assert_eq!(
            clock.now().nanosecond() % 1_000,
            0,
            "microsecond precision, as Python"
        );
    }
}
