//! JSON bodies of Latchkey's API, and the events batch's canonical IDs.
//!
//! The input is a raw body. Checks: every request type either refuses it or
//! reads a value that writes and reads back the same; an events batch's
//! captures that are accepted are canonical (canonicalising again changes
//! nothing), their intervals are ordered, and their series IDs equal the
//! general RFC 8785 encoding.
#![no_main]

use latchkey_domain::events::{self, format_time, FieldSpec, FieldType, KindSpec, MergePolicy, Precision, ID_VERSION};
use latchkey_proto::{api, pairing, trust};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Reads `data` as `T`; what was read writes out and reads back to the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let once = serde_json::to_value(&v).expect("a value read writes out");
    let again: T = serde_json::from_value(once.clone()).expect("what was written reads back");
    assert_eq!(serde_json::to_value(&again).expect("writes out"), once);
    Some(v)
}

fn kinds() -> Vec<KindSpec> {
    let field = |name: &str, ty| FieldSpec { name: name.into(), ty };
    [
        (
            "visit",
            vec![field("url", FieldType::String), field("n", FieldType::Integer)],
            Precision::Second,
            MergePolicy::Exact,
        ),
        ("seen", vec![field("at", FieldType::Timestamp)], Precision::Minute, MergePolicy::Exact),
        ("session", vec![field("title", FieldType::String)], Precision::Millisecond, MergePolicy::Interval),
    ]
    .into_iter()
    .filter_map(|(n, f, p, m)| KindSpec::new(n, f, p, m).ok())
    .collect()
}

fn general_series_id(app: &str, user: &str, kind: &str, identity: &serde_json::Value) -> String {
    use unicode_normalization::UnicodeNormalization;
    let app: String = app.nfc().collect();
    let doc = serde_json::json!({"app": app, "identity": identity, "kind": kind, "user": user, "v": ID_VERSION});
    hex::encode(Sha256::digest(serde_json_canonicalizer::to_vec(&doc).expect("a Value encodes")))
}

fuzz_target!(|data: &[u8]| {
    let _ = round_trip::<api::SignInRequest>(data);
    let _ = round_trip::<api::PasswordChange>(data);
    let _ = round_trip::<api::DecisionRequest>(data);
    let _ = round_trip::<api::DeviceUpdate>(data);
    let _ = round_trip::<api::EnrollmentKeyRequest>(data);
    let _ = round_trip::<api::EnrollRequest>(data);
    let _ = round_trip::<api::LookupRequest>(data);
    let _ = round_trip::<pairing::StartPairing>(data);
    let _ = round_trip::<pairing::PairingDecision>(data);
    let _ = round_trip::<trust::TrustRequest>(data);
    let _ = round_trip::<trust::RotateKeyRequest>(data);
    let _ = round_trip::<trust::SessionRequest>(data);
    let _ = round_trip::<trust::CreateSession>(data);
    let _ = round_trip::<trust::IssueInvitations>(data);
    if let Some(d) = round_trip::<api::KindDeclaration>(data) {
        let identity: Vec<FieldSpec> =
            d.identity.iter().map(|f| FieldSpec { name: f.name.clone(), ty: FieldType::String }).collect();
        if let Ok(spec) = KindSpec::new(&d.merge, identity, Precision::Second, MergePolicy::Exact) {
            for (i, f) in spec.identity.iter().enumerate() {
                assert!(
                    !f.name.is_empty() && f.name.len() <= 64 && !spec.identity[..i].iter().any(|g| g.name == f.name)
                );
            }
        }
    }

    let Some(batch) = round_trip::<api::IngestRequest>(data) else { return };
    let kinds = kinds();
    for c in &batch.events {
        let Some(kind) = kinds.iter().find(|k| k.name.as_str() == c.kind) else { continue };
        let Ok(canon) = events::canonicalize(kind, &c.identity, c.start.as_deref(), c.end.as_deref()) else { continue };
        let serde_json::Value::Object(identity) = &canon.identity else { panic!("identity is an object") };
        let (start, end) = match canon.interval {
            Some(i) => {
                assert!(i.start <= i.end);
                (Some(format_time(i.start, kind.precision)), Some(format_time(i.end, kind.precision)))
            }
            None => (None, None),
        };
        let again = events::canonicalize(kind, identity, start.as_deref(), end.as_deref());
        assert_eq!(again.as_ref(), Ok(&canon), "canonical form is a fixed point");
        let app = c.id.as_deref().unwrap_or("app");
        let series = events::series_id(app, "user", kind.name.as_str(), &canon.identity);
        assert_eq!(series, general_series_id(app, "user", kind.name.as_str(), &canon.identity));
        let id = events::event_id(&series, canon.interval, kind.precision);
        assert_eq!(id.len(), 64);
    }
});
