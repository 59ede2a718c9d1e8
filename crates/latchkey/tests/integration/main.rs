//! Latchkey's integration suite: the real server over real HTTP on a random
//! port, driven through `latchkey-client`, against every storage backend.
//!
//! Each test body is written once and run per backend by `backend_tests!`:
//! SQLite always, PostgreSQL when `LATCHKEY_TEST_POSTGRES_URL` is set (and
//! then a failure to connect fails the test; it never skips).

mod browser_support;
mod support;

mod accounts;
mod admin_cli;
mod audit;
mod audit_page;
mod backup;
mod bad_input;
mod browser;
mod browser_activity;
mod browser_audit;
mod browser_passkeys;
mod cli;
mod crash;
mod device_login;
mod events;
mod events_cli;
mod hardening;
mod instant_approval;
mod keys_at_rest;
mod limits;
mod load_balancer;
mod observability;
mod openapi;
mod pages;
mod qr_api;
mod replicas;
mod rp_browser;
mod tokens;
mod trusted_cli;
mod trusted_sessions;
mod web_pages;
mod web_sign_in;
mod web_sign_in_qr;
mod web_sign_out;
