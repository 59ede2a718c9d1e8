-- Keys at rest (issue 14): the private keys in this database are sealed
-- (XChaCha20-Poly1305 envelopes, latchkey-domain/src/at_rest.rs) under a server
-- secret key kept outside it. The columns are renamed for what they hold; rows
-- written before this migration stay plaintext until the server's first start
-- with a secret key seals them in place, in one transaction.
ALTER TABLE signing_keys RENAME COLUMN private_pkcs8 TO private_sealed;
ALTER TABLE audit_keys RENAME COLUMN seed TO seed_sealed;

-- Which secret key the keys are sealed under, by its key ID; NULL while they are
-- plaintext. One row.
CREATE TABLE key_sealing (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key_id     TEXT,
    changed_at BIGINT
);
INSERT INTO key_sealing (id) VALUES (1);
