//! Activity charts: sign-ins per device on the Devices page, and device logins
//! per hour on the admin Overview page.
//!
//! Charts are drawn on the server by `plotters` into SVG, so they need no
//! JavaScript. Each SVG is an image with a `<title>` and a `<desc>` that says
//! what it shows, and every chart comes with a table of the same numbers.

use super::admin::Admin;
use super::pages::{render, PageResult};
use crate::error::ApiError;
use crate::state::{now, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use latchkey_domain::Timestamp;
use latchkey_store::{DaySignIns, LoginOutcome, LoginOverview, UserId};
use plotters::prelude::*;
use std::collections::HashMap;

/// Days the Devices page charts, today included.
pub const DEVICE_DAYS: i64 = 30;
/// Hours the Overview page charts, this hour included.
pub const OVERVIEW_HOURS: i64 = 7 * 24;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Line colours with at least 3:1 contrast on white (WCAG non-text contrast).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x5f, 0xbf),
    RGBColor(0xb3, 0x3c, 0x00),
    RGBColor(0x1b, 0x7a, 0x3d),
    RGBColor(0x8a, 0x2b, 0x9e),
    RGBColor(0xa3, 0x1b, 0x4a),
    RGBColor(0x3d, 0x3d, 0x3d),
];

/// One line of a chart: its name and a value for each x from 0.
struct Line {
    name: String,
    values: Vec<i64>,
}

/// What a chart is about, for people who cannot see it.
struct Caption<'a> {
    id: &'a str,
    title: &'a str,
    desc: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
}

/// Draws `lines` over x = 0..len as an accessible inline SVG, or `None` if drawing failed
/// (the page then shows the table alone).
fn line_chart(lines: &[Line], len: i64, x_label: &dyn Fn(&i64) -> String, caption: &Caption<'_>) -> Option<String> {
    let top = lines.iter().flat_map(|l| l.values.iter().copied()).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        // Its own white ground, so the dark text stays readable whatever the page's colours.
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0i64..(len - 1).max(1), 0i64..top + (top + 4) / 5)
            .ok()?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(x_label)
            .x_desc(caption.x_desc)
            .y_desc(caption.y_desc)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style(("sans-serif", 13).into_font().color(&BLACK))
            .axis_desc_style(("sans-serif", 14).into_font().color(&BLACK))
            .draw()
            .ok()?;
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points = line.values.iter().enumerate().map(|(x, v)| (x as i64, *v));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .ok()?
                .label(line.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(0x99, 0x99, 0x99))
                .label_font(("sans-serif", 13).into_font().color(&BLACK))
                .draw()
                .ok()?;
        }
        root.present().ok()?;
    }
    Some(accessible(&svg, caption))
}

/// Escapes text for HTML or SVG content and attributes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Makes `plotters`' SVG an image named by its `<title>` and `<desc>`, as wide as the page allows.
fn accessible(svg: &str, c: &Caption<'_>) -> String {
    let body = svg.find('>').map_or("", |i| &svg[i + 1..]);
    let viewbox = svg.split("viewBox=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("0 0 720 300");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"{viewbox}\" width=\"100%\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" focusable=\"false\">\
         <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>{body}",
        id = c.id,
        title = escape(c.title),
        desc = escape(c.desc),
    )
}

