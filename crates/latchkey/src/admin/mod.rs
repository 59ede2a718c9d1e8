//! `latchkey admin ...`: direct administration of the data store.

mod audit;
mod secret;
mod users;

use crate::settings::DataArgs;
use anyhow::{bail, Context};
use clap::Subcommand;
use latchkey_domain::app_settings;
use latchkey_domain::names::{check_password, ClientId, Username};
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_store::{Actor, DeviceId, EnrollmentKeyId};
use latchkey_store::{AppRecord, ClientKind, GrantType, IdTokenAlg, NewUser, Store};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Admin subcommands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage OAuth apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The server secret key that encrypts the stored keys.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Keys that provision machines without a browser.
    EnrollKey {
        #[command(subcommand)]
        command: EnrollKeyCommand,
    },
    /// Revoke any user's device.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Copy the SQLite database into a new FILE: a consistent snapshot, taken while the server runs.
    /// (PostgreSQL: use pg_dump, see README.md.)
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
    /// Put a backup made by `admin backup` into an empty --data-dir, and check it.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
}

/// `admin enroll-key`.
#[derive(Subcommand, Debug)]
pub enum EnrollKeyCommand {
    /// Create a key; it is printed once.
    Create {
        /// The user the enrolled devices will belong to.
        #[arg(long)]
        owner: String,
        /// Let it enroll more than one machine.
        #[arg(long)]
        reusable: bool,
        /// How long it works (e.g. 1h, 7d).
        #[arg(long, default_value = "1h")]
        expires: humantime::Duration,
        /// A label, e.g. `ci`.
        #[arg(long)]
        tag: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key.
    Revoke {
        /// Key ID.
        id: String,
    },
}

/// `admin device`.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Revoke a device by ID: its tokens stop working at once.
    Revoke {
        /// Device ID.
        id: String,
    },
}

/// `admin user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from a prompt, or from stdin when piped.
    Add {
        /// Sign-in name.
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the users with their status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: it gets nothing by any path (sign-in, sessions, tokens, approvals) until enabled.
    Disable {
        /// Sign-in name.
        name: String,
    },
    /// Enable a disabled account; also lifts a lock from wrong passwords.
    Enable {
        /// Sign-in name.
        name: String,
    },
    /// Delete an account and everything it holds (devices, sessions, tokens, keys).
    Delete {
        /// Sign-in name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Set a new password (from a prompt, or stdin when piped); ends every session of the user.
    ResetPassword {
        /// Sign-in name.
        name: String,
    },
    /// End everything the user holds: sessions, device and app sign-ins, approved logins not yet collected, enrollment keys.
    RevokeAll {
        /// Sign-in name.
        name: String,
    },
}

/// `admin app`.
#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Register an app. Device login is off unless --grant device_code is given.
    Add(AppAdd),
    /// List apps.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin app add`: a new app's ID, secret kind and settings.
#[derive(clap::Args, Debug)]
pub struct AppAdd {
    /// The client_id (lowercase letters, digits, - _ .).
    client_id: String,
    /// Name shown to people approving sign-ins.
    #[arg(long)]
    name: String,
    /// A server-side app with a client secret (printed once).
    #[arg(long)]
    confidential: bool,
    /// Allowed grant: authorization_code, device_code, refresh_token (repeatable).
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Vec<String>,
    /// Where web sign-in may send codes (repeatable), compared exactly: https, or http to localhost.
    #[arg(long = "redirect-uri", value_name = "URL")]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send people back to (repeatable), compared exactly.
    #[arg(long = "post-logout-redirect-uri", value_name = "URL")]
    post_logout_redirect_uris: Vec<String>,
    /// How its ID tokens are signed: EdDSA (default) or RS256, for libraries without EdDSA.
    #[arg(long, value_name = "ALG", default_value = "EdDSA")]
    id_token_alg: String,
    /// The app's own URL (https://app.example.com): where QR sign-in may return to.
    #[arg(long)]
    app_url: Option<String>,
    /// Turn QR cross-device sign-in on (needs --app-url).
    #[arg(long)]
    qr_sign_in: bool,
    /// Require a DPoP proof on every token request, so all its tokens are bound to a key.
    #[arg(long)]
    require_dpop: bool,
}

/// `admin keys`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new signing key active. Old keys stay published until their tokens expire;
    /// running servers pick the new key up within a minute.
    Rotate,
    /// List signing keys.
    List,
}

