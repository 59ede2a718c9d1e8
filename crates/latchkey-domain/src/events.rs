//! Multi-machine sync: event kinds, canonical event IDs, and interval merging.
//!
//! An event's identity is what the event is, never which machine saw it. A kind
//! declares its identity fields, the precision of its timestamps and how
//! captures combine:
//!
//! - `exact`: the identity fields alone are the event; a second capture is a duplicate.
//! - `interval`: the identity fields name a *series*; each capture covers a time
//!   interval, and captures of one series whose intervals overlap or touch are
//!   one event covering their union.
//!
//! The canonical ID is SHA-256 over the RFC 8785 (JCS) encoding of
//! `{"app", "identity", "kind", "user", "v": 1}` (plus `"start"` for an interval
//! event: the start of the merged interval), with strings in Unicode NFC and
//! timestamps in UTC at the kind's precision. `docs/events.md` specifies it
//! with test vectors. Because the union of intervals does not depend on the
//! order captures arrive in, neither does the stored result.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// Version of the ID derivation, part of every hashed document.
pub const ID_VERSION: i64 = 1;
/// Most identity fields a kind may declare.
pub const MAX_FIELDS: usize = 16;
/// Longest identity string, in bytes after NFC.
pub const MAX_STRING_BYTES: usize = 1024;

/// Why a kind declaration was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KindError {
    /// The kind's name is not 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    #[error("a kind's name is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    BadName,
    /// A field name is not 1–64 of `a-z 0-9 _`, starting with a letter or `_`.
    #[error("identity field {0:?}: a field name is 1 to 64 of a-z, 0-9 and '_', not starting with a digit")]
    BadField(String),
    /// The same field twice.
    #[error("identity field {0:?} is declared twice")]
    DuplicateField(String),
    /// No identity fields, or too many.
    #[error("a kind declares 1 to {MAX_FIELDS} identity fields")]
    FieldCount,
}

/// A kind's name, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KindName(String);

impl KindName {
    /// Checks a kind name.
    pub fn parse(s: &str) -> Result<Self, KindError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(KindName(s.to_string()))
        } else {
            Err(KindError::BadName)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KindName {
    type Error = KindError;
    fn try_from(s: String) -> Result<Self, KindError> {
        KindName::parse(&s)
    }
}

impl From<KindName> for String {
    fn from(k: KindName) -> String {
        k.0
    }
}

/// What an identity field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text, compared after Unicode NFC normalisation.
    String,
    /// A whole number (an occurrence number, a track number).
    Integer,
    /// An RFC 3339 time, compared in UTC at the kind's precision.
    Timestamp,
}

/// One identity field of a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The field's name in captures.
    pub name: String,
    /// What it holds.
    #[serde(rename = "type")]
    pub ty: FieldType,
}

/// How precisely a kind's times are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Whole minutes.
    Minute,
    /// Whole seconds.
    Second,
    /// Milliseconds.
    Millisecond,
}

impl Precision {
    fn unit_ms(self) -> i64 {
        match self {
            Precision::Minute => 60_000,
            Precision::Second => 1000,
            Precision::Millisecond => 1,
        }
    }

    /// `t` truncated to this precision.
    pub fn truncate(self, t: Timestamp) -> Timestamp {
        let u = self.unit_ms();
        Timestamp::from_millis(t.as_millis().div_euclid(u) * u)
    }
}

/// How captures of a kind combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergePolicy {
    /// The identity fields alone are the event.
    Exact,
    /// Identity fields plus a time interval; overlapping or touching intervals merge.
    Interval,
}

impl MergePolicy {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MergePolicy::Exact => "exact",
            MergePolicy::Interval => "interval",
        }
    }
}

/// A declared event kind, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSpec {
    /// Its name, unique within its app.
    pub name: KindName,
    /// The identity fields, in declaration order.
    pub identity: Vec<FieldSpec>,
    /// How precisely times are compared.
    pub precision: Precision,
    /// How captures combine.
    pub merge: MergePolicy,
}

