//! Signed notes and audit checkpoints (c2sp.org/signed-note, tlog-checkpoint),
//! as the CLI and witnesses read them from the server.
//!
//! The input is one field per line group: a verifier key, then the rest as a
//! note. Checks: a verifier key that parses prints back as given; a checkpoint
//! that parses prints back as given; a note opened was signed by the trusted
//! key; a note signed here opens to its text, and any one-character change to
//! it is refused.
#![no_main]

use latchkey_domain::signed_note::{open, Checkpoint, NoteSigner, NoteVerifier};
use latchkey_fuzz::{fields, tampered, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    let f = fields(input, 2);
    if let Ok(v) = NoteVerifier::parse(f[0]) {
        assert_eq!(v.to_vkey(), f[0]);
    }
    let Ok(signer) = NoteSigner::new("lk.example/audit", &[9; 32]) else { return };
    let trusted = [signer.verifier()];

    for text in [input, f[1]] {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.body(), text, "a checkpoint prints back as read");
        }
        if let Ok(opened) = open(text, &trusted) {
            assert!(text.starts_with(&opened.text));
            assert_eq!(opened.verified_by, ["lk.example/audit"]);
        }
    }

    let Ok(note) = signer.sign(f[1]) else { return };
    let opened = open(&note, &trusted).expect("a note signed by a trusted key opens");
    assert_eq!(opened.text, f[1]);
    if let Some(t) = tampered(&note, data.len()) {
        assert!(open(&t, &trusted).is_err(), "a changed note opened: {t:?}");
    }
});
