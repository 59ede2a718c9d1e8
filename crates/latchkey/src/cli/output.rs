//! Printing for people and for scripts.

use latchkey_proto::api::DeviceInfo;
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

/// The location as people should read it.
pub fn location(l: &Option<String>) -> String {
    l.clone().unwrap_or_else(|| "(not set yet)".into())
}

/// A table of devices.
pub fn devices(list: &[DeviceInfo]) {
    println!("{:<2}{:<38} {:<24} {:<22} {:<20} {:<8} LAST SEEN", "", "ID", "SLUG", "NAME", "LOCATION", "STATUS");
    for d in list {
        let mark = if d.current { "*" } else { "" };
        let seen = d.last_seen_at_ms.map(when).unwrap_or_else(|| "never".into());
        println!(
            "{:<2}{:<38} {:<24} {:<22} {:<20} {:<8} {}",
            mark,
            d.id,
            d.slug,
            truncate(&d.name, 22),
            truncate(&location(&d.location), 20),
            d.status,
            seen
        );
    }
    if list.iter().any(|d| d.current) {
        println!("(* this device)");
    }
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
