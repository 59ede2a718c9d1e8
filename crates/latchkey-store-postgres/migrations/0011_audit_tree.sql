-- The audit log becomes a Merkle tree (RFC 9162 style) sealed off the request path.
--
-- Why: every audited transaction used to lock the one `audit_head` row, so
-- audited writes from every replica ran one at a time, and a hash chain cannot
-- show that its tail was cut off. Now a request only inserts its entry, its
-- `seq` from a sequence (no lock); one sealer per database (an advisory lock)
-- later gives each committed entry its `leaf` (its position in the tree),
-- stores the tree's perfect-subtree hashes, and signs a checkpoint.
--
-- Entries written before this migration keep their chain links (`prev_hash`,
-- `hash`, and the frozen `audit_head`) and are sealed first, in `seq` order:
-- the old chain becomes the first leaves of the tree.
CREATE SEQUENCE audit_log_seq;
SELECT setval('audit_log_seq', COALESCE((SELECT MAX(seq) FROM audit_log), 0) + 1, false);
ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq');
ALTER SEQUENCE audit_log_seq OWNED BY audit_log.seq;
ALTER TABLE audit_log ALTER COLUMN prev_hash DROP NOT NULL;
ALTER TABLE audit_log ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit_log ADD COLUMN leaf BIGINT;
CREATE UNIQUE INDEX audit_log_leaf ON audit_log(leaf) WHERE leaf IS NOT NULL;
-- What the sealer reads: only the entries still waiting.
CREATE INDEX audit_log_unsealed ON audit_log(seq) WHERE leaf IS NULL;

-- Every complete perfect subtree of the tree: level 0 are the leaf hashes,
-- level k covers leaves [idx * 2^k, (idx + 1) * 2^k). Proofs read O(log n) rows.
CREATE TABLE audit_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The latest signed checkpoint; `size` leaves are sealed.
CREATE TABLE audit_tree (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       BIGINT NOT NULL,
    root       BYTEA NOT NULL,
    checkpoint TEXT,
    sealed_at  BIGINT
);
INSERT INTO audit_tree (id, size, root)
VALUES (1, 0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'));

-- The Ed25519 keys that sign checkpoints. Every key not retired signs, so a
-- rotation's checkpoints carry the old and the new signature side by side.
CREATE TABLE audit_keys (
    key_id     BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    seed       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- One-time values seen by any replica (DPoP proofs): a replay to another
-- replica is refused too. Rows live until the value could no longer be accepted.
CREATE TABLE once_used (
    key   BYTEA PRIMARY KEY,   -- SHA-256 of what must be used once
    until BIGINT NOT NULL
);
