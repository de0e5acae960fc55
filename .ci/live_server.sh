# Sourced by .ci/fuzz and .ci/mcp: starts `videovector serve` ($server_bin) on 127.0.0.1:0
# with a fresh data dir and a bootstrap operator, on SQLite or on $database_url when set,
# and sets $work, $url, $email, $password and $server_pid; the EXIT trap stops the server.
# $who names the caller in messages.

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

email="ci@example.com"
password="ci-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
server_env=(
  VIDEOVECTOR_DATA_DIR="$work/data"
  VIDEOVECTOR_LISTEN="127.0.0.1:0"
  VIDEOVECTOR_BOOTSTRAP_EMAIL="$email"
  VIDEOVECTOR_BOOTSTRAP_PASSWORD="$password"
  VIDEOVECTOR_LOG="warn,videovector=info,videovector_server=info"
  # The seeded connector and webhook point back at this server.
  VIDEOVECTOR_ALLOW_PRIVATE_TARGETS=true
  NO_COLOR=1
)
if [[ -n "$database_url" ]]; then
  server_env+=(VIDEOVECTOR_DATABASE_URL="$database_url")
fi
env -u RUST_LOG "${server_env[@]}" "$server_bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

# The server logs its URL once it listens (port 0: the kernel picks a free one).
url=""
for _ in $(seq 1 300); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n1 || true)"
  [[ -n "$url" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.log" >&2
    echo "$who: the server exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$url" ]]; then
  cat "$work/server.log" >&2
  echo "$who: the server did not listen within 30 s" >&2
  exit 1
fi
