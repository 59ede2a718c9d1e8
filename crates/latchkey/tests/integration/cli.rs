//! The real `latchkey` binary against a real server on a random port: provisioning,
//! enrollment keys, concurrent logins, logout, revocation, stolen tokens, slugs.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::profile::{Profile, Session};
use latchkey_client::{AppCredentials, Auth, Client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// One machine: its own configuration directory (also used by `events_cli`).
pub(crate) struct Machine {
    dir: PathBuf,
    server: String,
}

impl Machine {
    pub(crate) fn new(app: &TestApp) -> Self {
        let dir = std::env::temp_dir().join(format!("latchkey-machine-{}", uuid::Uuid::new_v4().simple()));
        Machine { dir, server: app.url.clone() }
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        c.args(args)
            .arg("--server")
            .arg(&self.server)
            .env("LATCHKEY_CONFIG_DIR", &self.dir)
            .env("LATCHKEY_LOG", "warn")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs a command to completion: (success, stdout, stderr).
    pub(crate) async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.cmd(args).output())
            .await
            .expect("command finished")
            .expect("command ran");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// Runs a command with `input` on its stdin: (success, stdout, stderr).
    pub(crate) async fn run_with_input(&self, args: &[&str], input: &str) -> (bool, String, String) {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).await.expect("write stdin");
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("command finished")
            .expect("command ran");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// Starts `latchkey login …` and returns it with the code it shows.
    async fn start_login(&self, args: &[&str]) -> (Child, String) {
        let mut all = vec!["login", "--no-browser"];
        all.extend_from_slice(args);
        let mut child = self.cmd(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn login");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let code = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(i) = line.find("user_code=") {
                    return line[i + 10..].trim().to_string();
                }
            }
            panic!("login ended without showing a code");
        })
        .await
        .expect("code shown");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, code)
    }

    pub(crate) fn profile(&self) -> Profile {
        Profile::at(self.dir.join("profiles").join("default"))
    }

    pub(crate) fn session(&self) -> Session {
        self.profile().load().expect("readable").expect("a session")
    }

    pub(crate) fn key(&self) -> Arc<DeviceKey> {
        Arc::new(self.profile().device_key().expect("key"))
    }

    /// Logs in by approving with `approver`'s session.
    pub(crate) async fn login(&self, app: &TestApp, approver: &str, args: &[&str]) -> String {
        let (child, code) = self.start_login(args).await;
        app.client.decide_device_login(approver, &code, true).await.expect("approve");
        let out =
            tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("done").expect("ran");
        assert!(out.status.success(), "login failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
}

async fn first_login_names_the_machine_and_binds_its_key(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    let (child, code) = m.start_login(&["--yes", "--name", "Build Box", "--location", "Berlin office"]).await;
    // The approver sees what the machine says about itself.
    let seen = app.client.lookup_device_login(&alice, &code).await.expect("lookup");
    assert_eq!(seen.device_name.as_deref(), Some("Build Box"));
    assert_eq!(seen.device_location.as_deref(), Some("Berlin office"));
    assert!(seen.requester_user_agent.starts_with("latchkey-client/"));
    app.client.decide_device_login(&alice, &code, true).await.expect("approve");
    let out = child.wait_with_output().await.expect("login");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("\"Build Box\" (build-box)"), "{stdout}");

    let s = m.session();
    assert_eq!((s.server.as_str(), s.username.as_str(), s.token_type.as_str()), (app.url.as_str(), "alice", "DPoP"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&m.profile().dir().join("session.json")), 0o600);
        assert_eq!(mode(&m.profile().dir().join("device.key")), 0o600);
    }
    let (ok, out, _) = m.run(&["whoami", "--json"]).await;
    assert!(ok);
    let me: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(me["device"]["slug"], "build-box");
    assert_eq!(me["device"]["location"], "Berlin office");
    assert_eq!(me["device"]["key_bound"], true);
    assert_eq!(me["device"]["current"], true);

    // Logging in again on the same machine is the same device, without questions.
    m.login(&app, &alice, &[]).await;
    assert_eq!(app.client.devices(&alice).await.expect("devices").len(), 1);
}

