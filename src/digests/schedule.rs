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

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::core::values::{parse_tz, timestamp, TimeOfDay};

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
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.every_s % DAY != 0 {
            let every = self.every_s;
            let next = (t.timestamp().div_euclid(every) + 1) * every;
            return Utc
                .timestamp_opt(next, 0)
                .single()
                .unwrap_or(t + Duration::seconds(every));
        }
        let days = self.every_s / DAY;
        let at = self.at.unwrap_or(TimeOfDay { hour: 0, minute: 0 });
        let offset = self.tz.to_offset(timestamp(t)).seconds();
        let local_date = (t.naive_utc() + Duration::seconds(offset.into())).date();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        // The boundary is on a day d with (d - epoch) % days == 0; start one
        // period back so a boundary later today (or just after a DST gap) is seen.
        let from = (local_date - epoch).num_days() - days - 1;
        let mut day = from + (days - from.rem_euclid(days)) % days;
        loop {
            let date = epoch + Duration::days(day);
            let boundary = self.local(
                date.and_hms_opt(u32::from(at.hour), u32::from(at.minute), 0)
                    .expect("valid time"),
            );
            if boundary > t {
                return boundary;
            }
            day += days;
        }
    }

    /// A local wall-clock time as an instant; inside a DST gap, the first instant after it.
    fn local(&self, naive: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = naive;
        for _ in 0..180 {
            let Some(civil) = civil(probe) else { break };
            let ambiguous = self.tz.to_ambiguous_timestamp(civil);
            // In a fold (clocks set back) the earlier of the two instants; in a gap, none.
            if !matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. }) {
                if let Some(t) = ambiguous
                    .earlier()
                    .ok()
                    .and_then(|t| Utc.timestamp_opt(t.as_second(), 0).single())
                {
                    return t;
                }
            }
            probe += Duration::minutes(1);
        }
        Utc.from_utc_datetime(&naive)
    }
}

/// A chrono wall-clock time as jiff's, to the second; `None` outside jiff's years.
fn civil(naive: NaiveDateTime) -> Option<jiff::civil::DateTime> {
    jiff::civil::DateTime::new(
        i16::try_from(naive.year()).ok()?,
        i8::try_from(naive.month()).ok()?,
        i8::try_from(naive.day()).ok()?,
        i8::try_from(naive.hour()).ok()?,
        i8::try_from(naive.minute()).ok()?,
        i8::try_from(naive.second()).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
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
        assert_eq!(before - s.next_after(t("2026-03-27T12:00:00Z")), Duration::hours(23));
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
                crate::core::values::wall_clock(&s.tz, next)
                    .strftime("%a %H:%M")
                    .to_string(),
                "Thu 09:00"
            );
            last = next;
            at = next;
        }
    }
}
