//! `FERROCHAT_WS_RATE`: an opt-in per-socket message rate, a token bucket of `burst` messages
//! refilled at `per_second`. The socket's own task owns its bucket: no shared state, no lock.

use std::time::Instant;

use super::settings::OpsConfigError;

pub const WS_RATE_VAR: &str = "FERROCHAT_WS_RATE";

/// `RATE` or `RATE,BURST` (messages per second, then how many may come at once; the burst
/// defaults to the rate, at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub fn parse(value: &str) -> Result<Rate, OpsConfigError> {
        let bad = || {
            OpsConfigError::new(
                WS_RATE_VAR,
                format!(
                    "expected messages per second and an optional burst (e.g. 5 or 5,20), got {value:?}"
                ),
            )
        };
        let (rate, burst) = match value.split_once(',') {
            Some((r, b)) => (r.trim(), Some(b.trim())),
            None => (value.trim(), None),
        };
        let per_second: f64 = rate.parse().map_err(|_| bad())?;
        if !(per_second > 0.0 && per_second <= 1_000_000.0) {
            return Err(bad());
        }
        let burst = match burst {
            Some(b) => b.parse::<u32>().ok().filter(|b| *b >= 1).ok_or_else(bad)?,
            None => (per_second.ceil() as u32).max(1),
        };
        Ok(Rate { per_second, burst })
    }
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> TokenBucket {
        TokenBucket::starting_at(rate, Instant::now())
    }

    fn starting_at(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: f64::from(rate.burst),
            last: now,
        }
    }

    /// Takes one message's token; false when the socket is over its rate.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(
            Rate::parse("5").ok(),
            Some(Rate {
                per_second: 5.0,
                burst: 5
            })
        );
        assert_eq!(
            Rate::parse(" 0.5 , 3 ").ok(),
            Some(Rate {
                per_second: 0.5,
                burst: 3
            })
        );
        assert_eq!(
            Rate::parse("0.5").ok(),
            Some(Rate {
                per_second: 0.5,
                burst: 1
            })
        );
        for bad in ["", "0", "-1", "x", "5,0", "5,x", "nan"] {
            let err = Rate::parse(bad).expect_err(bad);
            assert!(err.to_string().starts_with("FERROCHAT_WS_RATE: "), "{err}");
        }
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::starting_at(
            Rate {
                per_second: 2.0,
                burst: 3,
            },
            t0,
        );
        assert!(bucket.take_at(t0));
        assert!(bucket.take_at(t0));
        assert!(bucket.take_at(t0));
        assert!(!bucket.take_at(t0));
        assert!(bucket.take_at(t0 + Duration::from_millis(500)));
        assert!(!bucket.take_at(t0 + Duration::from_millis(600)));
        // Idle time refills no more than the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take_at(later));
        }
        assert!(!bucket.take_at(later));
    }
}