async fn installers_must_say_where_the_machine_is(b: Backend) {
    let app = spawn_app(b).await;
    let m = Machine::new(&app);
    let (ok, _, err) = m.run(&["login", "--no-browser", "--yes", "--name", "box"]).await;
    assert!(!ok);
    assert!(err.contains("--location"), "{err}");
    assert!(m.profile().load().expect("ok").is_none(), "nothing written");
    let (ok, _, err) = m.run(&["login", "--no-browser", "--yes", "--name", "", "--location", "x"]).await;
    assert!(!ok && err.contains("name"), "{err}");
    let long = "x".repeat(10_000);
    let (ok, _, err) = m.run(&["login", "--no-browser", "--yes", "--name", &long, "--location", "x"]).await;
    assert!(!ok && err.contains("at most"), "{err}");
}

async fn enrollment_key_provisions_without_a_browser(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let key = app
        .client
        .create_enrollment_key(
            &alice,
            &latchkey_proto::api::EnrollmentKeyRequest { expires_in: Some(600), ..Default::default() },
        )
        .await
        .expect("key");
    assert!(key.key.starts_with("lke_"));
    let m = Machine::new(&app);
    let (ok, out, err) =
        m.run(&["login", "--enroll-key", &key.key, "--name", "CI runner", "--location", "later"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("(ci-runner)") && out.contains("not set yet"), "{out}");
    // Single use.
    let other = Machine::new(&app);
    let (ok, _, err) = other.run(&["login", "--enroll-key", &key.key, "--name", "again", "--location", "x"]).await;
    assert!(!ok && err.contains("already used"), "{err}");
    let (ok, _, err) = other.run(&["login", "--enroll-key", "lke_wrong", "--name", "x", "--location", "x"]).await;
    assert!(!ok && err.contains("unknown enrollment key"), "{err}");
    // Listed without its secret; the use is audited.
    let keys = app.client.enrollment_keys(&alice).await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].uses, 1);
    assert!(!serde_json::to_string(&keys).expect("json").contains(&key.key));
    let kinds: Vec<String> =
        app.store.audit_entries(0, 1000).await.expect("audit").into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"enroll_key.used".to_string()));
}

async fn concurrent_logins_never_let_the_older_win(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    let args = ["--yes", "--name", "box", "--location", "here"];
    let (first, first_code) = m.start_login(&args).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (second, second_code) = m.start_login(&args).await;
    // The later login is approved and finishes first...
    app.client.decide_device_login(&alice, &second_code, true).await.expect("approve second");
    let out2 = second.wait_with_output().await.expect("second");
    assert!(out2.status.success());
    let stored = m.session();
    // ...then the earlier one finishes: it must not overwrite the later one's session.
    app.client.decide_device_login(&alice, &first_code, true).await.expect("approve first");
    let out1 = first.wait_with_output().await.expect("first");
    assert!(out1.status.success());
    assert!(!String::from_utf8_lossy(&out1.stdout).contains("Logged in"), "the older login stood down");
    assert_eq!(m.session(), stored, "the older login left the newer session alone");
    let (ok, _, err) = m.run(&["whoami"]).await;
    assert!(ok, "{err}");
}

