//! Where digest windows begin and end. Pure: the same subscription gives the
//! same boundaries on every replica, so windows can be keyed by their start.
//!
//! - `--every` in whole days: windows end at `--at` (default 00:00) local time in
//!   the subscription's zone, on days counted from 1970-01-01 in steps of the
//!   period (so `7d` ends on the same weekday each week). Days with a DST jump
//!   are 23 or 25 hours long; a local time that does not exist that day (inside
//!   the spring gap) moves to the first instant after the gap.
//! - Anything else (`30m`, `6h`, `36h`): multiples of the period since the Unix
//!   epoch in UTC, so they never drift and DST cannot make two windows overlap.

use jiff::civil::{self, Date};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan as _};

use crate::values::{parse_tz, TimeOfDay};

const DAY: i64 = 86_400;

/// A subscription's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Period in seconds (at least 1).
    pub every_s: i64,
    /// Local time windows end at, for whole-day periods.
    pub at: Option<TimeOfDay>,
    /// The zone `at` and day boundaries are read in.
    pub tz: TimeZone,
}

impl Schedule {
    /// From the stored columns; an unreadable zone or time falls back to UTC midnight.
    pub fn from_stored(every_s: i64, at: Option<&str>, tz: &str) -> Self {
        Schedule {
            every_s: every_s.max(1),
            at: at.and_then(|a| a.parse().ok()),
            tz: parse_tz(tz).unwrap_or(TimeZone::UTC),
        }
    }

    /// The first window boundary strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Timestamp {
        if self.every_s % DAY != 0 {
            let every = self.every_s;
            let next = (t.as_second().div_euclid(every) + 1) * every;
            return Timestamp::from_second(next).unwrap_or(Timestamp::MAX);
        }
        let days = self.every_s / DAY;
        let at = self.at.unwrap_or(TimeOfDay { hour: 0, minute: 0 });
        let epoch = civil::date(1970, 1, 1);
        let local_date = self.tz.to_datetime(t).date();
        let days_since_epoch = i64::from(epoch.until(local_date).map_or(0, |span| span.get_days()));
        // The boundary is on a day d with (d - epoch) % days == 0; start one
        // period back so a boundary later today (or just after a DST gap) is seen.
        let from = days_since_epoch - days - 1;
        let mut day = from + (days - from.rem_euclid(days)) % days;
        loop {
            let Ok(date) = epoch.checked_add(day.days()) else {
                return Timestamp::MAX;
            };
            let boundary = self.local(date, at);
            if boundary > t {
                return boundary;
            }
            day += days;
        }
    }

    /// A local wall-clock time as an instant: in a fold (clocks set back) the
    /// earlier of the two; inside a DST gap, the first minute after it.
    fn local(&self, date: Date, at: TimeOfDay) -> Timestamp {
        let mut wall = date.at(at.hour as i8, at.minute as i8, 0, 0);
        // Gaps are at most a few hours; 180 minutes covers every zone's.
        for _ in 0..180 {
            let ambiguous = self.tz.to_ambiguous_timestamp(wall);
            if !matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. }) {
                if let Ok(t) = ambiguous.earlier() {
                    return t;
                }
            }
            let Ok(next) = wall.checked_add(1.minute()) else { break };
            wall = next;
        }
        TimeZone::UTC.to_timestamp(wall).unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(every_s: i64, at: Option<&str>, tz: &str) -> Schedule {
        Schedule::from_stored(every_s, at, tz)
    }

    #[test]
    fn sub_day_periods_are_utc_multiples() {
        let s = schedule(6 * 3600, None, "Europe/Berlin");
        assert_eq!(s.next_after(t("2026-11-24T12:00:00Z")), t("2026-11-24T18:00:00Z"));
        assert_eq!(s.next_after(t("2026-11-24T11:59:59Z")), t("2026-11-24T12:00:00Z"));
        let s = schedule(1, None, "UTC");
        assert_eq!(s.next_after(t("2026-11-24T12:00:00Z")), t("2026-11-24T12:00:01Z"));
        let s = schedule(300, None, "UTC");
        assert_eq!(s.next_after(t("2026-11-24T12:03:10Z")), t("2026-11-24T12:05:00Z"));
    }

    #[test]
    fn daily_at_a_local_time() {
        let s = schedule(DAY, Some("09:00"), "Europe/Berlin");
        // 09:00 in Berlin is 08:00 UTC in winter.
        assert_eq!(s.next_after(t("2026-11-24T07:59:00Z")), t("2026-11-24T08:00:00Z"));
        assert_eq!(s.next_after(t("2026-11-24T08:00:00Z")), t("2026-11-25T08:00:00Z"));
        // ... and 07:00 UTC in summer.
        assert_eq!(s.next_after(t("2026-07-01T12:00:00Z")), t("2026-07-02T07:00:00Z"));
        // Midnight UTC by default.
        let s = schedule(DAY, None, "UTC");
        assert_eq!(s.next_after(t("2026-11-24T12:00:00Z")), t("2026-11-25T00:00:00Z"));
    }

    #[test]
    fn across_dst_changes() {
        // Berlin springs forward on 2026-03-29 at 02:00 → 03:00.
        let s = schedule(DAY, Some("02:30"), "Europe/Berlin");
        assert_eq!(s.next_after(t("2026-03-28T12:00:00Z")), t("2026-03-29T01:00:00Z"));
        let s = schedule(DAY, Some("09:00"), "Europe/Berlin");
        let before = s.next_after(t("2026-03-28T12:00:00Z"));
        assert_eq!(before, t("2026-03-29T07:00:00Z"));
        // The window across the change is 23 hours long.
        assert_eq!(
            before.duration_since(s.next_after(t("2026-03-27T12:00:00Z"))),
            SignedDuration::from_hours(23)
        );
        // New York falls back on 2026-11-01 at 02:00 → 01:00: 01:30 happens twice,
        // and the window ends at the first (EDT, UTC-4).
        let s = schedule(DAY, Some("01:30"), "America/New_York");
        assert_eq!(s.next_after(t("2026-11-01T00:00:00Z")), t("2026-11-01T05:30:00Z"));
        assert_eq!(s.next_after(t("2026-11-01T05:30:00Z")), t("2026-11-02T06:30:00Z"));
    }

    #[test]
    fn weekly_windows_keep_their_weekday_and_increase() {
        let s = schedule(7 * DAY, Some("09:00"), "America/New_York");
        let mut at = t("2026-01-01T00:00:00Z");
        let mut last = at;
        for _ in 0..60 {
            let next = s.next_after(at);
            assert!(next > last);
            assert_eq!(
                crate::values::wall_clock(&s.tz, next).strftime("%a %H:%M").to_string(),
                "Thu 09:00"
            );
            last = next;
            at = next;
        }
    }
}
