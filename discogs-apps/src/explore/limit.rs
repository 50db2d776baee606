//! Per-client rate limits: a token bucket per IP address.
//!
//! Each client may send `burst` requests at once and `rate` per second on average; past
//! that it gets `429 Too Many Requests` with `Retry-After`. Buckets of clients idle for
//! ten minutes are dropped when the table grows, so memory stays bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are dropped.
const SWEEP_AT: usize = 10_000;

/// The limiter; shared by every request (clone the `Arc` holding it).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests per second, `burst` at once; `rate == 0` turns the limit off.
    #[must_use]
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the limit is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes a token for `ip`: `Ok` to go on, `Err(seconds)` to wait that long.
    ///
    /// # Errors
    ///
    /// The whole seconds until a token is available, when none is.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, (_, seen)| now.duration_since(*seen) < Duration::from_secs(600));
        }
        let (tokens, seen) = buckets.entry(ip).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*seen).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.rate).ceil();
            // At most a day: a rate of a request a day is the least configurable.
            Err(format!("{wait:.0}").parse().unwrap_or(1).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate() {
        let limiter = RateLimiter::new(2.0, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at(a, t0), Ok(()));
        }
        assert_eq!(limiter.check_at(a, t0), Err(1));
        assert_eq!(limiter.check_at(b, t0), Ok(()), "per client");
        assert_eq!(limiter.check_at(a, t0 + Duration::from_millis(500)), Ok(()));
        assert!(limiter
            .check_at(a, t0 + Duration::from_millis(500))
            .is_err());
        let off = RateLimiter::new(0.0, 1);
        for _ in 0..100 {
            assert_eq!(off.check_at(a, t0), Ok(()));
        }
    }
}
