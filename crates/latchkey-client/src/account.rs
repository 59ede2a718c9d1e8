//! A signed-in profile in use: the stored session, the device key, and a
//! client that keeps the access token fresh (refreshing and re-saving it).

use crate::profile::{now_ms, Profile, ProfileError, Saved, Session};
use crate::{AppCredentials, Auth, Client, ClientError};
use latchkey_proto::oauth::TokenResponse;
use std::sync::Arc;

/// Refresh this long before the access token expires.
const REFRESH_MARGIN_MS: i64 = 30_000;

/// Why an account could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Nothing stored in this profile.
    #[error("not logged in; run `latchkey login`")]
    NotLoggedIn,
    /// The stored session is for another server than the one asked for.
    #[error("this profile is logged in to {stored}, not {asked}; use --profile for a second server, or `latchkey logout` first")]
    OtherServer {
        /// Server in the session.
        stored: String,
        /// Server asked for.
        asked: String,
    },
    /// The session can no longer be refreshed (revoked, expired, device revoked).
    #[error("this machine's sign-in is no longer valid ({0}); run `latchkey login` again")]
    Expired(String),
    /// Profile storage failed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A logged-in profile.
pub struct Account {
    profile: Profile,
    session: Session,
    client: Client,
}

/// Makes the session to store from a token response.
pub fn session_from(
    server: &str,
    client_id: &str,
    t: &TokenResponse,
    username: &str,
    login_started_at_ms: i64,
) -> Session {
    Session {
        server: server.trim_end_matches('/').to_string(),
        client_id: client_id.to_string(),
        access_token: t.access_token.clone(),
        token_type: t.token_type.clone(),
        access_expires_at_ms: now_ms() + t.expires_in * 1000,
        refresh_token: t.refresh_token.clone(),
        scope: t.scope.clone(),
        username: username.to_string(),
        device: None,
        login_started_at_ms,
    }
}

impl Account {
    /// Opens the profile's stored session; `server`, when given, must match it.
    pub fn open(profile: Profile, server: Option<&str>) -> Result<Self, AccountError> {
        let session = profile.load()?.ok_or(AccountError::NotLoggedIn)?;
        if let Some(asked) = server {
            let asked = asked.trim_end_matches('/');
            if asked != session.server {
                return Err(AccountError::OtherServer { stored: session.server.clone(), asked: asked.to_string() });
            }
        }
        let key = Arc::new(profile.device_key()?);
        let client = Client::new(&session.server)?.with_device_key(key);
        Ok(Self { profile, session, client })
    }

    /// The stored session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The client, signing with this machine's key.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A fresh access token, refreshing (and re-saving) first when it is about to expire.
    pub async fn access_token(&mut self) -> Result<String, AccountError> {
        if self.session.access_expires_at_ms - REFRESH_MARGIN_MS > now_ms() {
            return Ok(self.session.access_token.clone());
        }
        self.refresh().await?;
        Ok(self.session.access_token.clone())
    }

    /// Exchanges the refresh token now.
    pub async fn refresh(&mut self) -> Result<(), AccountError> {
        let rt = self.session.refresh_token.clone().ok_or_else(|| AccountError::Expired("no refresh token".into()))?;
        let app = AppCredentials::public(&self.session.client_id);
        let t = match self.client.refresh(&app, &rt).await {
            Ok(t) => t,
            Err(e @ ClientError::Server { .. }) if e.status() == Some(400) || e.status() == Some(401) => {
                return Err(AccountError::Expired(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut next = session_from(
            &self.session.server,
            &self.session.client_id,
            &t,
            &self.session.username,
            self.session.login_started_at_ms,
        );
        next.device = self.session.device.clone();
        match self.profile.save_refreshed(&next)? {
            Saved::Written => self.session = next,
            // Another login replaced this one meanwhile: use what it stored.
            Saved::Superseded(newer) => self.session = *newer,
        }
        Ok(())
    }

    /// Runs an account-API call with a fresh access token; refreshes once and retries if the token was refused.
    pub async fn with_token<T, F, Fut>(&mut self, f: F) -> Result<T, AccountError>
    where
        F: Fn(Client, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let token = self.access_token().await?;
        match f(self.client.clone(), token).await {
            Err(e) if e.status() == Some(401) => {
                self.refresh().await?;
                let token = self.session.access_token.clone();
                Ok(f(self.client.clone(), token).await?)
            }
            other => Ok(other?),
        }
    }
}

/// Shorthand for [`Auth::Access`].
pub fn access(token: &str) -> Auth<'_> {
    Auth::Access(token)
}