/// `admin secret`.
#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Print a new secret key (for PostgreSQL replicas, or a key file); changes nothing.
    Generate,
    /// Re-encrypt every stored key under a new secret key, in one transaction. Stop every
    /// server first, and restart them all with the new key.
    Rotate {
        /// Take the new key from FILE, or write a new one there if it does not exist. Without
        /// it: on SQLite with the data directory's secret.key, that file is replaced (the old
        /// one kept as secret.key.<its ID>); otherwise the new key is printed.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

/// `admin audit`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Seal what waits, then recompute the whole audit tree from the entries and check it against
    /// the latest signed checkpoint (and any checkpoint given); names every entry that does not match.
    Verify {
        /// A checkpoint saved earlier (`admin audit checkpoint > FILE`): the log must still contain it.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Trust only this verifier key (`name+keyid+base64`, from `admin audit checkpoint`), not the database's.
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
    },
    /// Print the latest signed checkpoint and the keys that sign it, to keep somewhere else.
    Checkpoint,
    /// Make a new key sign checkpoints; the current one co-signs for 7 days more.
    RotateKey,
}

fn now() -> latchkey_domain::Timestamp {
    latchkey_server::state::now()
}

/// Runs an admin command against the configured store.
pub async fn run(data: DataArgs, command: AdminCommand) -> anyhow::Result<ExitCode> {
    // Admin has only the storage flags; the file's other settings are read and checked like `serve` does.
    let settings = data.resolve(Default::default())?;
    // What `serve` would name the audit log, should admin be the first to sign a checkpoint.
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    let resolved = crate::settings::StorageSettings::of(&settings);
    // Say which database: a mistyped --data-dir would otherwise quietly make a new, empty one.
    match &resolved {
        crate::settings::StorageSettings::Sqlite { data_dir, .. } => {
            eprintln!("using SQLite in {}", data_dir.display())
        }
        crate::settings::StorageSettings::Postgres { .. } => eprintln!("using PostgreSQL"),
    }
    // Backup and restore work on the file, not through the store: neither may migrate or create a database.
    match (&command, &resolved) {
        (AdminCommand::Backup { file }, crate::settings::StorageSettings::Sqlite { data_dir, .. }) => {
            return backup(data_dir, file);
        }
        (AdminCommand::Restore { file }, crate::settings::StorageSettings::Sqlite { data_dir, .. }) => {
            return restore(data_dir, file);
        }
        (AdminCommand::Backup { .. } | AdminCommand::Restore { .. }, _) => bail!(
            "admin backup and restore work on SQLite only; back PostgreSQL up with pg_dump and restore it \
             with pg_restore (README.md, \"Run it in production\", shows the commands)"
        ),
        _ => {}
    }
    if let AdminCommand::Secret { command: SecretCommand::Generate } = &command {
        return Ok(secret::generate());
    }
    let source = crate::secret_key::Source::from_settings(settings.secret_key_file.as_deref())?;
    let store = crate::storage::open(&resolved, &source).await?;
    let store = store.as_ref();
    match command {
        AdminCommand::User { command: UserCommand::Add { name, admin } } => add_user(store, &name, admin).await,
        AdminCommand::User { command } => users::run(store, command).await,
        AdminCommand::App { command: AppCommand::Add(add) } => add_app(store, add).await,
        AdminCommand::App { command: AppCommand::List { json } } => list_apps(store, json).await,
        AdminCommand::Keys { command: KeysCommand::Rotate } => rotate_keys(store).await,
        AdminCommand::Keys { command: KeysCommand::List } => list_keys(store).await,
        AdminCommand::Audit { command: AuditCommand::Verify { checkpoints, keys } } => {
            audit::verify(store, &public_url, &checkpoints, &keys).await
        }
        AdminCommand::Audit { command: AuditCommand::Checkpoint } => audit::checkpoint(store).await,
        AdminCommand::Audit { command: AuditCommand::RotateKey } => audit::rotate_key(store).await,
        AdminCommand::Secret { command: SecretCommand::Rotate { new_key_file } } => {
            secret::rotate(store, &resolved, &source, new_key_file.as_deref()).await
        }
        AdminCommand::Secret { command: SecretCommand::Generate } => Ok(secret::generate()),
        AdminCommand::EnrollKey { command } => enroll_key(store, command).await,
        AdminCommand::Device { command: DeviceCommand::Revoke { id } } => revoke_device(store, &id).await,
        // Answered above, before the store opened.
        AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => Ok(ExitCode::FAILURE),
    }
}

/// `admin backup FILE`: an online copy of the data directory's database.
fn backup(data_dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let db = crate::storage::sqlite_path(data_dir);
    if !db.exists() {
        bail!("there is no database in {} (is --data-dir the one the server uses?)", data_dir.display());
    }
    if file.symlink_metadata().is_ok() {
        bail!("{} already exists; a backup never overwrites: pick a new name", file.display());
    }
    let checked = latchkey_store_sqlite::backup(&db, file)
        .with_context(|| format!("cannot back {} up into {}", db.display(), file.display()))?;
    println!(
        "Backed up {} into {} ({} bytes, schema version {}, integrity checked).",
        db.display(),
        file.display(),
        checked.bytes,
        checked.schema_version
    );
    Ok(ExitCode::SUCCESS)
}