impl KindSpec {
    /// Checks a declaration.
    pub fn new(
        name: &str,
        identity: Vec<FieldSpec>,
        precision: Precision,
        merge: MergePolicy,
    ) -> Result<Self, KindError> {
        let name = KindName::parse(name)?;
        if identity.is_empty() || identity.len() > MAX_FIELDS {
            return Err(KindError::FieldCount);
        }
        for (i, f) in identity.iter().enumerate() {
            let ok = (1..=64).contains(&f.name.len())
                && f.name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && f.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(KindError::BadField(f.name.clone()));
            }
            if identity[..i].iter().any(|g| g.name == f.name) {
                return Err(KindError::DuplicateField(f.name.clone()));
            }
        }
        Ok(KindSpec { name, identity, precision, merge })
    }
}

/// What declaring a kind does, given how it is declared already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declaration {
    /// Not declared yet: store it.
    Create,
    /// Declared just so: nothing to do.
    Unchanged,
    /// Declared with the same identity: only its retention changes.
    ChangeRetention,
    /// Declared with another identity, precision or merge policy, on which its
    /// events' IDs depend: refused.
    Conflict,
}

/// Plans a declaration of `spec` with `retention_secs` against `existing` (its spec and retention).
pub fn plan_declaration(
    existing: Option<(&KindSpec, Option<i64>)>,
    spec: &KindSpec,
    retention_secs: Option<i64>,
) -> Declaration {
    match existing {
        None => Declaration::Create,
        Some((old, _)) if old != spec => Declaration::Conflict,
        Some((_, old)) if old == retention_secs => Declaration::Unchanged,
        Some(_) => Declaration::ChangeRetention,
    }
}

/// Why one capture was refused (the rest of its batch still lands).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CaptureError {
    /// An identity field the kind declares is missing.
    #[error("identity field {0:?} is missing")]
    MissingField(String),
    /// A field the kind does not declare.
    #[error("{0:?} is not an identity field of this kind")]
    UnknownField(String),
    /// A field of the wrong type.
    #[error("identity field {field:?} must be {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A string too long.
    #[error("identity field {0:?} is longer than {MAX_STRING_BYTES} bytes")]
    TooLong(String),
    /// A time that is not RFC 3339 or out of range.
    #[error("{0:?} is not an RFC 3339 time with an offset, like 2026-11-30T09:00:00Z")]
    BadTime(String),
    /// An interval kind's capture without `start` and `end`, or an exact kind's with them.
    #[error("{0}")]
    IntervalShape(&'static str),
    /// An interval that ends before it starts.
    #[error("the interval ends before it starts")]
    EndsBeforeStart,
}

/// A closed time interval at a kind's precision: `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// First instant covered.
    pub start: Timestamp,
    /// Last instant covered.
    pub end: Timestamp,
}

