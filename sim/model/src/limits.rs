//! Dataverse service protection limits, on the virtual clock: per user and environment, the
//! number of requests and their combined execution time over a sliding window, and the
//! number of concurrent requests. Defaults are the documented ones (6000 requests and
//! 1,200,000 ms per 300 s, 52 concurrent); a world can change them or switch them off.

use crate::clock::Instant;
use crate::error::{ErrorKind, SimError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The settings: what the admin verb `/_dwsim/limits` reads and changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceProtection {
    /// Whether the limits apply at all.
    pub enabled: bool,
    /// Length of the sliding window in seconds.
    pub window_seconds: i64,
    /// Requests per user and environment in one window.
    pub max_requests: u64,
    /// Combined execution time in milliseconds per user and environment in one window.
    pub max_execution_ms: i64,
    /// Concurrent requests per user.
    pub max_concurrent: u64,
    /// Virtual execution time charged to each request. The simulator has no real durations;
    /// 20 ms is a quick Web API call, so the time limit (60,000 such calls) never binds
    /// before the request limit does unless a test raises this.
    pub cost_ms: i64,
    /// Requests pretended to be in flight for every user besides the one being checked.
    /// The world sits behind one lock, so real concurrency never reaches the model; this
    /// is how an admin or a test simulates a burst of parallel calls.
    pub in_flight: u64,
}

impl Default for ServiceProtection {
    fn default() -> Self {
        ServiceProtection {
            enabled: true,
            window_seconds: 300,
            max_requests: 6000,
            max_execution_ms: 1_200_000,
            max_concurrent: 52,
            cost_ms: 20,
            in_flight: 0,
        }
    }
}

/// One admitted request: when it arrived and the execution time charged for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge(pub Instant, pub i64);

/// What is left in the caller's window after an admitted request, for the debug headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// Requests left in the window.
    pub requests: u64,
    /// Execution time left in the window, in milliseconds.
    pub execution_ms: i64,
}

/// The per-user windows of one world (the settings are in the world's `Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Admitted requests in the current window, by `{org}/{user}`.
    #[serde(default)]
    pub windows: BTreeMap<String, Vec<Charge>>,
    /// What the last admitted request left, taken by the router for its response headers.
    #[serde(skip)]
    pub last: Option<Remaining>,
}

impl Limits {
    /// Checks and records one request by `user` on environment `org` at `now`.
    ///
    /// The request and time limits are "only enforced after they have been exceeded": a
    /// request is refused only when the usage already in the window is over the limit, so
    /// the request that takes the count over still succeeds (with 6000, the 6001st passes
    /// and the 6002nd gets 429). The concurrency limit applies at once. Refused requests
    /// are not recorded, so waiting out Retry-After always admits the next one.
    pub fn check(
        &mut self,
        s: &ServiceProtection,
        org: &str,
        user: &str,
        now: Instant,
    ) -> Result<(), SimError> {
        self.last = None;
        if !s.enabled {
            return Ok(());
        }
        if s.in_flight.saturating_add(1) > s.max_concurrent {
            // Nothing in the model drains the pretend in-flight requests, so any wait is a
            // guess; one second is the shortest honest answer.
            return Err(throttled(
                "0x80072326",
                format!(
                    "Number of concurrent requests exceeded the limit of {}.",
                    s.max_concurrent
                ),
                1,
            ));
        }
        let window_ms = s.window_seconds.max(1) * 1000;
        let charges = self.windows.entry(format!("{org}/{user}")).or_default();
        charges.retain(|c| c.0 .0 > now.0 - window_ms);
        // Seconds until the oldest charges expire enough for `over` to be false again.
        let wait = |charges: &[Charge], over: &dyn Fn(u64, i64) -> bool| -> i64 {
            let (mut n, mut ms) = (charges.len() as u64, charges.iter().map(|c| c.1).sum());
            for c in charges {
                n -= 1;
                ms -= c.1;
                if !over(n, ms) {
                    let until = c.0 .0 + window_ms - now.0;
                    return ((until + 999) / 1000).max(1);
                }
            }
            1
        };
        let count = charges.len() as u64;
        let used: i64 = charges.iter().map(|c| c.1).sum();
        if count > s.max_requests {
            let retry = wait(charges, &|n, _| n > s.max_requests);
            return Err(throttled(
                "0x80072322",
                format!(
                    "Number of requests exceeded the limit of {} over time window of {} seconds.",
                    s.max_requests, s.window_seconds
                ),
                retry,
            ));
        }
        if used > s.max_execution_ms {
            let retry = wait(charges, &|_, ms| ms > s.max_execution_ms);
            return Err(throttled(
                "0x80072321",
                format!(
                    "Combined execution time of incoming requests exceeded limit of {}  milliseconds over time window of {} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                    thousands(s.max_execution_ms), s.window_seconds
                ),
                retry,
            ));
        }
        charges.push(Charge(now, s.cost_ms));
        self.last = Some(Remaining {
            requests: s.max_requests.saturating_sub(count + 1),
            execution_ms: (s.max_execution_ms - used - s.cost_ms).max(0),
        });
        Ok(())
    }