/// `admin restore FILE`: a backup into an empty data directory, checked before and after.
fn restore(data_dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let db = crate::storage::sqlite_path(data_dir);
    let existing =
        ["", "-wal", "-shm"].iter().map(|s| PathBuf::from(format!("{}{s}", db.display()))).find(|p| p.exists());
    if let Some(p) = existing {
        bail!(
            "{} already has a database ({}); restore into an empty --data-dir; move the old one away first",
            data_dir.display(),
            p.display()
        );
    }
    if !file.is_file() {
        bail!("there is no backup file {}", file.display());
    }
    crate::storage::private_dir(data_dir)?;
    let checked = latchkey_store_sqlite::restore(file, &db)
        .with_context(|| format!("cannot restore {} into {}", file.display(), data_dir.display()))?;
    println!(
        "Restored {} into {} (schema version {}, integrity checked).",
        file.display(),
        db.display(),
        checked.schema_version
    );
    println!(
        "Put the server secret key of the backup's time in place ({} or LATCHKEY_SECRET_KEY), then start the \
         server on it with --data-dir {}; `latchkey admin audit verify` checks the audit chain.",
        crate::secret_key::default_file(data_dir).display(),
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A new password: from a prompt (asked twice), or the first line of stdin when piped.
pub(crate) fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if p != again {
            bail!("the passwords differ; nothing was created");
        }
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

async fn add_user(store: &dyn Store, name: &str, admin: bool) -> anyhow::Result<ExitCode> {
    let username = Username::parse(name)?;
    if store.user_by_name(username.as_str()).await?.is_some() {
        bail!("a user named {username} already exists");
    }
    let password = read_password()?;
    check_password(&password)?;
    let hash = latchkey_server::passwords::hash(password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.to_string(),
        password_hash: hash,
        is_admin: admin,
    };
    let created = store.create_user(user, Some("admin-cli".into()), now()).await?;
    println!("Created {}user {} ({})", if admin { "admin " } else { "" }, created.username, created.id);
    Ok(ExitCode::SUCCESS)
}

/// Registers an app after the same checks as the Apps page (`latchkey_domain::app_settings`).
async fn add_app(store: &dyn Store, add: AppAdd) -> anyhow::Result<ExitCode> {
    let id = ClientId::parse(&add.client_id)?;
    let mut grant_types = Vec::new();
    for g in &add.grants {
        let parsed = GrantType::parse_short(g)
            .with_context(|| format!("unknown grant {g:?}; use authorization_code, device_code or refresh_token"))?;
        if !grant_types.contains(&parsed) {
            grant_types.push(parsed);
        }
    }
    let input = app_settings::AppSettingsInput {
        display_name: &add.name,
        app_url: add.app_url.as_deref().unwrap_or(""),
        authorization_code: grant_types.contains(&GrantType::AuthorizationCode),
        qr_sign_in: add.qr_sign_in,
        require_dpop: add.require_dpop,
        redirect_uris: add.redirect_uris.iter().map(String::as_str).collect(),
        post_logout_redirect_uris: add.post_logout_redirect_uris.iter().map(String::as_str).collect(),
        id_token_alg: &add.id_token_alg,
    };
    let settings = app_settings::check(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
    let confidential = add.confidential;
    let secret = confidential.then(|| Secret::generate(SecretKind::ClientSecret, &mut rand::rngs::OsRng));
    let app = AppRecord {
        client_id: id.to_string(),
        display_name: settings.display_name.to_string(),
        kind: if confidential { ClientKind::Confidential } else { ClientKind::Public },
        secret_hash: secret.as_ref().map(Secret::hash),
        grant_types,
        redirect_uris: settings.redirect_uris,
        app_url: settings.app_url,
        qr_sign_in: add.qr_sign_in,
        require_dpop: add.require_dpop,
        created_at: now(),
        post_logout_redirect_uris: settings.post_logout_redirect_uris,
        id_token_alg: settings.id_token_alg,
    };
    if app.id_token_alg == IdTokenAlg::RS256 {
        // Made now, so it is published before any relying party reads the key set.
        latchkey_server::keys::ensure_rsa_key(store).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    store.create_app(app, Some("admin-cli".into()), now()).await?;
    println!("Registered app {id}");
    if let Some(s) = secret {
        println!("client_secret: {}", s.expose());
        println!("(shown once; store it now)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_apps(store: &dyn Store, json: bool) -> anyhow::Result<ExitCode> {
    let apps = store.list_apps().await?;
    if json {
        let v: Vec<_> = apps
            .iter()
            .map(|a| {
                serde_json::json!({
                    "client_id": a.client_id,
                    "name": a.display_name,
                    "kind": a.kind.as_str(),
                    "grant_types": a.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                    "redirect_uris": a.redirect_uris,
                    "post_logout_redirect_uris": a.post_logout_redirect_uris,
                    "id_token_alg": a.id_token_alg.as_str(),
                    "require_dpop": a.require_dpop,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<24} {:<13} {:<28} GRANTS", "CLIENT_ID", "KIND", "NAME");
        for a in apps {
            let grants: Vec<_> = a
                .grant_types
                .iter()
                .map(|g| if *g == GrantType::DeviceCode { "device_code" } else { g.as_str() })
                .collect();
            println!("{:<24} {:<13} {:<28} {}", a.client_id, a.kind.as_str(), a.display_name, grants.join(","));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes a new Ed25519 key active, and a new RSA key too when RS256 ID tokens are in use.
async fn rotate_keys(store: &dyn Store) -> anyhow::Result<ExitCode> {
    let rsa_in_use = store.signing_keys().await?.iter().any(|k| k.alg == IdTokenAlg::RS256 && k.retired_at.is_none());
    let mut keys = vec![latchkey_server::keys::generate_key(now()).map_err(|e| anyhow::anyhow!("{e}"))?];
    if rsa_in_use {
        keys.push(latchkey_server::keys::generate_rsa_key(now()).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    for key in keys {
        let (kid, alg) = (key.kid.clone(), key.alg);
        store.add_signing_key(key, Some("admin-cli".into()), now()).await?;
        println!("New {} signing key {kid} is active.", alg.as_str());
    }
    println!(
        "Previous keys stay published until the tokens they signed expire. Running servers switch within a minute."
    );
    Ok(ExitCode::SUCCESS)
}

async fn list_keys(store: &dyn Store) -> anyhow::Result<ExitCode> {
    for k in store.signing_keys().await? {
        let state = if k.retired_at.is_some() { "retired" } else { "active" };
        println!("{}  {:<5}  {state}", k.kid, k.alg.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

async fn enroll_key(store: &dyn Store, command: EnrollKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        EnrollKeyCommand::Create { owner, reusable, expires, tag } => {
            let name = Username::parse(&owner)?;
            let Some(user) = store.user_by_name(name.as_str()).await? else {
                bail!("there is no user {name}; create it with `latchkey admin user add {name}`");
            };
            let tag = tag.map(|t| latchkey_domain::device::parse_tag("tag", &t)).transpose()?;
            let secs = i64::try_from(expires.as_secs()).unwrap_or(i64::MAX);
            let (secret, key) =
                latchkey_server::routes::api::enrollment_keys::new_key(&user.id, reusable, secs, tag, "admin-cli");
            let id = key.id.clone();
            store.create_enrollment_key(key, now()).await?;
            println!("{}", secret.expose());
            eprintln!(
                "Enrollment key {id} for {name}: {}, valid for {expires}. It is shown only now.",
                if reusable { "reusable" } else { "single use" }
            );
            eprintln!("On the machine: latchkey login --server URL --enroll-key <key> --name NAME --location PLACE");
        }
        EnrollKeyCommand::List { json } => {
            let keys: Vec<_> = store
                .enrollment_keys(None)
                .await?
                .into_iter()
                .map(latchkey_server::routes::api::enrollment_keys::key_info)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!("{:<38} {:<16} {:<9} {:<5} {:<8} TAG", "ID", "OWNER", "REUSABLE", "USES", "STATE");
                let t = now().as_millis();
                for k in keys {
                    let state = if k.revoked {
                        "revoked"
                    } else if k.expires_at_ms <= t {
                        "expired"
                    } else {
                        "live"
                    };
                    println!(
                        "{:<38} {:<16} {:<9} {:<5} {:<8} {}",
                        k.id,
                        k.owner,
                        k.reusable,
                        k.uses,
                        state,
                        k.tag.unwrap_or_default()
                    );
                }
            }
        }
        EnrollKeyCommand::Revoke { id } => {
            if store.revoke_enrollment_key(EnrollmentKeyId(&id), None, Actor("admin-cli"), now()).await? {
                println!("Revoked enrollment key {id}.");
            } else {
                bail!("no live enrollment key {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke_device(store: &dyn Store, id: &str) -> anyhow::Result<ExitCode> {
    match store.revoke_device(DeviceId(id), None, Actor("admin-cli"), now()).await? {
        latchkey_store::RevokeDevice::Revoked(d) => {
            println!("Revoked device {} ({}); its tokens no longer work.", d.display_name, d.slug);
            Ok(ExitCode::SUCCESS)
        }
        latchkey_store::RevokeDevice::AlreadyRevoked => bail!("device {id} is already revoked"),
        latchkey_store::RevokeDevice::NotFound => bail!("no device {id}"),
    }
}