async fn logout_revokes_on_the_server_and_forgets_here(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    m.login(&app, &alice, &["--yes", "--name", "box", "--location", "here"]).await;
    let rt = m.session().refresh_token.expect("refresh token");
    let (ok, out, _) = m.run(&["logout"]).await;
    assert!(ok && out.contains("Logged out"));
    assert!(m.profile().load().expect("ok").is_none());
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    assert!(!app.client.introspect(&cli, &rt).await.expect("introspect").active, "revoked on the server");
    let (ok, _, err) = m.run(&["whoami"]).await;
    assert!(!ok && err.contains("latchkey login"), "{err}");
    // A damaged session file is reported with what to do, and logout clears it.
    std::fs::create_dir_all(m.profile().dir()).expect("dir");
    std::fs::write(m.profile().dir().join("session.json"), b"{garbage").expect("write");
    let (ok, _, err) = m.run(&["whoami"]).await;
    assert!(!ok && err.contains("damaged") && err.contains("logout"), "{err}");
    let (ok, _, _) = m.run(&["logout"]).await;
    assert!(ok);
    assert!(m.profile().load().expect("cleared").is_none());
}

/// Two of alice's machines, logged in: a laptop at home and a server in rack 4.
pub(crate) async fn laptop_and_server(app: &TestApp, alice: &str) -> (Machine, Machine) {
    let laptop = Machine::new(app);
    laptop.login(app, alice, &["--yes", "--name", "Laptop", "--location", "home"]).await;
    let server = Machine::new(app);
    server.login(app, alice, &["--yes", "--name", "Server", "--location", "rack 4"]).await;
    (laptop, server)
}

async fn revoked_device_is_refused_at_once_and_others_keep_working(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let (laptop, server) = laptop_and_server(&app, &alice).await;
    let stolen = server.session();

    let (ok, out, err) = laptop.run(&["devices", "revoke", "server", "--yes"]).await;
    assert!(ok && out.contains("Revoked"), "{err}");
    // The revoked machine's own access token, with its own key, is refused now, not at expiry.
    let client = Client::new(&app.url).expect("client").with_device_key(server.key());
    let err = client.userinfo(&stolen.access_token).await.expect_err("refused");
    assert_eq!(err.status(), Some(401));
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    assert!(!app.client.introspect(&cli, &stolen.access_token).await.expect("introspect").active);
    let (ok, _, err) = server.run(&["whoami"]).await;
    assert!(!ok && err.contains("latchkey login"), "{err}");
    // The owner's other device is untouched.
    let (ok, out, _) = laptop.run(&["devices", "list", "--json"]).await;
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    let status =
        |slug: &str| list.as_array().and_then(|a| a.iter().find(|d| d["slug"] == slug)).map(|d| d["status"].clone());
    assert_eq!(status("laptop"), Some("active".into()));
    assert_eq!(status("server"), Some("revoked".into()));
}

async fn stolen_tokens_are_useless_without_the_device_key(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    m.login(&app, &alice, &["--yes", "--name", "victim", "--location", "here"]).await;
    let s = m.session();
    let thief = Client::new(&app.url).expect("client");
    // As a plain bearer token.
    let e = thief.userinfo(&s.access_token).await.expect_err("bearer refused");
    assert_eq!((e.status(), e.code()), (Some(401), Some("invalid_token")));
    assert_eq!(thief.devices(Auth::Access(&s.access_token)).await.expect_err("refused").status(), Some(401));
    // With proofs from the thief's own key.
    let thief = thief.with_device_key(Arc::new(DeviceKey::generate().expect("key")));
    let e = thief.userinfo(&s.access_token).await.expect_err("wrong key");
    assert_eq!((e.status(), e.code()), (Some(401), Some("invalid_dpop_proof")));
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let e = thief.refresh(&cli, s.refresh_token.as_deref().expect("rt")).await.expect_err("refresh refused");
    assert_eq!(e.code(), Some("invalid_dpop_proof"));
    // A replayed proof is refused even with the right key.
    let key = m.key();
    let url = format!("{}/oauth/userinfo", app.url);
    let proof = key.proof("GET", &url, Some(&s.access_token)).expect("proof");
    let send = || {
        reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("DPoP {}", s.access_token))
            .header("dpop", proof.clone())
            .send()
    };
    assert_eq!(send().await.expect("first").status(), 200);
    assert_eq!(send().await.expect("replay").status(), 401);
    // The owner is unaffected.
    let (ok, _, err) = m.run(&["whoami"]).await;
    assert!(ok, "{err}");
}