/// A UTC date as "Nov 30", from days since the epoch.
fn day_label(day: i64) -> String {
    let fmt = time::macros::format_description!("[month repr:short] [day padding:none]");
    time::OffsetDateTime::from_unix_timestamp(day * 86_400).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

/// A UTC hour as "Nov 30 14:00", from hours since the epoch.
fn hour_label(hour: i64) -> String {
    format!("{} {:02}:00", day_label(hour.div_euclid(24)), hour.rem_euclid(24))
}

/// One device's row in the table under the Devices chart.
pub struct DeviceActivityRow {
    /// The device's ID (for the row's id attribute).
    pub device_id: String,
    /// Its name.
    pub name: String,
    /// Sign-ins today (UTC).
    pub today: i64,
    /// Sign-ins in the last 7 days, today included.
    pub week: i64,
    /// Sign-ins in the last 30 days, today included.
    pub month: i64,
}

/// The Devices page's chart and its table.
#[derive(Default)]
pub struct DeviceActivity {
    /// The chart, as inline SVG markup (absent if there was nothing to draw or drawing failed).
    pub svg: Option<String>,
    /// The same numbers, a row per device that signed in during the period.
    pub rows: Vec<DeviceActivityRow>,
    /// Sign-ins over the whole period.
    pub total: i64,
}

/// The signed-in user's sign-ins per device over the last [`DEVICE_DAYS`] days;
/// `names` maps device IDs to names.
pub async fn device_activity(
    state: &AppState,
    user_id: &str,
    names: &[(String, String)],
) -> Result<DeviceActivity, ApiError> {
    let today = now().as_millis().div_euclid(DAY_MS);
    let first = today - (DEVICE_DAYS - 1);
    let since = Timestamp::from_millis(first * DAY_MS);
    let counts = state.store.device_sign_ins(UserId(user_id), since).await?;
    Ok(device_chart(&counts, names, first, today))
}

fn device_chart(counts: &[DaySignIns], names: &[(String, String)], first: i64, today: i64) -> DeviceActivity {
    let mut per_device: Vec<(String, Vec<i64>)> = Vec::new();
    for c in counts {
        let Some(x) = usize::try_from(c.day - first).ok().filter(|x| *x < DEVICE_DAYS as usize) else { continue };
        let slot = match per_device.iter().position(|(id, _)| *id == c.device_id) {
            Some(i) => i,
            None => {
                per_device.push((c.device_id.clone(), vec![0; DEVICE_DAYS as usize]));
                per_device.len() - 1
            }
        };
        per_device[slot].1[x] += c.count;
    }
    let name_of: HashMap<&str, &str> = names.iter().map(|(id, n)| (id.as_str(), n.as_str())).collect();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (id, values) in per_device {
        let name = name_of.get(id.as_str()).map_or_else(|| "a removed device".to_string(), |n| n.to_string());
        let sum_last = |days: usize| values.iter().rev().take(days).sum::<i64>();
        rows.push(DeviceActivityRow {
            device_id: id.clone(),
            name: name.clone(),
            today: sum_last(1),
            week: sum_last(7),
            month: sum_last(DEVICE_DAYS as usize),
        });
        lines.push(Line { name, values });
    }
    let total: i64 = rows.iter().map(|r| r.month).sum();
    if rows.is_empty() {
        return DeviceActivity::default();
    }
    let busiest = rows.iter().max_by_key(|r| r.month).map(|r| r.name.clone()).unwrap_or_default();
    let desc = format!(
        "A line per device: how many times it signed in each day from {} to {} (UTC). {} sign-ins in all across {} device{}; the most from {}. The table below has the numbers.",
        day_label(first),
        day_label(today),
        total,
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        busiest,
    );
    let caption = Caption {
        id: "device-activity-chart",
        title: "Sign-ins per device, last 30 days",
        desc: &desc,
        x_desc: "Day (UTC)",
        y_desc: "Sign-ins",
    };
    let label = move |x: &i64| day_label(first + x);
    let svg = line_chart(&lines, DEVICE_DAYS, &label, &caption);
    DeviceActivity { svg, rows, total }
}

/// One outcome's row in the table under the Overview chart.
pub struct OutcomeRow {
    /// "Started", "Approved", …
    pub label: &'static str,
    /// In the last 24 hours.
    pub day: i64,
    /// In the last 7 days.
    pub week: i64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    svg: Option<String>,
    rows: Vec<OutcomeRow>,
    active_devices: i64,
    active_users: i64,
}

/// `GET /overview`: device logins per hour over the last week, and what is active (admins only).
pub async fn overview(State(state): State<AppState>, Admin(w): Admin) -> PageResult {
    let now = now();
    let this_hour = now.as_millis().div_euclid(HOUR_MS);
    let first = this_hour - (OVERVIEW_HOURS - 1);
    let since = Timestamp::from_millis(first * HOUR_MS);
    let expired_before = now.plus_secs(-state.config.device_code_lifetime_secs());
    let o = state.store.login_overview(since, expired_before).await.map_err(ApiError::from)?;
    let (svg, rows) = overview_chart(&o, first, this_hour);
    Ok(render(
        StatusCode::OK,
        &OverviewPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            svg,
            rows,
            active_devices: o.active_devices,
            active_users: o.active_users,
        },
    ))
}