impl Interval {
    /// Whether the two overlap or touch (share at least an endpoint).
    pub fn touches(self, other: Interval) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Whether `other` lies within this one.
    pub fn contains(self, other: Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The smallest interval covering both.
    pub fn hull(self, other: Interval) -> Interval {
        Interval { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A capture in canonical form: what its identity is, independent of who saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The identity fields, normalised, as a JSON object.
    pub identity: Value,
    /// Its time interval (interval kinds only).
    pub interval: Option<Interval>,
}

/// Parses an RFC 3339 time with an offset into UTC milliseconds at `precision`.
pub fn parse_time(s: &str, precision: Precision) -> Result<Timestamp, CaptureError> {
    let bad = || CaptureError::BadTime(s.chars().take(64).collect());
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| bad())?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())?;
    Ok(precision.truncate(Timestamp::from_millis(ms)))
}

/// A time as identity and the wire show it: RFC 3339 in UTC, with milliseconds
/// only at millisecond precision (`2026-11-30T09:00:00Z`, `…:00.123Z`).
pub fn format_time(t: Timestamp, precision: Precision) -> String {
    let fmt_s = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let fmt_ms =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let nanos = i128::from(t.as_millis()) * 1_000_000;
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else { return t.as_millis().to_string() };
    let out = match precision {
        Precision::Millisecond => dt.format(&fmt_ms),
        Precision::Second | Precision::Minute => dt.format(&fmt_s),
    };
    out.unwrap_or_else(|_| t.as_millis().to_string())
}

/// Checks a capture against its kind and puts it in canonical form.
pub fn canonicalize(
    kind: &KindSpec,
    identity: &Map<String, Value>,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<Canonical, CaptureError> {
    if let Some(unknown) = identity.keys().find(|k| !kind.identity.iter().any(|f| &f.name == *k)) {
        return Err(CaptureError::UnknownField(unknown.chars().take(64).collect()));
    }
    let mut out = Map::new();
    for f in &kind.identity {
        let v = identity.get(&f.name).ok_or_else(|| CaptureError::MissingField(f.name.clone()))?;
        let wrong = |expected| CaptureError::WrongType { field: f.name.clone(), expected };
        let canonical = match f.ty {
            FieldType::String => {
                let s: String = v.as_str().ok_or_else(|| wrong("a string"))?.nfc().collect();
                if s.len() > MAX_STRING_BYTES {
                    return Err(CaptureError::TooLong(f.name.clone()));
                }
                Value::String(s)
            }
            FieldType::Integer => Value::from(v.as_i64().ok_or_else(|| wrong("a whole number"))?),
            FieldType::Timestamp => {
                let s = v.as_str().ok_or_else(|| wrong("an RFC 3339 time"))?;
                Value::String(format_time(parse_time(s, kind.precision)?, kind.precision))
            }
        };
        out.insert(f.name.clone(), canonical);
    }
    let interval = match (kind.merge, start, end) {
        (MergePolicy::Exact, None, None) => None,
        (MergePolicy::Exact, _, _) => {
            return Err(CaptureError::IntervalShape("this kind is exact: send no start or end"));
        }
        (MergePolicy::Interval, Some(s), Some(e)) => {
            let (start, end) = (parse_time(s, kind.precision)?, parse_time(e, kind.precision)?);
            if end < start {
                return Err(CaptureError::EndsBeforeStart);
            }
            Some(Interval { start, end })
        }
        (MergePolicy::Interval, _, _) => {
            return Err(CaptureError::IntervalShape("this kind merges intervals: send both start and end"));
        }
    };
    Ok(Canonical { identity: Value::Object(out), interval })
}

/// SHA-256 of the RFC 8785 encoding of `doc`, in lowercase hex.
fn digest(doc: &Value) -> String {
    // A `Value` always serialises; an empty string would only ever be a bug, and it hashes like one.
    let bytes = serde_json_canonicalizer::to_vec(doc).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// The identity of a series (interval kinds) or of the event itself (exact kinds).
///
/// The hashed document is the RFC 8785 encoding of `{"app", "identity",
/// "kind", "user", "v"}`. It is written here directly, because this runs for
/// every capture and a general canonicaliser re-sorts and re-encodes the whole
/// document: the envelope's keys are already in RFC 8785 order, RFC 8785 and
/// `serde_json` encode strings alike, and the identity is canonicalised on its
/// own. A test holds it equal to the general encoding.
pub fn series_id(app: &str, user: &str, kind: &str, identity: &Value) -> String {
    let app: String = app.nfc().collect();
    let identity = serde_json_canonicalizer::to_vec(identity).unwrap_or_default();
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut doc = Vec::with_capacity(identity.len() + app.len() + user.len() + kind.len() + 64);
    doc.extend_from_slice(b"{\"app\":");
    doc.extend_from_slice(string(&app).as_bytes());
    doc.extend_from_slice(b",\"identity\":");
    doc.extend_from_slice(&identity);
    doc.extend_from_slice(b",\"kind\":");
    doc.extend_from_slice(string(kind).as_bytes());
    doc.extend_from_slice(b",\"user\":");
    doc.extend_from_slice(string(user).as_bytes());
    doc.extend_from_slice(format!(",\"v\":{ID_VERSION}}}").as_bytes());
    hex::encode(Sha256::digest(&doc))
}

/// The canonical ID of an event: its series' ID for an exact kind; for an
/// interval kind, the series' ID and the start of the event's merged interval.
pub fn event_id(series: &str, interval: Option<Interval>, precision: Precision) -> String {
    match interval {
        None => series.to_string(),
        Some(i) => digest(&serde_json::json!({
            "series": series,
            "start": format_time(i.start, precision),
            "v": ID_VERSION,
        })),
    }
}

/// What one interval capture does to its series' events (disjoint, non-touching intervals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalPlan {
    /// It lies within event `index`: a duplicate.
    Within(usize),
    /// A new event, touching none.
    New(Interval),
    /// The events at `absorbed` and the capture become one event covering `merged`.
    Merge {
        /// Indices of the existing events it touches (they are replaced).
        absorbed: Vec<usize>,
        /// The union.
        merged: Interval,
    },
}

/// Plans an interval capture against its series' existing events.
pub fn plan_interval(existing: &[Interval], capture: Interval) -> IntervalPlan {
    let touching: Vec<usize> =
        existing.iter().enumerate().filter(|(_, e)| e.touches(capture)).map(|(i, _)| i).collect();
    match touching.as_slice() {
        [] => IntervalPlan::New(capture),
        [one] if existing[*one].contains(capture) => IntervalPlan::Within(*one),
        _ => {
            let merged = touching.iter().fold(capture, |acc, &i| acc.hull(existing[i]));
            IntervalPlan::Merge { absorbed: touching, merged }
        }
    }
}

/// The devices that observed one event, each with when it first did, in the
/// order they first did (ties by device). Which devices saw an event is never
/// part of its identity; this is what is recorded beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observers(Vec<(String, Timestamp)>);

impl Observers {
    /// One device's first sighting.
    pub fn first(device: &str, at: Timestamp) -> Self {
        Self(vec![(device.to_string(), at)])
    }

    /// A set as stored, in any order; a device listed twice keeps its earliest sighting.
    pub fn from_sightings(sightings: impl IntoIterator<Item = (String, Timestamp)>) -> Self {
        let mut out = Self::default();
        for (device, at) in sightings {
            out.observe(&device, at);
        }
        out
    }

    /// Records that `device` saw the event at `at`; whether the set changed
    /// (a new device, or an earlier sighting of a known one).
    pub fn observe(&mut self, device: &str, at: Timestamp) -> bool {
        match self.0.iter().position(|(d, _)| d == device) {
            Some(i) if self.0[i].1 <= at => return false,
            Some(i) => {
                self.0.remove(i);
            }
            None => {}
        }
        let at_index = self.0.partition_point(|(d, t)| (*t, d.as_str()) < (at, device));
        self.0.insert(at_index, (device.to_string(), at));
        true
    }

    /// Adds every sighting of `other` (an event merged into this one); whether the set changed.
    pub fn absorb(&mut self, other: &Observers) -> bool {
        let mut changed = false;
        for (device, at) in &other.0 {
            changed |= self.observe(device, *at);
        }
        changed
    }

    /// The sightings, earliest first.
    pub fn sightings(&self) -> &[(String, Timestamp)] {
        &self.0
    }
}

#[cfg(test)]
// A broken promise fails the test, and panicking is how tests fail.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn meeting() -> KindSpec {
        let f = |name: &str, ty| FieldSpec { name: name.into(), ty };
        KindSpec::new(
            "meeting",
            vec![f("title", FieldType::String), f("starts", FieldType::Timestamp), f("occurrence", FieldType::Integer)],
            Precision::Minute,
            MergePolicy::Exact,
        )
        .expect("kind")
    }

