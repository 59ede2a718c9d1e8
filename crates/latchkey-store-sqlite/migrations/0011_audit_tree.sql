-- The audit log becomes a Merkle tree (RFC 9162 style) sealed off the request path.
--
-- Why: every audited transaction used to lock one chain-head row, so audited
-- writes ran one at a time across all replicas, and a hash chain cannot show
-- that its tail was cut off. Now a request only inserts its entry (its `seq`
-- comes from the table, no lock); one sealer per database later gives each
-- committed entry its `leaf` (its position in the tree), stores the tree's
-- perfect-subtree hashes, and signs a checkpoint (size, root, time).
--
-- Entries written before this migration keep their chain links (`prev_hash`,
-- `hash`, and the frozen `audit_head`) and are sealed first, in `seq` order:
-- the old chain becomes the first leaves of the tree. Later entries have no
-- links, so the table is rebuilt to let those columns be empty.
CREATE TABLE audit_log_v2 (
    seq       INTEGER PRIMARY KEY,   -- rowid: the next one on insert, no lock needed
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT,
    subject   TEXT,
    detail    TEXT NOT NULL,
    prev_hash BLOB,                  -- the old chain's link (entries from before the tree)
    hash      BLOB,
    leaf      INTEGER                -- position in the tree, set by the sealer
);
INSERT INTO audit_log_v2 (seq, at, kind, actor, subject, detail, prev_hash, hash)
SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_subject ON audit_log(subject, seq);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
CREATE UNIQUE INDEX audit_log_leaf ON audit_log(leaf) WHERE leaf IS NOT NULL;
-- What the sealer reads: only the entries still waiting.
CREATE INDEX audit_log_unsealed ON audit_log(seq) WHERE leaf IS NULL;

-- Every complete perfect subtree of the tree: level 0 are the leaf hashes,
-- level k covers leaves [idx * 2^k, (idx + 1) * 2^k). Proofs read O(log n) rows.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- The latest signed checkpoint; `size` leaves are sealed.
CREATE TABLE audit_tree (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    checkpoint TEXT,                 -- the signed note (C2SP tlog-checkpoint)
    sealed_at  INTEGER
);
INSERT INTO audit_tree (id, size, root) VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');

-- The Ed25519 keys that sign checkpoints. Every key not retired signs, so a
-- rotation's checkpoints carry the old and the new signature side by side.
CREATE TABLE audit_keys (
    key_id     INTEGER PRIMARY KEY,  -- the signed-note key ID (a u32)
    name       TEXT NOT NULL,
    seed       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

-- One-time values seen by any replica (DPoP proofs): a replay to another
-- replica is refused too. Rows live until the value could no longer be accepted.
CREATE TABLE once_used (
    key   BLOB PRIMARY KEY,   -- SHA-256 of what must be used once
    until INTEGER NOT NULL
);