async fn signing_out_with_a_device_token_ends_that_devices_sign_in(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let (laptop, server) = laptop_and_server(&app, &alice).await;
    let s = server.session();
    let client = Client::new(&app.url).expect("client").with_device_key(server.key());
    client.me(Auth::Access(&s.access_token)).await.expect("signed in before");
    client.sign_out(Auth::Access(&s.access_token)).await.expect("sign out");
    // The device's sign-in is over: its access token and its refresh token are refused.
    let e = client.me(Auth::Access(&s.access_token)).await.expect_err("access token ended");
    assert_eq!(e.status(), Some(401));
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    assert!(!app.client.introspect(&cli, &s.access_token).await.expect("introspect").active);
    let e = client.refresh(&cli, s.refresh_token.as_deref().expect("rt")).await.expect_err("refresh ended");
    assert_eq!(e.code(), Some("invalid_grant"));
    // The user's session and other devices are untouched.
    app.client.me(&alice).await.expect("session still works");
    let (ok, _, err) = laptop.run(&["whoami"]).await;
    assert!(ok, "{err}");
}

async fn slugs_are_derived_once_unique_and_validated(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    for (name, want) in [("Laptop", "laptop"), ("laptop", "laptop-2"), ("Büro Rechner", "buro-rechner")] {
        let m = Machine::new(&app);
        let out = m.login(&app, &alice, &["--yes", "--name", name, "--location", "x"]).await;
        assert!(out.contains(&format!("({want})")), "{name}: {out}");
    }
    let m = Machine::new(&app);
    let out = m.login(&app, &alice, &["--yes", "--name", "!!!", "--location", "x"]).await;
    assert!(out.contains("(device-"), "{out}");
    // Renaming never changes the slug.
    let (ok, out, _) = m.run(&["devices", "rename", "laptop", "Old laptop"]).await;
    assert!(ok && out.contains("slug stays laptop"), "{out}");
    // An explicit slug is validated before anything is sent for approval...
    let (ok, _, err) = m.run(&["login", "--no-browser", "--yes", "--slug", "Not_Valid", "--location", "x"]).await;
    assert!(!ok && err.contains("slug"), "{err}");
    // ...and one that is taken is refused at approval, leaving the login pending.
    let other = Machine::new(&app);
    let (child, code) = other.start_login(&["--yes", "--name", "x", "--slug", "laptop", "--location", "x"]).await;
    let e = app.client.decide_device_login(&alice, &code, true).await.expect_err("taken");
    assert_eq!(e.status(), Some(409));
    assert!(e.to_string().contains("laptop"), "{e}");
    drop(child);
}

async fn approve_from_a_trusted_machine(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let trusted = Machine::new(&app);
    trusted.login(&app, &alice, &["--yes", "--name", "desk", "--location", "office"]).await;
    let new = Machine::new(&app);
    let (child, code) = new.start_login(&["--yes", "--name", "new", "--location", "office"]).await;
    let (ok, out, err) = trusted.run(&["approve", &code, "--yes"]).await;
    assert!(ok && out.contains("Approved"), "{err}");
    assert!(err.contains("new") && err.contains("office"), "shows what is approved: {err}");
    let out = child.wait_with_output().await.expect("login");
    assert!(out.status.success());
    // Without --yes and without a terminal, nothing is approved.
    let third = Machine::new(&app);
    let (_child, code) = third.start_login(&["--yes", "--name", "third", "--location", "x"]).await;
    let (ok, _, err) = trusted.run(&["approve", &code]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
}

async fn passwd_changes_the_password_and_ends_the_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let m = Machine::new(&app);
    m.login(&app, &alice, &["--yes", "--name", "Laptop", "--location", "desk"]).await;
    let (ok, _, err) = m.run_with_input(&["passwd"], "not the password\nnew password 1\n").await;
    assert!(!ok && err.contains("current password is wrong"), "{err}");
    let (ok, _, err) = m.run_with_input(&["passwd"], &format!("{PASSWORD}\nshort\n")).await;
    assert!(!ok, "a too-short new password is refused: {err}");
    let (ok, out, err) = m.run_with_input(&["passwd"], &format!("{PASSWORD}\nnew password 1\n")).await;
    assert!(ok, "{err}");
    assert!(out.contains("Password changed"), "{out}");
    // A device token keeps no session: every browser and API session ends; the machine stays signed in.
    assert_eq!(app.client.me(alice.as_str()).await.expect_err("session ended").status(), Some(401));
    assert_eq!(app.client.sign_in("alice", PASSWORD).await.expect_err("old password").status(), Some(401));
    app.client.sign_in("alice", "new password 1").await.expect("new password");
    let (ok, _, err) = m.run(&["whoami"]).await;
    assert!(ok, "{err}");
}

