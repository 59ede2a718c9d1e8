#!/usr/bin/env bash
# Checks the packaging files on a machine without a container engine:
#   1. the systemd unit, with `systemd-analyze verify` (skipped, saying so, when it is not installed);
#   2. the Dockerfile, by running its steps as a plain script: the same cargo command
#      (read from the Dockerfile), the runtime layout in a temporary directory, the
#      ENTRYPOINT's command (read from the Dockerfile, with the data directory and the
#      port moved into that directory and a free port), as a non-root user when run as
#      root, then GET /healthz, then SIGTERM and a clean exit.
# Usage: packaging/check.sh   (from anywhere; builds the release binary, which takes a while)
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "--- systemd unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants ExecStart's binary to exist: point a copy of the unit at a stand-in.
  mkdir -p "$work/unit"
  printf '#!/bin/sh\n' > "$work/unit/latchkey" && chmod 0755 "$work/unit/latchkey"
  sed "s|/usr/local/bin/latchkey|$work/unit/latchkey|g" packaging/latchkey.service > "$work/unit/latchkey.service"
  out=$(systemd-analyze verify "$work/unit/latchkey.service" 2>&1) || { echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; }
  # verify exits 0 on some problems; any line naming our unit is one.
  if printf '%s\n' "$out" | grep -q 'latchkey.service'; then echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; fi
  echo "ok: systemd-analyze verify"
else
  echo "skipped: systemd-analyze is not installed (apt-get install systemd)"
fi

echo "--- Dockerfile, as a shell script"
build=$(sed -n 's/^RUN \(cargo build [^&\\]*\).*/\1/p' Dockerfile | sed 's/ *$//')
[ -n "$build" ] || { echo "FAIL: no 'RUN cargo build' line in the Dockerfile"; exit 1; }
entry=$(sed -n 's/^ENTRYPOINT \[\(.*\)\]$/\1/p' Dockerfile | tr -d '",')
[ -n "$entry" ] || { echo "FAIL: no ENTRYPOINT in the Dockerfile"; exit 1; }
grep -q '^VOLUME /var/lib/latchkey$' Dockerfile && grep -q '^EXPOSE 8080$' Dockerfile && grep -q '^USER latchkey$' Dockerfile \
  || { echo "FAIL: the Dockerfile's VOLUME, EXPOSE or USER changed; update this script"; exit 1; }

echo "build stage: $build"
LATCHKEY_GIT_REV=${LATCHKEY_GIT_REV:-$(git rev-parse --short HEAD 2>/dev/null || true)} $build
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

echo "runtime stage in $work/root"
root="$work/root"
install -d -m 0755 "$root/usr/local/bin" "$root/var/lib"
install -m 0755 "$target_dir/release/latchkey" "$root/usr/local/bin/latchkey"
install -d -m 0700 "$root/var/lib/latchkey"
chmod 0755 "$work"
as_user=()
if [ "$(id -u)" = 0 ]; then
  # USER latchkey: an unprivileged user that owns only the data directory.
  chown 65534:65534 "$root/var/lib/latchkey"
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2206 # the entrypoint's words, split as the exec form lists them
args=(${entry//\/var\/lib\/latchkey/$root/var/lib/latchkey})
args=("${args[@]//0.0.0.0:8080/0.0.0.0:$port}")
args[0]="$root/usr/local/bin/${args[0]}"
echo "entrypoint: ${args[*]}"
"${as_user[@]}" env -i PATH=/usr/bin:/bin LATCHKEY_LOG=warn "${args[@]}" > "$work/server.log" 2>&1 &
server_pid=$!

ok=
for _ in $(seq 1 100); do
  if [ "$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ]; then ok=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ok" ]; then cat "$work/server.log"; echo "FAIL: no ok from /healthz"; exit 1; fi
echo "ok: /healthz answers ok; $("$root/usr/local/bin/latchkey" --version)"
[ "$(stat -c %U "$root/var/lib/latchkey/latchkey.sqlite3")" = "$(stat -c %U "$root/var/lib/latchkey")" ] \
  || { echo "FAIL: the database does not belong to the data directory's owner"; exit 1; }

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
if [ "$status" != 0 ]; then cat "$work/server.log"; echo "FAIL: the server exited with $status on SIGTERM"; exit 1; fi
echo "ok: stopped cleanly on SIGTERM"
echo "--- packaging checks passed"
