//! Small typed values of the command language: durations, event kinds, times
//! of day and time zones. Pure parsers with their error sentences.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::{civil, tz::TimeZone, Timestamp};

/// A `--limit` value: a whole number from 1 to `max`.
pub fn parse_limit(v: &str, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{v}` is not a number from 1 to {max}")),
    }
}

/// Parses `30s`, `30m`, `6h`, `7d` or `2w`: a whole number and one unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let expected = || format!("`{text}` is not a duration (expected e.g. 30s, 30m, 6h, 7d, 2w)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    if n == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    n.checked_mul(seconds)
        .filter(|s| *s <= 520 * 604_800)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is longer than ten years"))
}

/// Formats a duration in the largest unit that divides it: `90m` → `90m`, `7d` → `1w`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// A kind of membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// Somebody joined by link.
    Joined,
    /// Somebody left.
    Left,
    /// An admin added somebody.
    Added,
    /// An admin removed somebody.
    Removed,
    /// Somebody was made admin.
    Promoted,
    /// Somebody lost admin.
    Demoted,
    /// Group settings changed (name, description, who may add...).
    Settings,
    /// Anything else the provider reports.
    Other,
}

impl EventKind {
    /// Every kind, in the order help lists them.
    pub const ALL: [EventKind; 8] = [
        EventKind::Joined,
        EventKind::Left,
        EventKind::Added,
        EventKind::Removed,
        EventKind::Promoted,
        EventKind::Demoted,
        EventKind::Settings,
        EventKind::Other,
    ];

    /// The kind's name in the command language and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joined => "joined",
            EventKind::Left => "left",
            EventKind::Added => "added",
            EventKind::Removed => "removed",
            EventKind::Promoted => "promoted",
            EventKind::Demoted => "demoted",
            EventKind::Settings => "settings",
            EventKind::Other => "other",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("`{s}` is not a kind (expected {})", names.join(", "))
        })
    }
}

/// Parses a comma list of kinds, e.g. `joined,left`; duplicates collapse.
pub fn parse_kinds(text: &str) -> Result<Vec<EventKind>, String> {
    let mut kinds = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let kind: EventKind = part.parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err("--type needs at least one kind".into());
    }
    Ok(kinds)
}

/// A wall-clock time `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
}

impl FromStr for TimeOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day (expected HH:MM, 00:00 to 23:59)");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let ok = |p: &str| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        if !ok(h) || m.len() != 2 || !ok(m) {
            return Err(bad());
        }
        let (hour, minute) = (h.parse::<u8>().map_err(|_| bad())?, m.parse::<u8>().map_err(|_| bad())?);
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(TimeOfDay { hour, minute })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Parses an IANA time zone such as `Europe/Berlin` or `UTC`, in any case
/// (`europe/berlin` is the same zone; [`zone_name`] gives its canonical name).
/// `Etc/Unknown` is refused: it is a placeholder, not a place.
pub fn parse_tz(text: &str) -> Result<TimeZone, String> {
    let text = text.trim();
    match TimeZone::get(text) {
        Ok(tz) if tz.iana_name().is_some() => Ok(tz),
        _ => Err(format!(
            "`{text}` is not a time zone (expected an IANA name such as Europe/Berlin or UTC)"
        )),
    }
}

/// A zone's canonical IANA name, as stored and shown.
pub fn zone_name(tz: &TimeZone) -> &str {
    // Every zone `parse_tz` returns has one; only fixed offsets have none.
    tz.iana_name().unwrap_or("UTC")
}

/// An instant as wall-clock time in `tz`.
pub fn wall_clock(tz: &TimeZone, t: Timestamp) -> civil::DateTime {
    tz.to_datetime(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, secs) in [
            ("30s", 30),
            ("30m", 1800),
            ("6h", 21_600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            (" 1d ", 86_400),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for bad in [
            "",
            "30",
            "m",
            "1.5h",
            "-1h",
            "1y",
            "1M",
            "1h30m",
            "30 m",
            "0m",
            "99999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("0s").unwrap_err(), "`0s` must be longer than zero");
        assert_eq!(
            parse_duration("1y").unwrap_err(),
            "`1y` is not a duration (expected e.g. 30s, 30m, 6h, 7d, 2w)"
        );
    }

    #[test]
    fn duration_round_trip() {
        for text in ["30s", "90s", "30m", "90m", "6h", "1d", "2w"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "1w");
    }

    #[test]
    fn kinds() {
        assert_eq!(
            parse_kinds("joined,LEFT, added"),
            Ok(vec![EventKind::Joined, EventKind::Left, EventKind::Added])
        );
        assert_eq!(parse_kinds("joined,joined"), Ok(vec![EventKind::Joined]));
        let all = EventKind::ALL.map(|k| k.as_str()).join(",");
        assert_eq!(parse_kinds(&all).unwrap().len(), 8);
        assert!(parse_kinds("").is_err());
        assert_eq!(
            parse_kinds("joined,kicked").unwrap_err(),
            "`kicked` is not a kind (expected joined, left, added, removed, promoted, demoted, settings, other)"
        );
    }

    #[test]
    fn times_of_day() {
        assert_eq!("09:30".parse(), Ok(TimeOfDay { hour: 9, minute: 30 }));
        assert_eq!("9:05".parse::<TimeOfDay>().unwrap().to_string(), "09:05");
        assert_eq!("23:59".parse(), Ok(TimeOfDay { hour: 23, minute: 59 }));
        for bad in ["24:00", "12:60", "12", "12:5", "ab:cd", "", "-1:00", "123:00"] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones() {
        let berlin = parse_tz("Europe/Berlin").unwrap();
        assert_eq!(zone_name(&berlin), "Europe/Berlin");
        assert_eq!(zone_name(&parse_tz(" europe/BERLIN ").unwrap()), "Europe/Berlin");
        assert_eq!(parse_tz("UTC"), Ok(TimeZone::UTC));
        assert_eq!(zone_name(&parse_tz("utc").unwrap()), "UTC");
        for bad in ["Mars/Olympus", "Etc/Unknown", "", "+01:00"] {
            assert!(parse_tz(bad).unwrap_err().contains("not a time zone"), "{bad}");
        }
        // 12:00 UTC is 13:00 in Berlin in winter and 14:00 in summer.
        let at = |s: &str| wall_clock(&berlin, s.parse().unwrap()).to_string();
        assert_eq!(at("2026-11-24T12:00:00Z"), "2026-11-24T13:00:00");
        assert_eq!(at("2026-07-01T12:00:00Z"), "2026-07-01T14:00:00");
    }
}
