//! Every state-changing operation, written once for every backend.
//!
//! Each function runs inside the transaction `tx` the backend opened: it
//! loads the records, asks `latchkey-domain` what to do, executes the plan
//! through [`Txn`](crate::txn::Txn) and appends the audit entry. Where a device
//! code is consumed, a device registered or a pairing collected can be read
//! off the file and function names here.

pub mod accounts;
pub mod activity;
pub mod audit;
pub mod devices;
pub mod enrollment;
pub mod events;
pub mod grants;
pub mod keys;
pub mod pairings;
pub mod passkeys;
pub mod sign_ins;
pub mod tokens;
pub mod trust;
pub mod trusted_sessions;
pub mod web_sign_in;
