//! The virtual clock. Nothing in dwsim reads the wall clock: long-running work (an LCS
//! deployment, a Retry-After window, token expiry) advances this clock instead of sleeping.

use serde::{Deserialize, Serialize};

/// Unix seconds of the fixed epoch every world starts at: 2026-01-01T00:00:00Z.
pub const EPOCH_UNIX_SECONDS: i64 = 1_767_225_600;

/// The last instant the clock reaches: 9999-12-31T23:59:59Z, the last one ISO 8601 writes
/// with four year digits.
pub const MAX_INSTANT: Instant = Instant((253_402_300_799 - EPOCH_UNIX_SECONDS) * 1000);

/// Milliseconds since [`EPOCH_UNIX_SECONDS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Instant(pub i64);

impl Instant {
    /// This instant moved on by whole minutes (saturating at the end of time).
    pub fn plus_minutes(self, minutes: i64) -> Instant {
        Instant(self.0.saturating_add(minutes.saturating_mul(60_000)))
    }
    /// This instant moved on by whole seconds (saturating at the end of time).
    pub fn plus_seconds(self, seconds: i64) -> Instant {
        Instant(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
    /// Seconds since the Unix epoch, as tokens and LCS dates carry them.
    pub fn unix_seconds(self) -> i64 {
        EPOCH_UNIX_SECONDS + self.0.div_euclid(1000)
    }
    /// The instant at whole Unix seconds (what a token's `exp` claim carries).
    pub fn from_unix_seconds(seconds: i64) -> Instant {
        Instant(
            seconds
                .saturating_sub(EPOCH_UNIX_SECONDS)
                .saturating_mul(1000),
        )
    }
    /// Reads `YYYY-MM-DDTHH:MM:SSZ` (what [`Instant::iso`] writes); none when it is not that.
    pub fn parse_iso(text: &str) -> Option<Instant> {
        let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 59 {
            return None;
        }
        let days = days_from_civil(y, m, day);
        Some(Instant::from_unix_seconds(
            days * 86_400 + h * 3600 + min * 60 + sec,
        ))
    }
    /// ISO 8601 in UTC with a `Z`, as Dataverse and F&O write timestamps.
    pub fn iso(self) -> String {
        // Every write stamps the same instant until the clock moves: the last text is kept.
        thread_local! {
            static LAST: std::cell::RefCell<(Instant, String)> = Default::default();
        }
        LAST.with_borrow_mut(|(at, text)| {
            if *at != self || text.is_empty() {
                *at = self;
                *text = self.format_iso();
            }
            text.clone()
        })
    }

    fn format_iso(self) -> String {
        let secs = self.unix_seconds();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// The clock a world owns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Clock {
    now: Instant,
}

impl Clock {
    /// A clock `ms` milliseconds after the epoch (never before it).
    pub fn starting_at(ms: i64) -> Clock {
        Clock {
            now: Instant(ms.max(0)),
        }
    }
    /// The virtual now.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Moves the clock on; a negative step does nothing, so time never runs back, and it
    /// stops at [`MAX_INSTANT`] rather than wrap.
    pub fn advance_ms(&mut self, ms: i64) {
        self.now = Instant(self.now.0.saturating_add(ms.max(0)).min(MAX_INSTANT.0));
    }
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formats_as_new_year_2026() {
        assert_eq!(Instant(0).iso(), "2026-01-01T00:00:00Z");
        assert_eq!(Instant(0).plus_minutes(61).iso(), "2026-01-01T01:01:00Z");
        assert_eq!(
            Instant(0).plus_minutes(60 * 24 * 59).iso(),
            "2026-03-01T00:00:00Z"
        );
    }

    #[test]
    fn iso_text_reads_back() {
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-12-03T13:45:07Z",
            "2028-02-29T23:59:59Z",
        ] {
            assert_eq!(Instant::parse_iso(text).unwrap().iso(), text);
        }
        assert_eq!(Instant::parse_iso("2026-13-01T00:00:00Z"), None);
        assert_eq!(Instant::parse_iso("yesterday"), None);
    }
}
