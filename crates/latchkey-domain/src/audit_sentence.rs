//! Audit entries told as sentences for people: "You revoked **build server**
//! (1 sign-in ended)", "alice registered the device **laptop** in rack 4".
//!
//! Pure: the caller looks up names (users, devices, apps) beforehand and hands
//! them in as [`Names`]; this module only chooses words. Every named thing keeps
//! its raw ID beside its name, so a page can offer the ID to copy.

use std::collections::HashMap;

use serde_json::Value;

/// One piece of a sentence: plain words, or a named thing with its raw ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The words shown.
    pub text: String,
    /// The raw ID behind the words, when they name something.
    pub id: Option<String>,
}

/// A sentence made of parts, so pages can emphasise names and offer their IDs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sentence {
    /// The parts, in reading order.
    pub parts: Vec<Part>,
}

impl Sentence {
    fn text(mut self, s: impl Into<String>) -> Self {
        let s = s.into();
        if !s.is_empty() {
            self.parts.push(Part { text: s, id: None });
        }
        self
    }

    fn name(mut self, r: Named) -> Self {
        self.parts.push(Part { text: r.label, id: r.id });
        self
    }

    /// "the account alice", or "your account" when it is the reader's.
    fn account(self, names: &Names, id: Option<&str>, kept: Option<&str>) -> Self {
        match id {
            Some(id) if names.me.as_deref() == Some(id) => {
                self.name(Named { label: "your account".into(), id: Some(id.into()) })
            }
            _ => self.text("the account ").name(names.user(id, kept)),
        }
    }

    /// The sentence as plain text, for exports and tests.
    pub fn plain(&self) -> String {
        self.parts.iter().map(|p| p.text.as_str()).collect()
    }

    /// The named things in it, as (name, ID), each once.
    pub fn ids(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for p in &self.parts {
            if let Some(id) = &p.id {
                if !out.iter().any(|(_, i)| i == id) {
                    out.push((p.text.clone(), id.clone()));
                }
            }
        }
        out
    }

    /// Upper-cases the first letter of opening words ("you revoked" reads "You revoked"),
    /// never of a name ("alice", "laptop" stay as their owners wrote them).
    fn capitalised(mut self) -> Self {
        if let Some(first) = self.parts.first_mut().filter(|p| {
            p.id.is_none()
                || p.text == "you"
                || p.text == "your account"
                || p.text.starts_with("a ")
                || p.text.starts_with("an ")
        }) {
            let mut chars = first.text.chars();
            if let Some(c) = chars.next() {
                first.text = c.to_uppercase().chain(chars).collect();
            }
        }
        self
    }
}

/// A device's name and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName {
    /// Its display name.
    pub name: String,
    /// Where it is, if its owner said.
    pub location: Option<String>,
}

/// The names the store knows for the IDs in some entries, and who is reading.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// The reader's user ID: shown as "you".
    pub me: Option<String>,
    /// User ID to username.
    pub users: HashMap<String, String>,
    /// Device ID to name and location.
    pub devices: HashMap<String, DeviceName>,
    /// Client ID to app name.
    pub apps: HashMap<String, String>,
}

/// A resolved reference: words and, when it is an ID, the ID.
struct Named {
    label: String,
    id: Option<String>,
}

impl Names {
    /// Whoever or whatever an actor ID is: you, a user, an app, a device, the server.
    fn actor(&self, id: Option<&str>) -> Named {
        match id {
            None | Some("") => Named { label: "someone".into(), id: None },
            Some("system") => Named { label: "the server".into(), id: None },
            Some(id) if self.me.as_deref() == Some(id) => Named { label: "you".into(), id: Some(id.into()) },
            Some(id) => {
                let label = self
                    .users
                    .get(id)
                    .or_else(|| self.apps.get(id))
                    .cloned()
                    .or_else(|| self.devices.get(id).map(|d| d.name.clone()))
                    .unwrap_or_else(|| unknown(id));
                Named { label, id: Some(id.into()) }
            }
        }
    }

