-- Apps may have their ID tokens signed with RS256 (for relying parties that
-- lack EdDSA). Each algorithm has its own active signing key: rotating or
-- adding a key of one retires only the keys of that algorithm. An RSA key is
-- made the first time an RS256 app needs one.
ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'EdDSA';
