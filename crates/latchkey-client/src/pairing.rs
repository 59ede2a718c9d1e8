//! QR sign-in (pairing) through the JSON API: what a native desktop app and a
//! phone app say to the server.

use crate::{Auth, Client, ClientError, ClientResult};
use latchkey_proto::pairing::{
    PairingDecided, PairingDecision, PairingStarted, PairingWait, StartPairing, AUTH_SCHEME,
};
use latchkey_proto::paths;

impl Client {
    /// Starts a QR sign-in to `client_id` from a desktop app.
    pub async fn start_pairing(&self, client_id: &str) -> ClientResult<PairingStarted> {
        let body = StartPairing { client_id: client_id.into(), return_to: None };
        Self::decode(self.http.post(self.url(paths::PAIRINGS)).json(&body).send().await?).await
    }

    /// Waits for the phone's decision: `pending` after the server's wait timeout (call again).
    pub async fn wait_pairing(&self, pairing_secret: &str) -> ClientResult<PairingWait> {
        let req = self
            .http
            .post(self.url(paths::PAIRING_WAIT))
            .header(reqwest::header::AUTHORIZATION, format!("{AUTH_SCHEME} {pairing_secret}"));
        Self::decode(req.send().await?).await
    }

    /// The desktop gives up on its QR sign-in.
    pub async fn cancel_pairing(&self, pairing_secret: &str) -> ClientResult<()> {
        let req = self
            .http
            .post(self.url(paths::PAIRING_CANCEL))
            .header(reqwest::header::AUTHORIZATION, format!("{AUTH_SCHEME} {pairing_secret}"));
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(resp).await.map(|_| ())
    }

    /// A phone app approves (`approve = true`) or denies the QR sign-in behind `phone_code`,
    /// with a session token or, from a client with its device key, that device's access token.
    pub async fn decide_pairing<'a>(
        &self,
        auth: impl Into<Auth<'a>>,
        phone_code: &str,
        approve: bool,
    ) -> ClientResult<PairingDecided> {
        let body = PairingDecision {
            phone_code: phone_code.into(),
            decision: if approve { "approve" } else { "deny" }.into(),
        };
        let body = serde_json::to_value(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(reqwest::Method::POST, paths::PAIRING_DECISION, auth.into(), Some(body)).await
    }
}