    /// A user as the object of a sentence ("you", "alice"), falling back to a name the entry kept.
    fn user(&self, id: Option<&str>, kept: Option<&str>) -> Named {
        match id {
            Some(id) if self.me.as_deref() == Some(id) => Named { label: "you".into(), id: Some(id.into()) },
            Some(id) => Named {
                label: self.users.get(id).cloned().or(kept.map(str::to_string)).unwrap_or_else(|| unknown(id)),
                id: Some(id.into()),
            },
            None => Named { label: kept.unwrap_or("an account").into(), id: None },
        }
    }

    /// A device by its current name, else the name the entry kept.
    fn device(&self, id: Option<&str>, kept: Option<&str>) -> Named {
        let label = id
            .and_then(|id| self.devices.get(id).map(|d| d.name.clone()))
            .or(kept.map(str::to_string))
            .unwrap_or_else(|| id.map(unknown).unwrap_or_else(|| "a device".into()));
        Named { label, id: id.map(str::to_string) }
    }

    /// An app by name.
    fn app(&self, id: Option<&str>) -> Named {
        match id {
            Some(id) => {
                Named { label: self.apps.get(id).cloned().unwrap_or_else(|| id.to_string()), id: Some(id.into()) }
            }
            None => Named { label: "an app".into(), id: None },
        }
    }
}

/// A thing with no name, such as a grant: described, with its ID.
fn thing(label: &str, id: Option<&str>) -> Named {
    Named { label: label.into(), id: id.map(str::to_string) }
}