    /// The remaining budget of the last admitted request, once.
    pub fn take_remaining(&mut self) -> Option<Remaining> {
        self.last.take()
    }
}

fn throttled(code: &str, message: String, retry_after: i64) -> SimError {
    SimError::new(ErrorKind::Throttled(retry_after), code, message)
}

/// `1200000` as `1,200,000`, as the product writes the limit in its message.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windows and the settings they are checked against.
    struct Probe {
        windows: Limits,
        settings: ServiceProtection,
    }

    impl Probe {
        fn check(&mut self, org: &str, user: &str, now: Instant) -> Result<(), SimError> {
            self.windows.check(&self.settings, org, user, now)
        }
        fn take_remaining(&mut self) -> Option<Remaining> {
            self.windows.take_remaining()
        }
    }

    fn limits(max_requests: u64, max_execution_ms: i64, cost_ms: i64) -> Probe {
        Probe {
            windows: Limits::default(),
            settings: ServiceProtection {
                max_requests,
                max_execution_ms,
                cost_ms,
                ..ServiceProtection::default()
            },
        }
    }

    #[test]
    fn request_limit_is_enforced_after_it_is_exceeded_and_slides() {
        let mut l = limits(3, 1_200_000, 20);
        for s in 0..4 {
            assert!(
                l.check("org", "u", Instant(s * 1000)).is_ok(),
                "request {s}"
            );
        }
        let e = l.check("org", "u", Instant(10_000)).expect_err("throttled");
        assert_eq!(e.code, "0x80072322");
        assert_eq!(
            e.message,
            "Number of requests exceeded the limit of 3 over time window of 300 seconds."
        );
        // One of the four must expire; the oldest (at 0 s) leaves at 300 s.
        assert_eq!(e.kind, ErrorKind::Throttled(290));
        assert!(l.check("org", "other", Instant(10_000)).is_ok());
        assert!(l.check("org2", "u", Instant(10_000)).is_ok());
        assert!(l.check("org", "u", Instant(299_999)).is_err());
        assert!(l.check("org", "u", Instant(300_000)).is_ok());
    }

    #[test]
    fn execution_time_concurrency_and_switch_off() {
        let mut l = limits(6000, 1_000, 600);
        assert!(l.check("o", "u", Instant(0)).is_ok());
        assert_eq!(
            l.take_remaining(),
            Some(Remaining {
                requests: 5999,
                execution_ms: 400
            })
        );
        assert!(l.check("o", "u", Instant(0)).is_ok());
        let e = l.check("o", "u", Instant(0)).expect_err("throttled");
        assert_eq!(e.code, "0x80072321");
        assert!(e.message.starts_with(
            "Combined execution time of incoming requests exceeded limit of 1,000  milliseconds"
        ));
        assert_eq!(e.kind, ErrorKind::Throttled(300));

        l.settings.in_flight = 52;
        let e = l.check("o", "fresh", Instant(0)).expect_err("concurrency");
        assert_eq!(e.code, "0x80072326");
        assert_eq!(
            e.message,
            "Number of concurrent requests exceeded the limit of 52."
        );

        l.settings.enabled = false;
        assert!(l.check("o", "u", Instant(0)).is_ok());
        assert_eq!(l.take_remaining(), None);
        assert_eq!(thousands(1_200_000), "1,200,000");
        assert_eq!(thousands(999), "999");
    }
}