/// `latchkey sessions list` shows the sign-ins that are not devices (here two
/// browser sessions) and `sessions revoke ID` ends one at once;
/// `latchkey devices list` marks a machine added in the last 7 days.
async fn sessions_are_listed_and_ended_from_the_cli(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.signed_in("alice").await;
    let other = app.client.sign_in("alice", PASSWORD).await.expect("second browser").session_token;
    let m = Machine::new(&app);
    m.login(&app, &alice, &["--yes", "--name", "Laptop", "--location", "desk"]).await;

    let (ok, out, err) = m.run(&["sessions", "list"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().filter(|l| l.contains("Latchkey") && l.contains("127.0.0.1")).count(), 2, "{out}");
    assert!(out.contains("+ new in the last 7 days"), "{out}");
    let (ok, out, _) = m.run(&["sessions", "list", "--json"]).await;
    assert!(ok);
    let list: Vec<latchkey_proto::api::SignInInfo> = serde_json::from_str(&out).expect("json");
    assert_eq!(list.len(), 2, "the machine itself is a device, not listed here: {list:?}");
    let newest = &list[0];

    let (ok, out, err) = m.run(&["sessions", "revoke", &newest.id]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Ended the sign-in to Latchkey from latchkey-client"), "{out}");
    assert_eq!(app.client.me(other.as_str()).await.expect_err("ended").status(), Some(401));
    app.client.me(alice.as_str()).await.expect("the other one is untouched");
    let (ok, _, err) = m.run(&["sessions", "revoke", &newest.id]).await;
    assert!(!ok && err.contains("latchkey sessions list"), "a second time says what to do: {err}");

    let (ok, out, _) = m.run(&["devices", "list"]).await;
    assert!(ok);
    assert!(out.contains("(* this device)"), "{out}");
    assert!(out.contains("ADDED") && out.contains("just now"), "times read relatively: {out}");
    assert!(!out.contains(" UTC"), "no timestamps for people: {out}");
    let (ok, out, _) = m.run(&["devices", "list", "--json"]).await;
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        list[0]["created_at_ms"].as_i64().is_some_and(|t| t > 1_700_000_000_000),
        "--json keeps exact times: {out}"
    );
}

backend_tests!(
    sessions_are_listed_and_ended_from_the_cli,
    passwd_changes_the_password_and_ends_the_sessions,
    first_login_names_the_machine_and_binds_its_key,
    installers_must_say_where_the_machine_is,
    enrollment_key_provisions_without_a_browser,
    concurrent_logins_never_let_the_older_win,
    logout_revokes_on_the_server_and_forgets_here,
    revoked_device_is_refused_at_once_and_others_keep_working,
    stolen_tokens_are_useless_without_the_device_key,
    signing_out_with_a_device_token_ends_that_devices_sign_in,
    slugs_are_derived_once_unique_and_validated,
    approve_from_a_trusted_machine,
);