/// An ID nothing is named for any more: its first characters.
fn unknown(id: &str) -> String {
    let short: String = id.chars().take(8).collect();
    if short.len() < id.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn s(detail: &Value, key: &str) -> Option<String> {
    match detail.get(key)? {
        Value::String(v) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}

fn n(detail: &Value, key: &str) -> Option<u64> {
    detail.get(key)?.as_u64()
}

fn b(detail: &Value, key: &str) -> bool {
    detail.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// "1 sign-in", "3 sign-ins".
fn count(k: u64, what: &str) -> String {
    format!("{k} {what}{}", if k == 1 { "" } else { "s" })
}

/// " from 203.0.113.4", or nothing.
fn from_ip(detail: &Value) -> String {
    s(detail, "ip").map(|ip| format!(" from {ip}")).unwrap_or_default()
}

/// Tells one audit entry as a sentence. `kind` is the entry's stored kind text;
/// `detail` its JSON object text (anything unreadable counts as empty). Kinds this
/// version does not know still read as a sentence.
pub fn sentence(kind: &str, actor: Option<&str>, subject: Option<&str>, detail: &str, names: &Names) -> Sentence {
    let d: Value = serde_json::from_str(detail).unwrap_or(Value::Null);
    let who = || names.actor(actor);
    let st = Sentence::default();
    let out = match kind {
        "user.created" => {
            let admin = if b(&d, "is_admin") { " as an admin" } else { "" };
            let kept = s(&d, "username");
            if actor.is_none() {
                st.account(names, subject, kept.as_deref()).text(format!(" was created{admin}"))
            } else {
                st.name(who()).text(" created ").account(names, subject, kept.as_deref()).text(admin)
            }
        }
        "signin.succeeded" => {
            let lifted = if b(&d, "lifted_lock") { ", lifting a lock" } else { "" };
            let how = if s(&d, "method").as_deref() == Some("passkey") { " with a passkey" } else { "" };
            st.name(who()).text(format!(" signed in{how}{}{lifted}", from_ip(&d)))
        }
        "signin.failed" => {
            let why = match s(&d, "refused") {
                Some(r) => format!(": {r}"),
                None if b(&d, "unknown_username") => " (no such account)".into(),
                None => " (wrong password)".into(),
            };
            if subject.is_some() {
                st.text("a sign-in as ")
                    .name(names.user(subject, s(&d, "username").as_deref()))
                    .text(format!("{} was refused{why}", from_ip(&d)))
            } else {
                st.text(format!("a sign-in{} was refused{why}", from_ip(&d)))
            }
        }
        "signin.signed_out" if actor == subject => st.name(who()).text(" signed out"),
        "signin.signed_out" => st.name(who()).text(" ended a web session of ").name(names.user(subject, None)),
        "app.created" => st.name(who()).text(" registered the app ").name(names.app(subject)),
        "app.updated" => st.name(who()).text(" changed the settings of ").name(names.app(subject)),
        "grant.requested" => {
            let device = s(&d, "device_name").map(|n| format!(" named “{n}”")).unwrap_or_default();
            st.name(names.app(actor))
                .text(" asked to sign in ")
                .name(thing("a device", subject))
                .text(format!("{device}{}", from_ip(&d)))
        }
        "grant.approved" => st.name(who()).text(" approved ").name(thing("a device sign-in", subject)),
        "grant.denied" => st.name(who()).text(" denied ").name(thing("a device sign-in", subject)),
        "grant.consumed" => {
            st.name(names.app(actor)).text(" received tokens for ").name(thing("an approved device sign-in", subject))
        }
        "token.family_revoked" => {
            let to = s(&d, "client_id");
            let st = st.name(who()).text(" ended ").name(thing("a sign-in", subject));
            match to {
                Some(app) if Some(app.as_str()) != actor => st.text(" to ").name(names.app(Some(&app))),
                _ => st,
            }
        }
        "token.refresh_reused" => st
            .name(names.app(actor))
            .text(" presented a used refresh token again, so ")
            .name(thing("that sign-in", subject))
            .text(" was ended"),
        "key.rotated" => st.name(who()).text(" made ").name(thing("a new signing key", subject)).text(" active"),
        "audit.key_added" => {
            st.name(who()).text(" added ").name(thing("a new audit signing key", subject)).text(" for checkpoints")
        }
        "keys.encrypted" => {
            let keys = count(n(&d, "keys").unwrap_or(0), "stored key");
            st.name(who()).text(format!(" encrypted {keys} under ")).name(thing("the server secret key", subject))
        }
        "secret_key.rotated" => {
            let keys = count(n(&d, "keys").unwrap_or(0), "stored key");
            st.name(who()).text(format!(" re-encrypted {keys} under ")).name(thing("a new server secret key", subject))
        }
        "device.registered" => {
            let place = s(&d, "location").map(|l| format!(" in {l}")).unwrap_or_default();
            let via = match s(&d, "via").as_deref() {
                Some("enrollment_key") => " with an enrollment key",
                _ => "",
            };
            st.name(who())
                .text(" registered the device ")
                .name(names.device(subject, s(&d, "name").as_deref()))
                .text(format!("{place}{via}"))
        }
        "device.renamed" => {
            let to = s(&d, "name").map(|n| format!(" to “{n}”")).unwrap_or_default();
            st.name(who()).text(" renamed ").name(names.device(subject, None)).text(to)
        }
        "device.relocated" => match s(&d, "location") {
            Some(l) => st.name(who()).text(" moved ").name(names.device(subject, None)).text(format!(" to {l}")),
            None => st.name(who()).text(" cleared the location of ").name(names.device(subject, None)),
        },
        "device.revoked" => {
            let ended = n(&d, "families_revoked").unwrap_or(0);
            st.name(who())
                .text(" revoked ")
                .name(names.device(subject, None))
                .text(format!(" ({} ended)", count(ended, "sign-in")))
        }
        "device.key_rotated" => {
            let how = if b(&d, "chained") { ", signed by its old key" } else { " without its old key's signature" };
            let ended = n(&d, "families_revoked").unwrap_or(0);
            let ended = if ended > 0 { format!(" ({} ended)", count(ended, "sign-in")) } else { String::new() };
            st.name(who()).text(" replaced the key of ").name(names.device(subject, None)).text(format!("{how}{ended}"))
        }
        "enroll_key.created" => {
            let for_ = s(&d, "owner_id");
            let reusable = if b(&d, "reusable") { "a reusable enrollment key" } else { "an enrollment key" };
            let tag = s(&d, "tag").map(|t| format!(" tagged “{t}”")).unwrap_or_default();
            let st = st.name(who()).text(" created ").name(thing(reusable, subject)).text(tag);
            match for_ {
                Some(o) if Some(o.as_str()) != actor => st.text(" for ").name(names.user(Some(&o), None)),
                _ => st,
            }
        }
        "enroll_key.used" => {
            st.name(thing("an enrollment key", actor)).text(" enrolled the device ").name(names.device(subject, None))
        }
        "enroll_key.revoked" => st.name(who()).text(" revoked ").name(thing("an enrollment key", subject)),
        "qr.requested" => {
            st.name(names.app(actor)).text(" started ").name(thing("a QR sign-in", subject)).text(from_ip(&d))
        }
        "qr.approved" => st.name(who()).text(" approved ").name(thing("a QR sign-in", subject)),
        "qr.denied" => st.name(who()).text(" refused ").name(thing("a QR sign-in", subject)),
        "qr.cancelled" => st.name(names.app(actor)).text(" gave up ").name(thing("a QR sign-in", subject)),
        "qr.consumed" => st.name(names.app(actor)).text(" received tokens for ").name(thing("a QR sign-in", subject)),
        "consent.granted" => {
            let scope = s(&d, "scope").filter(|s| !s.is_empty()).map(|s| format!(" ({s})")).unwrap_or_default();
            st.name(who()).text(" let ").name(names.app(subject)).text(format!(" sign in with their account{scope}"))
        }
        "consent.withdrawn" => {
            let ended = n(&d, "families_revoked").unwrap_or(0);
            let ended = if ended > 0 { format!(" ({} ended)", count(ended, "sign-in")) } else { String::new() };
            st.name(who()).text(" withdrew the consent given to ").name(names.app(subject)).text(ended)
        }
        "oauth.code_redeemed" => {
            st.name(names.app(actor)).text(" completed a web sign-in to ").account(names, subject, None)
        }
        "oauth.code_reused" => st
            .name(names.app(actor))
            .text(" presented a used authorization code again; the web sign-in it started for ")
            .account(names, subject, None)
            .text(" was ended"),
        "passkey.added" => {
            let name = s(&d, "name").map(|n| format!(" “{n}”")).unwrap_or_default();
            st.name(who()).text(format!(" added the passkey{name}"))
        }
        "passkey.removed" => {
            let name = s(&d, "name").map(|n| format!(" “{n}”")).unwrap_or_default();
            st.name(who()).text(format!(" removed the passkey{name}"))
        }
        "user.password_removed" => st.name(who()).text(format!(
            " removed {} password (passkeys only from now on)",
            if names.me.as_deref() == actor { "your" } else { "their" }
        )),
        "user.disabled" => st.name(who()).text(" disabled ").account(names, subject, None),
        "user.enabled" => st.name(who()).text(" enabled ").account(names, subject, None),
        "user.deleted" => st.name(who()).text(" deleted ").account(names, subject, s(&d, "username").as_deref()),
        "user.password_changed" => {
            let ended = n(&d, "sessions_ended").unwrap_or(0);
            let ended = if ended > 0 { format!(" ({} ended)", count(ended, "other session")) } else { String::new() };
            if actor == subject {
                st.name(who()).text(format!(
                    " changed {} password{ended}",
                    if names.me.as_deref() == actor { "your" } else { "their" }
                ))
            } else {
                st.name(who()).text(" set a new password for ").name(names.user(subject, None)).text(ended)
            }
        }
        "user.revoked_all" => {
            let what: Vec<String> = [
                ("sessions", "session"),
                ("families", "sign-in"),
                ("grants", "pending device sign-in"),
                ("pairings", "QR sign-in"),
                ("enrollment_keys", "enrollment key"),
            ]
            .iter()
            .filter_map(|(k, w)| n(&d, k).filter(|c| *c > 0).map(|c| count(c, w)))
            .collect();
            let what = if what.is_empty() { String::new() } else { format!(" ({})", what.join(", ")) };
            st.name(who()).text(" ended everything held by ").name(names.user(subject, None)).text(what)
        }
        "user.locked" => {
            let tries = n(&d, "failures").map(|f| format!(" after {}", count(f, "wrong password"))).unwrap_or_default();
            st.account(names, subject, None).text(format!(" was locked{tries}"))
        }
        "events.kind_declared" => {
            let k = s(&d, "kind").map(|k| format!("“{k}”")).unwrap_or_else(|| "an event kind".into());
            st.name(who()).text(format!(" declared the event kind {k} for ")).name(names.app(subject))
        }
        "trust.added" => st
            .name(who())
            .text(" made ")
            .name(names.device(s(&d, "truster").as_deref(), None))
            .text(" trust ")
            .name(names.device(subject, None)),
        "trust.removed" => st
            .name(who())
            .text(" made ")
            .name(names.device(s(&d, "truster").as_deref(), None))
            .text(" stop trusting ")
            .name(names.device(subject, None)),
        "tsession.created" => {
            let members = d.get("members").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
            let st = st.name(who()).text(" started ").name(thing("a trusted session", subject));
            let st = match s(&d, "creator") {
                Some(c) => st.text(" from ").name(names.device(Some(&c), None)),
                None => st,
            };
            st.text(format!(" with {}", count(members as u64, "device")))
        }
        "tsession.joined" => st
            .name(names.device(s(&d, "device").as_deref(), None))
            .text(" joined ")
            .name(thing("a trusted session", subject)),
        "tsession.left" => st
            .name(names.device(s(&d, "device").as_deref(), None))
            .text(" left ")
            .name(thing("a trusted session", subject)),
        "tsession.member_removed" => st
            .name(who())
            .text(" removed ")
            .name(names.device(s(&d, "device").as_deref(), None))
            .text(" from ")
            .name(thing("a trusted session", subject)),
        "tsession.rekeyed" => {
            let epoch = n(&d, "epoch").map(|e| format!(" (generation {e})")).unwrap_or_default();
            st.name(names.device(s(&d, "device").as_deref(), None))
                .text(" issued a new key for ")
                .name(thing("a trusted session", subject))
                .text(epoch)
        }
        "tsession.closed" if actor == Some("system") => {
            st.name(thing("a trusted session", subject)).text(" expired and was closed")
        }
        "tsession.closed" => st.name(who()).text(" closed ").name(thing("a trusted session", subject)),
        other => {
            let st = st.name(who()).text(format!(" did “{other}”"));
            match subject {
                Some(sub) => st.text(" to ").name(names.actor(Some(sub))),
                None => st,
            }
        }
    };
    out.capitalised()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    fn names() -> Names {
        let mut n = Names { me: Some("u-me".into()), ..Names::default() };
        n.users.insert("u-me".into(), "me".into());
        n.users.insert("u-alice".into(), "alice".into());
        n.devices.insert("d-1".into(), DeviceName { name: "build server".into(), location: Some("rack 4".into()) });
        n.devices.insert("d-2".into(), DeviceName { name: "laptop".into(), location: None });
        n.apps.insert("cli".into(), "Latchkey CLI".into());
        n
    }

    fn say(kind: AuditKind, actor: Option<&str>, subject: Option<&str>, detail: &str) -> String {
        sentence(kind.as_str(), actor, subject, detail, &names()).plain()
    }

    #[test]
    fn the_issue_examples_read_as_written() {
        assert_eq!(
            say(AuditKind::DeviceRevoked, Some("u-me"), Some("d-1"), r#"{"families_revoked":1}"#),
            "You revoked build server (1 sign-in ended)"
        );
        assert_eq!(
            say(
                AuditKind::DeviceRegistered,
                Some("u-alice"),
                Some("d-2"),
                r#"{"name":"laptop","location":"rack 4","platform":"linux","via":"approval"}"#
            ),
            "alice registered the device laptop in rack 4"
        );
    }

    #[test]
    fn names_carry_their_ids() {
        let s = sentence("device.revoked", Some("u-alice"), Some("d-1"), "{}", &names());
        assert_eq!(s.ids(), vec![("alice".into(), "u-alice".into()), ("build server".into(), "d-1".into())]);
        let strong: Vec<&str> = s.parts.iter().filter(|p| p.id.is_some()).map(|p| p.text.as_str()).collect();
        assert_eq!(strong, ["alice", "build server"]);
    }

    #[test]
    fn unknown_ids_fall_back_to_kept_names_or_short_ids() {
        let n = names();
        let gone =
            sentence("device.registered", Some("u-gone-0123456789"), Some("d-gone"), r#"{"name":"old box"}"#, &n);
        assert_eq!(gone.plain(), "u-gone-0… registered the device old box");
        let deleted = sentence("user.deleted", Some("u-me"), Some("u-x"), r#"{"username":"bob"}"#, &n);
        assert_eq!(deleted.plain(), "You deleted the account bob");
    }

    #[test]
    fn every_kind_reads_as_a_sentence() {
        let n = names();
        for k in AuditKind::ALL {
            let s = sentence(k.as_str(), Some("u-alice"), Some("d-1"), r#"{"device":"d-2","truster":"d-2"}"#, &n);
            let text = s.plain();
            assert!(!text.contains(k.as_str()), "{} fell through to the generic wording: {text}", k.as_str());
            assert!(!text.is_empty());
            assert!(!text.contains('{'), "raw JSON in {text}");
        }
    }

    #[test]
    fn each_kind_has_its_own_wording() {
        type Case<'a> = (AuditKind, Option<&'a str>, Option<&'a str>, &'a str, &'a str);
        let cases: &[Case] = &[
            (
                AuditKind::UserCreated,
                Some("u-me"),
                Some("u-alice"),
                r#"{"username":"alice","is_admin":true}"#,
                "You created the account alice as an admin",
            ),
            (AuditKind::UserCreated, None, Some("u-x"), r#"{"username":"root"}"#, "The account root was created"),
            (
                AuditKind::SignInSucceeded,
                Some("u-alice"),
                Some("u-alice"),
                r#"{"ip":"203.0.113.4"}"#,
                "alice signed in from 203.0.113.4",
            ),
            (
                AuditKind::SignInSucceeded,
                Some("u-alice"),
                Some("u-alice"),
                r#"{"ip":"203.0.113.4","method":"passkey"}"#,
                "alice signed in with a passkey from 203.0.113.4",
            ),
            (
                AuditKind::PasskeyAdded,
                Some("u-me"),
                Some("u-me"),
                r#"{"passkey":"p1","name":"Laptop"}"#,
                "You added the passkey “Laptop”",
            ),
            (
                AuditKind::PasskeyRemoved,
                Some("u-alice"),
                Some("u-alice"),
                r#"{"passkey":"p1","name":"Old phone"}"#,
                "alice removed the passkey “Old phone”",
            ),
            (
                AuditKind::PasswordRemoved,
                Some("u-me"),
                Some("u-me"),
                "{}",
                "You removed your password (passkeys only from now on)",
            ),
            (
                AuditKind::SignInFailed,
                Some("u-alice"),
                Some("u-alice"),
                r#"{"username":"alice","ip":"10.0.0.1"}"#,
                "A sign-in as alice from 10.0.0.1 was refused (wrong password)",
            ),
            (
                AuditKind::SignInFailed,
                None,
                None,
                r#"{"unknown_username":true,"ip":"10.0.0.1"}"#,
                "A sign-in from 10.0.0.1 was refused (no such account)",
            ),
            (AuditKind::SignedOut, Some("u-me"), Some("u-me"), "{}", "You signed out"),
            (AuditKind::SignedOut, Some("u-me"), Some("u-alice"), "{}", "You ended a web session of alice"),
            (AuditKind::AppCreated, Some("u-me"), Some("cli"), "{}", "You registered the app Latchkey CLI"),
            (AuditKind::AppUpdated, Some("u-me"), Some("cli"), "{}", "You changed the settings of Latchkey CLI"),
            (
                AuditKind::GrantRequested,
                Some("cli"),
                Some("g-1"),
                r#"{"device_name":"laptop","ip":"10.0.0.2"}"#,
                "Latchkey CLI asked to sign in a device named “laptop” from 10.0.0.2",
            ),
            (AuditKind::GrantApproved, Some("u-alice"), Some("g-1"), "{}", "alice approved a device sign-in"),
            (AuditKind::GrantDenied, Some("u-me"), Some("g-1"), "{}", "You denied a device sign-in"),
            (
                AuditKind::GrantConsumed,
                Some("cli"),
                Some("g-1"),
                "{}",
                "Latchkey CLI received tokens for an approved device sign-in",
            ),
            (
                AuditKind::TokenFamilyRevoked,
                Some("u-me"),
                Some("f-1"),
                r#"{"client_id":"cli"}"#,
                "You ended a sign-in to Latchkey CLI",
            ),
            (
                AuditKind::TokenFamilyRevoked,
                Some("cli"),
                Some("f-1"),
                r#"{"user_id":"u-me"}"#,
                "Latchkey CLI ended a sign-in",
            ),
            (
                AuditKind::RefreshReuseDetected,
                Some("cli"),
                Some("f-1"),
                "{}",
                "Latchkey CLI presented a used refresh token again, so that sign-in was ended",
            ),
            (AuditKind::KeyRotated, Some("system"), Some("kid-1"), "{}", "The server made a new signing key active"),
            (
                AuditKind::KeysEncrypted,
                Some("system"),
                Some("0123456789abcdef"),
                r#"{"keys":3}"#,
                "The server encrypted 3 stored keys under the server secret key",
            ),
            (
                AuditKind::SecretKeyRotated,
                Some("system"),
                Some("fedcba9876543210"),
                r#"{"keys":1,"from":"0123456789abcdef"}"#,
                "The server re-encrypted 1 stored key under a new server secret key",
            ),
            (
                AuditKind::AuditKeyAdded,
                Some("system"),
                Some("k-1"),
                "{}",
                "The server added a new audit signing key for checkpoints",
            ),
            (
                AuditKind::DeviceRenamed,
                Some("u-me"),
                Some("d-1"),
                r#"{"name":"build server"}"#,
                "You renamed build server to “build server”",
            ),
            (
                AuditKind::DeviceRelocated,
                Some("u-me"),
                Some("d-1"),
                r#"{"location":"rack 5"}"#,
                "You moved build server to rack 5",
            ),
            (
                AuditKind::DeviceRelocated,
                Some("u-me"),
                Some("d-1"),
                r#"{"location":null}"#,
                "You cleared the location of build server",
            ),
            (
                AuditKind::DeviceKeyRotated,
                Some("u-me"),
                Some("d-1"),
                r#"{"chained":true,"families_revoked":0}"#,
                "You replaced the key of build server, signed by its old key",
            ),
            (
                AuditKind::DeviceKeyRotated,
                Some("u-me"),
                Some("d-1"),
                r#"{"chained":false,"families_revoked":2}"#,
                "You replaced the key of build server without its old key's signature (2 sign-ins ended)",
            ),
            (
                AuditKind::EnrollmentKeyCreated,
                Some("u-me"),
                Some("k-1"),
                r#"{"owner_id":"u-alice","reusable":true,"tag":"ci"}"#,
                "You created a reusable enrollment key tagged “ci” for alice",
            ),
            (
                AuditKind::EnrollmentKeyUsed,
                Some("k-1"),
                Some("d-2"),
                "{}",
                "An enrollment key enrolled the device laptop",
            ),
            (AuditKind::EnrollmentKeyRevoked, Some("u-me"), Some("k-1"), "{}", "You revoked an enrollment key"),
            (
                AuditKind::PairingRequested,
                Some("cli"),
                Some("p-1"),
                r#"{"ip":"10.0.0.3"}"#,
                "Latchkey CLI started a QR sign-in from 10.0.0.3",
            ),
            (AuditKind::PairingApproved, Some("u-alice"), Some("p-1"), "{}", "alice approved a QR sign-in"),
            (AuditKind::PairingDenied, Some("u-alice"), Some("p-1"), "{}", "alice refused a QR sign-in"),
            (AuditKind::PairingCancelled, Some("cli"), Some("p-1"), "{}", "Latchkey CLI gave up a QR sign-in"),
            (
                AuditKind::PairingConsumed,
                Some("cli"),
                Some("p-1"),
                "{}",
                "Latchkey CLI received tokens for a QR sign-in",
            ),
            (
                AuditKind::ConsentGranted,
                Some("u-alice"),
                Some("cli"),
                r#"{"scope":"openid profile"}"#,
                "alice let Latchkey CLI sign in with their account (openid profile)",
            ),
            (
                AuditKind::ConsentWithdrawn,
                Some("u-me"),
                Some("cli"),
                r#"{"families_revoked":2}"#,
                "You withdrew the consent given to Latchkey CLI (2 sign-ins ended)",
            ),
            (
                AuditKind::CodeRedeemed,
                Some("cli"),
                Some("u-alice"),
                r#"{"family_id":"f-1"}"#,
                "Latchkey CLI completed a web sign-in to the account alice",
            ),
            (
                AuditKind::CodeReused,
                Some("cli"),
                Some("u-me"),
                r#"{"family_id":"f-1"}"#,
                "Latchkey CLI presented a used authorization code again; the web sign-in it started for your account was ended",
            ),
            (AuditKind::UserDisabled, Some("u-me"), Some("u-alice"), "{}", "You disabled the account alice"),
            (AuditKind::UserEnabled, Some("u-me"), Some("u-alice"), "{}", "You enabled the account alice"),
            (
                AuditKind::PasswordChanged,
                Some("u-me"),
                Some("u-me"),
                r#"{"sessions_ended":2}"#,
                "You changed your password (2 other sessions ended)",
            ),
            (
                AuditKind::PasswordChanged,
                Some("u-me"),
                Some("u-alice"),
                r#"{"sessions_ended":0}"#,
                "You set a new password for alice",
            ),
            (
                AuditKind::UserRevokedAll,
                Some("u-me"),
                Some("u-alice"),
                r#"{"sessions":1,"families":3,"grants":0,"pairings":0,"enrollment_keys":0}"#,
                "You ended everything held by alice (1 session, 3 sign-ins)",
            ),
            (
                AuditKind::UserLocked,
                Some("system"),
                Some("u-alice"),
                r#"{"until":1,"failures":5}"#,
                "The account alice was locked after 5 wrong passwords",
            ),
            (
                AuditKind::EventKindDeclared,
                Some("u-me"),
                Some("cli"),
                r#"{"kind":"build.done"}"#,
                "You declared the event kind “build.done” for Latchkey CLI",
            ),
            (
                AuditKind::TrustAdded,
                Some("u-me"),
                Some("d-2"),
                r#"{"truster":"d-1","fingerprint":"ab"}"#,
                "You made build server trust laptop",
            ),
            (
                AuditKind::TrustRemoved,
                Some("u-me"),
                Some("d-2"),
                r#"{"truster":"d-1"}"#,
                "You made build server stop trusting laptop",
            ),
            (
                AuditKind::SessionCreated,
                Some("u-me"),
                Some("s-1"),
                r#"{"creator":"d-1","members":["d-1","d-2"]}"#,
                "You started a trusted session from build server with 2 devices",
            ),
            (
                AuditKind::SessionJoined,
                Some("u-me"),
                Some("s-1"),
                r#"{"device":"d-2","epoch":1}"#,
                "laptop joined a trusted session",
            ),
            (AuditKind::SessionLeft, Some("u-me"), Some("s-1"), r#"{"device":"d-2"}"#, "laptop left a trusted session"),
            (
                AuditKind::SessionMemberRemoved,
                Some("u-me"),
                Some("s-1"),
                r#"{"device":"d-2"}"#,
                "You removed laptop from a trusted session",
            ),
            (
                AuditKind::SessionRekeyed,
                Some("u-me"),
                Some("s-1"),
                r#"{"device":"d-1","epoch":3}"#,
                "build server issued a new key for a trusted session (generation 3)",
            ),
            (AuditKind::SessionClosed, Some("system"), Some("s-1"), "{}", "A trusted session expired and was closed"),
            (AuditKind::SessionClosed, Some("u-me"), Some("s-1"), "{}", "You closed a trusted session"),
        ];
        for (kind, actor, subject, detail, want) in cases {
            assert_eq!(&say(*kind, *actor, *subject, detail), want, "{}", kind.as_str());
        }
    }

    #[test]
    fn the_readers_own_account_is_theirs() {
        let n = names();
        assert_eq!(sentence("user.created", None, Some("u-me"), "{}", &n).plain(), "Your account was created");
        let locked = sentence("user.locked", Some("system"), Some("u-me"), r#"{"failures":1}"#, &n);
        assert_eq!(locked.plain(), "Your account was locked after 1 wrong password");
        assert_eq!(locked.ids(), vec![("Your account".into(), "u-me".into())]);
    }

    #[test]
    fn a_kind_from_a_newer_version_still_reads() {
        let s = sentence("widget.frobbed", Some("u-alice"), Some("d-1"), "not json", &names());
        assert_eq!(s.plain(), "alice did “widget.frobbed” to build server");
    }
}
