//! When to fetch a provider's remote JWKS: at start, then every `jwksRefreshSeconds` (Istio's
//! `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`, 20 minutes by default) after a success; after a failure
//! again in 1 s, doubling up to 60 s, keeping the last good keys meanwhile. One fetch at a time.
//! Pure: the caller passes the clock (seconds) and starts the fetch.

/// The first retry delay after a failed fetch.
pub const FIRST_RETRY_SECS: u64 = 1;
/// The longest retry delay.
pub const MAX_RETRY_SECS: u64 = 60;

/// The fetch schedule of one remote JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSchedule {
    next_at: u64,
    retry_secs: u64,
    in_flight: bool,
}

impl Default for JwksSchedule {
    fn default() -> JwksSchedule {
        JwksSchedule::new()
    }
}

impl JwksSchedule {
    /// Due at once.
    pub fn new() -> JwksSchedule {
        JwksSchedule {
            next_at: 0,
            retry_secs: FIRST_RETRY_SECS,
            in_flight: false,
        }
    }

    /// A fetch should start now: none is in flight and its time has come.
    pub fn is_due(&self, now: u64) -> bool {
        !self.in_flight && self.next_at <= now
    }

    /// A fetch was started.
    pub fn started(&mut self) {
        self.in_flight = true;
    }

    /// The fetch answered with good keys: next refresh in `refresh_secs`.
    pub fn succeeded(&mut self, now: u64, refresh_secs: u64) {
        self.in_flight = false;
        self.retry_secs = FIRST_RETRY_SECS;
        self.next_at = now.saturating_add(refresh_secs);
    }

    /// The fetch failed (or could not start): retry after the current delay, which then
    /// doubles up to [`MAX_RETRY_SECS`]. Returns the delay, for the log line.
    pub fn failed(&mut self, now: u64) -> u64 {
        let delay = self.retry_secs;
        self.in_flight = false;
        self.next_at = now.saturating_add(delay);
        self.retry_secs = delay.saturating_mul(2).min(MAX_RETRY_SECS);
        delay
    }

    /// The fetch's response arrived (success or not is decided next).
    pub fn answered(&mut self) {
        self.in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_start_and_not_again_while_in_flight() {
        let mut s = JwksSchedule::new();
        assert!(s.is_due(0));
        s.started();
        assert!(!s.is_due(10_000));
    }

    #[test]
    fn success_waits_for_the_refresh_interval() {
        let mut s = JwksSchedule::new();
        s.started();
        s.succeeded(100, 1200);
        assert!(!s.is_due(1299));
        assert!(s.is_due(1300));
    }

    #[test]
    fn failures_back_off_from_one_second_doubling_to_sixty() {
        let mut s = JwksSchedule::new();
        let mut delays = Vec::new();
        let mut now = 0;
        for _ in 0..9 {
            s.started();
            let d = s.failed(now);
            delays.push(d);
            assert!(!s.is_due(now + d - 1));
            now += d;
            assert!(s.is_due(now));
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // A success resets the back-off.
        s.succeeded(now, 1200);
        assert_eq!(s.failed(now), 1);
    }
}
