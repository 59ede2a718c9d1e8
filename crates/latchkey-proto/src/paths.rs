//! Endpoint paths, the one list the server registers and the client calls.
//! Paths with `{id}` are route templates; [`with_id`] fills them in.

/// OIDC discovery document.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 authorization server metadata (the same document).
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// RFC 8628 device authorization.
pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
/// Token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// OIDC authorization endpoint (authorization code with PKCE).
pub const AUTHORIZE: &str = "/oauth/authorize";
/// The authorization endpoint's own sign-in form posts here.
pub const AUTHORIZE_SIGN_IN: &str = "/oauth/authorize/sign-in";
/// "Sign in with your phone" for a web sign-in: the QR page (`?request=…`).
pub const AUTHORIZE_PHONE: &str = "/oauth/authorize/phone";
/// A fresh code for that page when one expires.
pub const AUTHORIZE_PHONE_FRESH: &str = "/oauth/authorize/phone/fresh";
/// Where that page's browser goes once the phone approved: the session opens, the request goes on.
pub const AUTHORIZE_PHONE_DONE: &str = "/oauth/authorize/phone/done";
/// The consent page posts here.
pub const AUTHORIZE_CONSENT: &str = "/oauth/authorize/consent";
/// OIDC RP-initiated logout (`end_session_endpoint`).
pub const END_SESSION: &str = "/oauth/logout";
/// The sign-out confirmation form posts here.
pub const END_SESSION_CONFIRM: &str = "/oauth/logout/confirm";
/// The authorization endpoint's passkey sign-in (the same request continues).
pub const AUTHORIZE_PASSKEY: &str = "/oauth/authorize/passkey";
/// Latchkey's instant-approval long-poll.
pub const DEVICE_WAIT: &str = "/oauth/device/wait";
/// RFC 7662 introspection.
pub const INTROSPECT: &str = "/oauth/introspect";
/// RFC 7009 revocation.
pub const REVOKE: &str = "/oauth/revoke";
/// OIDC userinfo.
pub const USERINFO: &str = "/oauth/userinfo";
/// JWK Set.
pub const JWKS: &str = "/oauth/jwks";

/// The audit log's latest signed checkpoint (C2SP signed note, `text/plain`; public).
pub const AUDIT_CHECKPOINT: &str = "/api/v1/audit/checkpoint";
/// The keys that sign audit checkpoints, as signed-note verifier keys (public).
pub const AUDIT_KEYS: &str = "/api/v1/audit/keys";
/// A consistency proof between two tree sizes (`?old=N&new=M`; public).
pub const AUDIT_CONSISTENCY: &str = "/api/v1/audit/consistency";
/// An inclusion proof for one of the caller's entries (`?seq=S&size=N`).
pub const AUDIT_INCLUSION: &str = "/api/v1/audit/inclusion";