fn overview_chart(o: &LoginOverview, first: i64, this_hour: i64) -> (Option<String>, Vec<OutcomeRow>) {
    let len = OVERVIEW_HOURS as usize;
    let mut lines: Vec<Line> =
        LoginOutcome::ALL.iter().map(|k| Line { name: k.label().to_string(), values: vec![0; len] }).collect();
    for h in &o.hours {
        let Some(x) = usize::try_from(h.hour - first).ok().filter(|x| *x < len) else { continue };
        if let Some(i) = LoginOutcome::ALL.iter().position(|k| *k == h.outcome) {
            lines[i].values[x] += h.count;
        }
    }
    let rows: Vec<OutcomeRow> = lines
        .iter()
        .zip(LoginOutcome::ALL)
        .map(|(l, k)| OutcomeRow {
            label: k.label(),
            day: l.values.iter().rev().take(24).sum(),
            week: l.values.iter().sum(),
        })
        .collect();
    let summary: Vec<String> = rows.iter().map(|r| format!("{} {}", r.week, r.label.to_lowercase())).collect();
    let desc = format!(
        "Four lines, one per outcome: device logins started, approved, denied and expired in each hour from {} to {} (UTC). Over the week: {}. The table below has the totals.",
        hour_label(first),
        hour_label(this_hour),
        summary.join(", "),
    );
    let caption = Caption {
        id: "login-activity-chart",
        title: "Device logins per hour, last 7 days",
        desc: &desc,
        x_desc: "Hour (UTC)",
        y_desc: "Logins",
    };
    let label = move |x: &i64| day_label((first + x).div_euclid(24));
    (line_chart(&lines, OVERVIEW_HOURS, &label, &caption), rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey_store::HourCount;

    #[test]
    fn the_device_chart_counts_per_device_and_is_an_image_with_a_text_alternative() {
        let counts = vec![
            DaySignIns { device_id: "a".into(), day: 100, count: 2 },
            DaySignIns { device_id: "a".into(), day: 95, count: 1 },
            DaySignIns { device_id: "b".into(), day: 80, count: 4 },
        ];
        let names = vec![("a".to_string(), "laptop <1>".to_string())];
        let a = device_chart(&counts, &names, 71, 100);
        assert_eq!(a.total, 7);
        assert_eq!(
            (a.rows[0].name.as_str(), a.rows[0].today, a.rows[0].week, a.rows[0].month),
            ("laptop <1>", 2, 3, 3)
        );
        assert_eq!((a.rows[1].name.as_str(), a.rows[1].today, a.rows[1].month), ("a removed device", 0, 4));
        let svg = a.svg.unwrap();
        assert!(svg.starts_with("<svg ") && svg.contains("role=\"img\""), "{svg}");
        assert!(svg.contains("<title id=\"device-activity-chart-title\">Sign-ins per device"));
        assert!(svg.contains("laptop &lt;1&gt;") && !svg.contains("laptop <1>"));
        assert!(device_chart(&[], &names, 71, 100).svg.is_none());
    }

    #[test]
    fn the_overview_counts_each_outcome_per_hour() {
        let o = LoginOverview {
            hours: vec![
                HourCount { outcome: LoginOutcome::Started, hour: 1000, count: 3 },
                HourCount { outcome: LoginOutcome::Expired, hour: 900, count: 1 },
                HourCount { outcome: LoginOutcome::Approved, hour: 500, count: 9 },
            ],
            active_devices: 2,
            active_users: 1,
        };
        let (svg, rows) = overview_chart(&o, 1000 - 167, 1000);
        let got: Vec<_> = rows.iter().map(|r| (r.label, r.day, r.week)).collect();
        assert_eq!(got, vec![("Started", 3, 3), ("Approved", 0, 0), ("Denied", 0, 0), ("Expired", 0, 1)]);
        assert!(svg.unwrap().contains("<desc id=\"login-activity-chart-desc\">Four lines"));
    }
}
