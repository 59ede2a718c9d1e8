#!/usr/bin/env bash
# Schema-driven API fuzzing: Schemathesis against a real `latchkey serve`,
# driven by the server's own OpenAPI document (GET /api/openapi.json).
#
#   scripts/schemathesis.sh
#
# It builds the server, makes a Python venv with Schemathesis (from PyPI),
# starts the server on SQLite in a temporary directory on a free port of
# 127.0.0.1, and seeds what authenticated calls need: an admin with a session
# token, a public app whose device login it approves (a plain bearer device
# token), and a confidential app (client_secret_basic). Then it runs
# Schemathesis with two checks on every response:
#   * not_a_server_error: no 5xx;
#   * rfc6749_error_shape (scripts/schemathesis_hooks.py): every 4xx is a JSON
#     object with a string `error` and an optional string `error_description`.
# Three runs: the device-only operations (events, trust, trusted sessions,
# pairing decision) with the device token; every other operation as the
# signed-in admin; and signing in and out, ending sign-ins and changing the
# password last (they end the session or lock the account the other runs use).
# GET /api/v1/channel is left out: with a valid token it is an endless event
# stream. The device token is a plain bearer one, so the trust and
# trusted-session operations, which need a DPoP-bound device, are exercised
# only up to that refusal. Exits non-zero on any failed check, on errors in
# the server log, or if the server died.
#
# Tunables (environment): MAX_EXAMPLES (per operation, default 50), SEED,
# CARGO_TARGET_DIR, VENV (default $CARGO_TARGET_DIR/schemathesis-venv),
# LK_BIN with SKIP_BUILD=1 (a server binary built elsewhere), KEEP=1 (keep the
# temporary directory with the server log and reports).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=${VENV:-$TARGET/schemathesis-venv}
MAX_EXAMPLES=${MAX_EXAMPLES:-50}
# Schemathesis 4's configuration and hook API; a new major may change both.
SCHEMATHESIS_REQ='schemathesis>=4.3,<5'

if [[ ${SKIP_BUILD:-} != 1 ]]; then
    (cd "$ROOT" && cargo build -q -p latchkey --bin latchkey)
fi
LK=${LK_BIN:-$TARGET/debug/latchkey}

if [[ ! -x $VENV/bin/schemathesis ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$SCHEMATHESIS_REQ"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-schemathesis.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP:-} == 1 ]]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

DATA=$WORK/data
ADMIN_LOG=$WORK/admin.log
PASSWORD="fuzz-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
admin() { LATCHKEY_LOG=warn "$LK" admin --data-dir "$DATA" "$@" 2>>"$ADMIN_LOG"; }
echo "$PASSWORD" | admin user add fuzz --admin >/dev/null
admin app add fuzz-device --name "Fuzz device app" --grant device_code --grant refresh_token >/dev/null
CLIENT_SECRET=$(admin app add fuzz-server --name "Fuzz server app" --confidential \
    --grant device_code --grant refresh_token | sed -n 's/^client_secret: //p')
[[ -n $CLIENT_SECRET ]] || { cat "$ADMIN_LOG" >&2; echo "no client secret" >&2; exit 1; }

# The per-network limit on device authorizations would turn most of the run into 429s.
LATCHKEY_LOG=warn LATCHKEY_DEVICE_AUTH_PER_MINUTE=0 \
    "$LK" serve --data-dir "$DATA" --listen 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL=
for _ in $(seq 1 200); do
    URL=$(sed -n 's/^Latchkey listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/server.log" | head -n1)
    [[ -n $URL ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "the server did not start" >&2; exit 1; }
    sleep 0.05
done
[[ -n $URL ]] || { cat "$WORK/server.log" >&2; echo "the server did not say where it listens" >&2; exit 1; }
echo "server at $URL (log: $WORK/server.log)"

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
SESSION=$(curl -fsS "$URL/api/v1/session" -H 'content-type: application/json' \
    -d "{\"username\":\"fuzz\",\"password\":\"$PASSWORD\"}" | json_field session_token)
GRANT=$(curl -fsS "$URL/oauth/device_authorization" \
    -d client_id=fuzz-device -d device_name=fuzz -d device_location=later)
DEVICE_CODE=$(json_field device_code <<<"$GRANT")
USER_CODE=$(json_field user_code <<<"$GRANT")
curl -fsS "$URL/api/v1/device/decision" -H "authorization: Bearer $SESSION" -H 'content-type: application/json' \
    -d "{\"user_code\":\"$USER_CODE\",\"decision\":\"approve\"}" >/dev/null
DEVICE_TOKEN=$(curl -fsS "$URL/oauth/token" -d client_id=fuzz-device \
    -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d "device_code=$DEVICE_CODE" | json_field access_token)

# Authentication per security scheme of the document: bearer for the JSON API,
# HTTP Basic for the OAuth endpoints' confidential app.
config() { # bearer-token
    cat >"$WORK/schemathesis.toml" <<EOF
[auth.openapi.bearer]
bearer = "$1"

[auth.openapi.clientSecretBasic]
username = "fuzz-server"
password = "$CLIENT_SECRET"
EOF
}

failed=0
run() { # name bearer-token schemathesis-filters...
    local name=$1 token=$2
    shift 2
    config "$token"
    echo "--- schemathesis: $name"
    if ! (cd "$WORK" && SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$ROOT/scripts" PYTHONDONTWRITEBYTECODE=1 \
        "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$URL/api/openapi.json" \
        --checks not_a_server_error,rfc6749_error_shape \
        --max-examples "$MAX_EXAMPLES" ${SEED:+--seed "$SEED"} \
        --request-timeout 30 --workers 2 --no-color \
        --report junit --report-dir "$WORK/report-$name" \
        "$@"); then
        # A failed check is a finding; an error inside Schemathesis's own test
        # generation (it has had flaky ones) is reported but is not.
        if grep -q '<failure' "$WORK/report-$name"/*.xml 2>/dev/null || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            failed=1
        else
            echo "WARNING: Schemathesis reported errors of its own (above), not failed checks" >&2
        fi
    fi
}

start=$(date +%s)
# One option per filter kind: Schemathesis 4 keeps only the last of a repeated
# --exclude-operation-id. The device run goes first, and signing in, ending
# sign-ins, signing out and changing the password last: the fuzzer learns the
# user's name and sign-in IDs from responses, and wrong passwords lock the
# account, which would leave the other runs nothing but 401 and 403.
run device "$DEVICE_TOKEN" --include-tag-regex '^(events|trust|trusted-sessions)$' \
    --include-operation-id pairingDecision --exclude-operation-id channel
run signed-in "$SESSION" --exclude-operation-id-regex '^(signIn|endSignIn|signOut|changePassword|channel)$'
run sign-out "$SESSION" --include-operation-id-regex '^(signIn|endSignIn|changePassword|signOut)$'
echo "schemathesis took $(($(date +%s) - start)) s"

if grep -q ' ERROR \| panicked' "$WORK/server.log"; then
    echo "the server logged errors:" >&2
    grep ' ERROR \| panicked' "$WORK/server.log" | head -20 >&2
    failed=1
fi
if [[ $failed != 0 ]]; then
    KEEP=1
    echo "FAILED: see the output above and $WORK" >&2
    exit 1
fi
echo "OK: no 5xx, and every 4xx in the RFC 6749 shape"