/// Password sign-in (`POST`) and sign-out (`DELETE`).
pub const SESSION: &str = "/api/v1/session";
/// Change your own password (`POST`); ends your other sessions.
pub const PASSWORD: &str = "/api/v1/password";
/// Who is asking, and from which device.
pub const ME: &str = "/api/v1/me";
/// What approving a user code would let in.
pub const DEVICE_LOOKUP: &str = "/api/v1/device/lookup";
/// Approve or deny a device login.
pub const DEVICE_DECISION: &str = "/api/v1/device/decision";
/// The caller's devices.
pub const DEVICES: &str = "/api/v1/devices";
/// One device: rename or move (`PATCH`), revoke (`DELETE`).
pub const DEVICE: &str = "/api/v1/devices/{id}";
/// A device's location history.
pub const DEVICE_LOCATIONS: &str = "/api/v1/devices/{id}/locations";
/// The caller's sign-ins that are not devices (browser sessions, QR and web sign-ins of apps).
pub const SIGN_INS: &str = "/api/v1/sign-ins";
/// One sign-in: end it (`DELETE`).
pub const SIGN_IN: &str = "/api/v1/sign-ins/{id}";
/// A user's event stream: ingest a batch of captures (`POST`), pull after a cursor (`GET`).
pub const EVENTS: &str = "/api/v1/events";
/// The calling app's event kinds.
pub const EVENT_KINDS: &str = "/api/v1/events/kinds";
/// One event kind: declare it (`PUT`).
pub const EVENT_KIND: &str = "/api/v1/events/kinds/{name}";
/// Enrollment keys: list (`GET`), create (`POST`).
pub const ENROLLMENT_KEYS: &str = "/api/v1/enrollment-keys";
/// One enrollment key: revoke (`DELETE`).
pub const ENROLLMENT_KEY: &str = "/api/v1/enrollment-keys/{id}";
/// Enroll a device with an enrollment key.
pub const ENROLL: &str = "/api/v1/enroll";
/// Start a QR sign-in from a native desktop app.
pub const PAIRINGS: &str = "/api/v1/pairings";
/// The QR image of the caller's pairing.
pub const PAIRING_QR: &str = "/api/v1/pairings/qr";
/// The desktop's long-poll for the phone's decision.
pub const PAIRING_WAIT: &str = "/api/v1/pairings/wait";
/// The desktop gives up.
pub const PAIRING_CANCEL: &str = "/api/v1/pairings/cancel";
/// A phone app approves or denies.
pub const PAIRING_DECISION: &str = "/api/v1/pairings/decision";
/// Trust statements between the caller's devices: list (`GET`), add one signed by the calling device (`POST`).
pub const TRUSTS: &str = "/api/v1/trusts";
/// The calling device's trust in another: remove it (`DELETE`).
pub const TRUST: &str = "/api/v1/trusts/{id}";
/// A device's public keys, fingerprint and key rotations.
pub const DEVICE_KEYS: &str = "/api/v1/devices/{id}/keys";
/// Replace the calling device's key (`POST`).
pub const DEVICE_KEY: &str = "/api/v1/device/key";
/// Publish the calling device's session key (`PUT`).
pub const DEVICE_SESSION_KEY: &str = "/api/v1/device/session-key";
/// The calling device's trusted sessions (`GET`); make one (`POST`).
pub const TRUSTED_SESSIONS: &str = "/api/v1/trusted-sessions";
/// Ask who a new session would have, without making it (`POST`).
pub const TRUSTED_SESSION_PLAN: &str = "/api/v1/trusted-sessions/plan";
/// One trusted session: show (`GET`), close (`DELETE`, creator only).
pub const TRUSTED_SESSION: &str = "/api/v1/trusted-sessions/{id}";
/// Issue invitations at the current key generation (`POST`).
pub const TRUSTED_SESSION_INVITATIONS: &str = "/api/v1/trusted-sessions/{id}/invitations";
/// Accept an invitation (`POST`).
pub const TRUSTED_SESSION_JOIN: &str = "/api/v1/trusted-sessions/{id}/join";
/// Leave a session (`POST`).
pub const TRUSTED_SESSION_LEAVE: &str = "/api/v1/trusted-sessions/{id}/leave";
/// Relay a message to the other members (`POST`).
pub const TRUSTED_SESSION_MESSAGES: &str = "/api/v1/trusted-sessions/{id}/messages";
/// The calling device's channel: Server-Sent Events while it is online (`GET`).
pub const CHANNEL: &str = "/api/v1/channel";
/// The OpenAPI 3.1 document of the OAuth endpoints and the JSON API (public).
pub const OPENAPI: &str = "/api/openapi.json";
/// Every other path under the API (answered with a JSON 404).
pub const API_OTHER: &str = "/api/v1/{*rest}";

/// The verification page people open to approve a device (RFC 8628 `verification_uri`).
pub const VERIFICATION: &str = crate::VERIFICATION_PATH;
/// The phone page a QR code opens.
pub const PHONE_PAGE: &str = "/pair/{code}";
/// The retired hosted desktop page of an app's QR sign-in (answers 410 with a way on).
pub const QR_DESKTOP_PAGE: &str = "/apps/{client_id}/qr-sign-in";

/// Fills the `{…}` placeholder of a route template with `segment` (already percent-encoded).
pub fn with_id(template: &str, segment: &str) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(a), Some(b)) if a < b => format!("{}{segment}{}", &template[..a], &template[b + 1..]),
        _ => template.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled() {
        assert_eq!(with_id(DEVICE, "abc"), "/api/v1/devices/abc");
        assert_eq!(with_id(DEVICE_LOCATIONS, "abc"), "/api/v1/devices/abc/locations");
        assert_eq!(with_id(PHONE_PAGE, "lkp_x"), "/pair/lkp_x");
        assert_eq!(with_id(ME, "x"), ME);
    }
}
