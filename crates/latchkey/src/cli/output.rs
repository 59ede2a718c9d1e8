//! Printing for people and for scripts.

use latchkey_proto::api::{DeviceInfo, SignInInfo};
use serde::Serialize;

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A UTC time for people, from ms since epoch.
pub fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    match std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs.max(0) as u64)) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', " UTC"),
        None => "unknown".into(),
    }
}

/// How long before `now_ms` a time was, for people ("3 minutes ago", "in 12 minutes");
/// `--json` keeps the exact times.
pub fn ago(ms: i64, now_ms: i64) -> String {
    use latchkey_domain::Timestamp;
    latchkey_domain::humanize::relative(Timestamp::from_millis(ms), Timestamp::from_millis(now_ms))
}

/// The location as people should read it.
pub fn location(l: &Option<String>) -> String {
    l.clone().unwrap_or_else(|| "(not set yet)".into())
}

/// How long a device or sign-in is marked new: 7 days, as the web pages announce them.
const NEW_FOR_MS: i64 = latchkey_proto::api::NEW_FOR_SECS * 1000;

/// Now, in ms since epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `*` for the one asking, `+` for one added in the last 7 days (check it was you).
fn mark(current: bool, created_at_ms: i64, now_ms: i64) -> &'static str {
    if current {
        "*"
    } else if now_ms - created_at_ms < NEW_FOR_MS {
        "+"
    } else {
        ""
    }
}

/// The legend under a table, for the marks it used.
fn legend(current: bool, new: bool, what: &str) {
    if current {
        println!("(* this {what})");
    }
    if new {
        println!("(+ new in the last 7 days: if it was not you, revoke it)");
    }
}

/// A table of devices; `+` marks those added in the last 7 days.
pub fn devices(list: &[DeviceInfo], now_ms: i64) {
    println!(
        "{:<2}{:<38} {:<24} {:<22} {:<20} {:<8} {:<16} LAST SEEN",
        "", "ID", "SLUG", "NAME", "LOCATION", "STATUS", "ADDED"
    );
    for d in list {
        let mark = mark(d.current, d.created_at_ms, now_ms);
        let seen = d.last_seen_at_ms.map(|t| ago(t, now_ms)).unwrap_or_else(|| "never".into());
        println!(
            "{:<2}{:<38} {:<24} {:<22} {:<20} {:<8} {:<16} {}",
            mark,
            d.id,
            d.slug,
            truncate(&d.name, 22),
            truncate(&location(&d.location), 20),
            d.status,
            ago(d.created_at_ms, now_ms),
            seen
        );
    }
    let new = list.iter().any(|d| mark(d.current, d.created_at_ms, now_ms) == "+");
    legend(list.iter().any(|d| d.current), new, "device");
}

/// Where a sign-in came from, for people: browser and IP address.
pub fn origin(s: &SignInInfo) -> String {
    let ua = if s.user_agent.is_empty() { "an unknown browser" } else { s.user_agent.as_str() };
    if s.ip.is_empty() {
        truncate(ua, 60)
    } else {
        format!("{} at {}", truncate(ua, 60), s.ip)
    }
}

/// A table of sign-ins that are not devices; `+` marks those from the last 7 days.
pub fn sign_ins(list: &[SignInInfo], now_ms: i64) {
    if list.is_empty() {
        println!("No sign-ins besides your devices (`latchkey devices list` shows those).");
        return;
    }
    println!("{:<2}{:<38} {:<20} {:<21} {:<40} IP", "", "ID", "APP", "SINCE", "BROWSER");
    for s in list {
        println!(
            "{:<2}{:<38} {:<20} {:<21} {:<40} {}",
            mark(s.current, s.created_at_ms, now_ms),
            s.id,
            truncate(&s.app, 20),
            ago(s.created_at_ms, now_ms),
            truncate(&s.user_agent, 40),
            s.ip
        );
    }
    let new = list.iter().any(|s| mark(s.current, s.created_at_ms, now_ms) == "+");
    legend(list.iter().any(|s| s.current), new, "sign-in");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_relatively() {
        let now = 1_800_000_000_000;
        assert_eq!(ago(now - 3 * 60_000, now), "3 minutes ago");
        assert_eq!(ago(now - 10_000, now), "just now");
        assert_eq!(ago(now + 15 * 60_000, now), "in 15 minutes");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC", "the exact form stays for what needs it");
    }
}
