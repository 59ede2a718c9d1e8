//! The command-line client: every command talks to the server through `latchkey-client`.

pub mod account_cmds;
pub mod audit_cmds;
pub mod events_cmds;
pub mod login;
pub mod output;
pub mod trust_cmds;

use clap::Args;
use latchkey_client::account::Account;
use latchkey_client::profile::Profile;

/// Flags every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The Latchkey server (default: the one this profile logged in to).
    #[arg(long, env = "LATCHKEY_SERVER", global = true)]
    pub server: Option<String>,
    /// Keep several accounts or servers apart on one machine.
    #[arg(long, env = "LATCHKEY_PROFILE", default_value = "default", global = true)]
    pub profile: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    /// The selected profile.
    pub fn profile(&self) -> anyhow::Result<Profile> {
        Ok(Profile::named(&self.profile)?)
    }

    /// The logged-in account of the selected profile.
    pub fn account(&self) -> anyhow::Result<Account> {
        Ok(Account::open(self.profile()?, self.server.as_deref())?)
    }
}
