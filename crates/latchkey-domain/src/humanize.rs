//! Sign-ins described for people: which browser, and how long ago.
//!
//! Used where a person decides whether a sign-in was theirs ("New sign-in:
//! Dashboard on Chrome from 203.0.113.4, 2 minutes ago"), so the words must be
//! short and plain; the full User-Agent stays available beside them.

use crate::time::Timestamp;

/// A short name for the program behind a User-Agent: "Firefox on Linux",
/// "Chrome on Android", "latchkey-client". Unknown agents give their first word.
pub fn browser(user_agent: &str) -> String {
    let ua = user_agent.trim();
    if ua.is_empty() {
        return "an unknown browser".into();
    }
    // Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
    let name = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("CriOS/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    let Some(name) = name else {
        // A program, not a browser: its product token ("curl/8.5" -> "curl").
        let word = ua.split(['/', ' ']).next().unwrap_or(ua);
        return word.chars().take(40).collect();
    };
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, os)| *os);
    match os {
        Some(os) => format!("{name} on {os}"),
        None => name.into(),
    }
}

/// How long before `now` `then` was, in the largest whole unit: "just now",
/// "1 minute ago", "3 hours ago", "2 days ago".
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let secs = now.millis_since(then).max(0) / 1000;
    let (n, unit) = match secs {
        0..=59 => return "just now".into(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The time-zone regions that name a place (`Etc`, `UTC`, `GMT` and the like do not).
const PLACE_REGIONS: [&str; 9] =
    ["Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"];

/// A place to offer as a machine's location, from its IANA time zone:
/// `Europe/Berlin` → `Berlin, Europe`, `America/Argentina/Buenos_Aires` →
/// `Buenos Aires, Argentina`. Zones that name no place (`Etc/UTC`, `UTC`,
/// `Etc/GMT+3`) give `None`: better no default than a wrong-sounding one.
pub fn place_from_time_zone(zone: &str) -> Option<String> {
    let parts: Vec<&str> = zone.trim().split('/').collect();
    let (region, rest) = parts.split_first()?;
    if !PLACE_REGIONS.contains(region) || rest.is_empty() || rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let city = rest.last()?.replace('_', " ");
    let area = if rest.len() > 1 { rest[rest.len() - 2].replace('_', " ") } else { (*region).to_string() };
    Some(format!("{city}, {area}"))
}

/// Like [`ago`], but a time more than a minute ahead reads "in 12 minutes"
/// (an expiry), so one helper serves past and future.
pub fn relative(then: Timestamp, now: Timestamp) -> String {
    let ahead = then.millis_since(now) / 1000;
    if ahead < 60 {
        return ago(then, now);
    }
    let (n, unit) = match ahead {
        60..=3599 => (ahead / 60, "minute"),
        3600..=86_399 => (ahead / 3600, "hour"),
        _ => (ahead / 86_400, "day"),
    };
    format!("in {n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_with_their_system() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("latchkey-client/0.1.0", "latchkey-client"),
            ("curl/8.5.0", "curl"),
            ("", "an unknown browser"),
            ("   ", "an unknown browser"),
        ];
        for (ua, want) in cases {
            assert_eq!(browser(ua), want, "{ua:?}");
        }
    }

    #[test]
    fn a_long_unknown_agent_is_cut_short() {
        assert_eq!(browser(&"x".repeat(500)).chars().count(), 40);
    }

    #[test]
    fn ago_uses_the_largest_whole_unit() {
        let now = Timestamp::from_millis(10_000_000_000);
        let before = |secs: i64| now.plus_secs(-secs);
        assert_eq!(ago(before(0), now), "just now");
        assert_eq!(ago(before(59), now), "just now");
        assert_eq!(ago(before(60), now), "1 minute ago");
        assert_eq!(ago(before(150), now), "2 minutes ago");
        assert_eq!(ago(before(3600), now), "1 hour ago");
        assert_eq!(ago(before(86_399), now), "23 hours ago");
        assert_eq!(ago(before(86_400), now), "1 day ago");
        assert_eq!(ago(before(6 * 86_400), now), "6 days ago");
        assert_eq!(ago(now.plus_secs(30), now), "just now", "a clock a little ahead is not the future");
    }

    #[test]
    fn time_zones_give_a_place_or_nothing() {
        assert_eq!(place_from_time_zone("Europe/Berlin").as_deref(), Some("Berlin, Europe"));
        assert_eq!(place_from_time_zone("America/New_York").as_deref(), Some("New York, America"));
        assert_eq!(place_from_time_zone("America/Argentina/Buenos_Aires").as_deref(), Some("Buenos Aires, Argentina"));
        for none in ["Etc/UTC", "UTC", "GMT", "Etc/GMT+3", "", "Europe", "Europe/", "Factory"] {
            assert_eq!(place_from_time_zone(none), None, "{none:?}");
        }
    }

    #[test]
    fn relative_reads_the_future_too() {
        let now = Timestamp::from_millis(10_000_000_000);
        assert_eq!(relative(now.plus_secs(-180), now), "3 minutes ago");
        assert_eq!(relative(now.plus_secs(30), now), "just now");
        assert_eq!(relative(now.plus_secs(15 * 60), now), "in 15 minutes");
        assert_eq!(relative(now.plus_secs(3600), now), "in 1 hour");
        assert_eq!(relative(now.plus_secs(3 * 86_400), now), "in 3 days");
    }
}
