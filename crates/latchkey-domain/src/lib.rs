//! Latchkey's domain: everything that decides, nothing that waits.
//!
//! This crate has no I/O and no async. Time is passed in as a [`Timestamp`],
//! randomness as an `rand::RngCore`, so every rule here is tested directly
//! and the storage and HTTP layers stay thin.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod account;
pub mod app_settings;
pub mod at_rest;
pub mod audit;
pub mod audit_sentence;
pub mod authorization;
pub mod device;
pub mod device_grant;
pub mod dpop;
pub mod events;
pub mod humanize;
pub mod logout;
pub mod merkle;
pub mod names;
pub mod pairing;
pub mod passkey;
pub mod rate_limit;
pub mod refresh;
pub mod retention;
pub mod scope;
pub mod secret;
pub mod signed_note;
pub mod slug;
pub mod time;
pub mod trust;
pub mod trusted_session;
pub mod user_code;

pub use time::Timestamp;