    fn activity() -> KindSpec {
        let f = FieldSpec { name: "app".into(), ty: FieldType::String };
        KindSpec::new("activity", vec![f], Precision::Second, MergePolicy::Interval).expect("kind")
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn observers_keep_each_device_once_at_its_first_sighting_in_order() {
        let mut o = Observers::first("laptop", t(200));
        assert!(!o.observe("laptop", t(300)), "a later sighting of a known device changes nothing");
        assert!(o.observe("desktop", t(100)), "a new device is a change");
        assert!(o.observe("laptop", t(50)), "an earlier sighting replaces the later one");
        let seen: Vec<(&str, i64)> = o.sightings().iter().map(|(d, at)| (d.as_str(), at.as_millis())).collect();
        assert_eq!(seen, [("laptop", 50), ("desktop", 100)]);
        let mut other = Observers::first("phone", t(100));
        assert!(other.absorb(&o));
        assert!(!other.absorb(&o), "absorbing the same set twice changes nothing");
        let seen: Vec<&str> = other.sightings().iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(seen, ["laptop", "desktop", "phone"], "by time, then by device");
        let shuffled = Observers::from_sightings(other.sightings().iter().rev().cloned());
        assert_eq!(shuffled, other, "the stored order does not matter");
    }

    #[test]
    fn the_same_event_seen_differently_has_one_identity() {
        let k = meeting();
        // NFC vs NFD "é", another offset, seconds below the precision.
        let a = canonicalize(
            &k,
            &obj(serde_json::json!({"title": "Caf\u{e9}", "starts": "2026-11-30T10:00:00Z", "occurrence": 1})),
            None,
            None,
        );
        let b = canonicalize(
            &k,
            &obj(serde_json::json!({"occurrence": 1, "starts": "2026-11-30T11:00:42+01:00", "title": "Cafe\u{301}"})),
            None,
            None,
        );
        let (a, b) = (a.expect("a"), b.expect("b"));
        assert_eq!(a, b);
        assert_eq!(series_id("tray", "u1", "meeting", &a.identity), series_id("tray", "u1", "meeting", &b.identity));
        // A genuine repeat differs in a declared field, never in who saw it.
        let c = canonicalize(
            &k,
            &obj(serde_json::json!({"title": "Café", "starts": "2026-11-30T10:00:00Z", "occurrence": 2})),
            None,
            None,
        )
        .expect("c");
        assert_ne!(series_id("tray", "u1", "meeting", &a.identity), series_id("tray", "u1", "meeting", &c.identity));
        assert_ne!(series_id("tray", "u1", "meeting", &a.identity), series_id("tray", "u2", "meeting", &a.identity));
        assert_ne!(series_id("tray", "u1", "meeting", &a.identity), series_id("other", "u1", "meeting", &a.identity));
    }

    #[test]
    fn the_derivation_matches_its_written_vector() {
        // docs/events.md, vector 1: the exact bytes hashed, and the ID.
        let k = meeting();
        let c = canonicalize(
            &k,
            &obj(serde_json::json!({"title": "Caf\u{e9}", "starts": "2026-11-30T11:00:42+01:00", "occurrence": 1})),
            None,
            None,
        )
        .expect("c");
        let doc = serde_json::json!({"app": "tray", "identity": c.identity, "kind": "meeting", "user": "u1", "v": 1});
        let bytes = serde_json_canonicalizer::to_string(&doc).expect("jcs");
        assert_eq!(
            bytes,
            r#"{"app":"tray","identity":{"occurrence":1,"starts":"2026-11-30T10:00:00Z","title":"Café"},"kind":"meeting","user":"u1","v":1}"#
        );
        assert_eq!(series_id("tray", "u1", "meeting", &c.identity), hex::encode(Sha256::digest(bytes.as_bytes())));
    }

    #[test]
    fn bad_captures_say_what_is_wrong() {
        let k = meeting();
        let ok = serde_json::json!({"title": "x", "starts": "2026-11-30T10:00:00Z", "occurrence": 1});
        let with = |field: &str, v: Value| {
            let mut m = obj(ok.clone());
            m.insert(field.into(), v);
            canonicalize(&k, &m, None, None)
        };
        assert_eq!(with("extra", Value::Null), Err(CaptureError::UnknownField("extra".into())));
        let mut missing = obj(ok.clone());
        missing.remove("title");
        assert_eq!(canonicalize(&k, &missing, None, None), Err(CaptureError::MissingField("title".into())));
        assert!(matches!(with("occurrence", serde_json::json!(1.5)), Err(CaptureError::WrongType { .. })));
        assert!(matches!(with("title", serde_json::json!(7)), Err(CaptureError::WrongType { .. })));
        assert!(matches!(with("starts", serde_json::json!("yesterday")), Err(CaptureError::BadTime(_))));
        assert!(
            matches!(with("starts", serde_json::json!("2026-11-30T10:00:00")), Err(CaptureError::BadTime(_))),
            "an offset is required"
        );
        assert_eq!(with("title", Value::String("x".repeat(1025))), Err(CaptureError::TooLong("title".into())));
        assert!(matches!(
            canonicalize(&k, &obj(ok), Some("2026-11-30T10:00:00Z"), None),
            Err(CaptureError::IntervalShape(_))
        ));
        let a = activity();
        let m = obj(serde_json::json!({"app": "editor"}));
        assert!(matches!(canonicalize(&a, &m, None, None), Err(CaptureError::IntervalShape(_))));
        assert_eq!(
            canonicalize(&a, &m, Some("2026-11-30T10:00:01Z"), Some("2026-11-30T10:00:00Z")),
            Err(CaptureError::EndsBeforeStart)
        );
        let i =
            canonicalize(&a, &m, Some("2026-11-30T10:00:00.900Z"), Some("2026-11-30T10:00:00Z")).expect("same second");
        assert_eq!(i.interval.map(|i| i.start == i.end), Some(true), "truncated to the second, a zero-length interval");
    }

    #[test]
    fn a_kinds_identity_never_changes_but_its_retention_may() {
        let (m, a) = (meeting(), activity());
        assert_eq!(plan_declaration(None, &m, None), Declaration::Create);
        assert_eq!(plan_declaration(Some((&m, None)), &m, None), Declaration::Unchanged);
        assert_eq!(plan_declaration(Some((&m, Some(60))), &m, Some(60)), Declaration::Unchanged);
        assert_eq!(plan_declaration(Some((&m, None)), &m, Some(60)), Declaration::ChangeRetention);
        assert_eq!(plan_declaration(Some((&m, Some(60))), &m, None), Declaration::ChangeRetention);
        assert_eq!(plan_declaration(Some((&m, None)), &a, None), Declaration::Conflict);
        let finer = KindSpec { precision: Precision::Second, ..m.clone() };
        assert_eq!(plan_declaration(Some((&m, None)), &finer, None), Declaration::Conflict);
    }

    #[test]
    fn kinds_are_checked() {
        let f = |n: &str| FieldSpec { name: n.into(), ty: FieldType::String };
        assert!(KindSpec::new("clipboard.item", vec![f("hash")], Precision::Second, MergePolicy::Exact).is_ok());
        assert_eq!(KindSpec::new("Bad", vec![f("a")], Precision::Second, MergePolicy::Exact), Err(KindError::BadName));
        assert_eq!(KindSpec::new("k", vec![], Precision::Second, MergePolicy::Exact), Err(KindError::FieldCount));
        assert_eq!(
            KindSpec::new("k", vec![f("a"), f("a")], Precision::Second, MergePolicy::Exact),
            Err(KindError::DuplicateField("a".into()))
        );
        assert!(matches!(
            KindSpec::new("k", vec![f("1a")], Precision::Second, MergePolicy::Exact),
            Err(KindError::BadField(_))
        ));
    }

    #[test]
    fn times_are_utc_at_the_precision() {
        let s = parse_time("2026-11-30T10:00:42.999+02:00", Precision::Second).expect("t");
        assert_eq!(format_time(s, Precision::Second), "2026-11-30T08:00:42Z");
        let ms = parse_time("2026-11-30T10:00:42.999+02:00", Precision::Millisecond).expect("t");
        assert_eq!(format_time(ms, Precision::Millisecond), "2026-11-30T08:00:42.999Z");
        let m = parse_time("2026-11-30T10:00:42.999+02:00", Precision::Minute).expect("t");
        assert_eq!(format_time(m, Precision::Minute), "2026-11-30T08:00:00Z");
    }

    #[test]
    fn interval_plans() {
        let i = |a, b| Interval { start: t(a), end: t(b) };
        let existing = [i(0, 10), i(20, 30), i(40, 50)];
        assert_eq!(plan_interval(&existing, i(2, 8)), IntervalPlan::Within(0));
        assert_eq!(plan_interval(&existing, i(11, 19)), IntervalPlan::New(i(11, 19)));
        assert_eq!(
            plan_interval(&existing, i(10, 20)),
            IntervalPlan::Merge { absorbed: vec![0, 1], merged: i(0, 30) },
            "touching counts"
        );
        assert_eq!(
            plan_interval(&existing, i(25, 45)),
            IntervalPlan::Merge { absorbed: vec![1, 2], merged: i(20, 50) }
        );
        assert_eq!(plan_interval(&existing, i(35, 60)), IntervalPlan::Merge { absorbed: vec![2], merged: i(35, 60) });
    }

    /// Applies captures in order, as the store does, and returns the events' intervals, sorted.
    fn apply(captures: &[Interval]) -> Vec<Interval> {
        let mut events: Vec<Interval> = Vec::new();
        for &c in captures {
            match plan_interval(&events, c) {
                IntervalPlan::Within(_) => {}
                IntervalPlan::New(n) => events.push(n),
                IntervalPlan::Merge { absorbed, merged } => {
                    let mut keep: Vec<Interval> =
                        events.iter().enumerate().filter(|(i, _)| !absorbed.contains(i)).map(|(_, e)| *e).collect();
                    keep.push(merged);
                    events = keep;
                }
            }
        }
        events.sort();
        events
    }

    /// The general encoding [`series_id`] writes by hand.
    fn series_id_by_the_canonicaliser(app: &str, user: &str, kind: &str, identity: &Value) -> String {
        let app: String = app.nfc().collect();
        digest(&serde_json::json!({"app": app, "identity": identity, "kind": kind, "user": user, "v": ID_VERSION}))
    }

    proptest! {
        /// The hand-written envelope is byte for byte the RFC 8785 encoding,
        /// whatever the strings (escapes, controls, astral planes) and fields.
        #[test]
        fn series_ids_match_the_general_encoding(
            app in "\\PC{0,12}|[\\x00-\\x7f]{0,12}",
            user in "\\PC{0,12}",
            kind in "[a-z.\"\\\\\\x00-\\x1f]{0,10}",
            fields in proptest::collection::btree_map("\\PC{1,8}", prop_oneof![
                any::<i64>().prop_map(Value::from),
                "\\PC{0,16}|[\\x00-\\x1f\"\\\\\\u{7f}\\u{2028}]{0,8}".prop_map(Value::from),
            ], 0..5),
        ) {
            let identity = Value::Object(fields.into_iter().collect());
            prop_assert_eq!(
                series_id(&app, &user, &kind, &identity),
                series_id_by_the_canonicaliser(&app, &user, &kind, &identity)
            );
        }

        /// Whatever order captures arrive in, the events are the same: the union's components.
        #[test]
        fn the_result_does_not_depend_on_order(
            raw in proptest::collection::vec((0i64..200, 0i64..30), 1..40),
            seed in any::<u64>(),
        ) {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let captures: Vec<Interval> = raw.iter().map(|&(s, len)| Interval { start: t(s), end: t(s + len) }).collect();
            let mut shuffled = captures.clone();
            shuffled.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(seed));
            let a = apply(&captures);
            prop_assert_eq!(&a, &apply(&shuffled));
            // Disjoint and not touching, and covering exactly the captures.
            for w in a.windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            for c in &captures {
                prop_assert!(a.iter().any(|e| e.contains(*c)));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod vectors {
    //! The test vectors of `docs/events.md`: another implementation checks itself against these.
    use super::*;

    #[test]
    fn the_written_vectors_hold() {
        let f = |name: &str, ty| FieldSpec { name: name.into(), ty };
        let meeting = KindSpec::new(
            "meeting",
            vec![f("title", FieldType::String), f("starts", FieldType::Timestamp), f("occurrence", FieldType::Integer)],
            Precision::Minute,
            MergePolicy::Exact,
        )
        .unwrap();
        let activity =
            KindSpec::new("activity", vec![f("window", FieldType::String)], Precision::Second, MergePolicy::Interval)
                .unwrap();
        let clip = KindSpec::new(
            "clipboard.item",
            vec![f("sha256", FieldType::String)],
            Precision::Millisecond,
            MergePolicy::Exact,
        )
        .unwrap();
        let standup = "b41b5afa8904186f3987ad90249dd61f31b2b7d9eb46e233a5f35e0f079a90a3";
        // (kind, identity, interval, series ID, interval event ID)
        type Vector<'a> = (&'a KindSpec, serde_json::Value, Option<(&'a str, &'a str)>, &'a str, Option<&'a str>);
        let cases: Vec<Vector> = vec![
            (
                &meeting,
                serde_json::json!({"title": "Caf\u{e9}", "starts": "2026-11-30T11:00:42+01:00", "occurrence": 1}),
                None,
                standup,
                None,
            ),
            (
                &meeting,
                serde_json::json!({"title": "Cafe\u{301}", "starts": "2026-11-30T10:00:59Z", "occurrence": 1}),
                None,
                standup,
                None,
            ),
            (
                &meeting,
                serde_json::json!({"title": "Caf\u{e9}", "starts": "2026-11-30T10:00:00Z", "occurrence": 2}),
                None,
                "0ab67b4d9a685995665a7eaccea424d6c35fc1617d85b8f62f89d08bfdccbc49",
                None,
            ),
            (
                &clip,
                serde_json::json!({"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
                None,
                "7caaeefcd506109d2572877d10354e94876991db517f46b104f318edf73c58bc",
                None,
            ),
            (
                &activity,
                serde_json::json!({"window": "editor \u{2014} main.rs"}),
                Some(("2026-11-30T10:00:00.750Z", "2026-11-30T10:20:00Z")),
                "dc5527ad9da18e3910350dba52a34ca134c41e78c8cbd3247ba150910bd2f778",
                Some("485e7df641cf692e20f0fa488f8fe4312486c6b3c140a6390b90935fdc986d28"),
            ),
        ];
        for (kind, identity, interval, series, event) in cases {
            let c = canonicalize(kind, identity.as_object().unwrap(), interval.map(|i| i.0), interval.map(|i| i.1))
                .unwrap();
            let got = series_id("tray", "u1", kind.name.as_str(), &c.identity);
            assert_eq!(got, series, "{identity}");
            if let Some(event) = event {
                assert_eq!(event_id(&got, c.interval, kind.precision), event, "{identity}");
            }
        }
    }
}
