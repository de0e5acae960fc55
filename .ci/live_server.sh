# Sourced by .ci/fuzz, .ci/mcp, .ci/sdk, .ci/audit and .ci/browser: starts `videovector serve`
# ($server_bin) on 127.0.0.1:0 with a fresh data dir and a bootstrap operator, on SQLite or on
# $database_url when set, and sets $work, $url, $email, $password and $server_pid; the EXIT
# trap stops every server started. `start_instance NAME [VAR=VALUE...]` starts another
# (data dir $work/NAME, extra environment) and sets $url and $server_pid to it. $who names
# the caller in messages. A caller may set the array first_instance_env (VAR=VALUE...) for
# the first instance.

work="$(mktemp -d)"
server_pids=()
cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

email="ci@example.com"
password="ci-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

start_instance() {
  local name="$1"
  shift
  local log="$work/$name.log"
  local server_env=(
    VIDEOVECTOR_DATA_DIR="$work/$name"
    VIDEOVECTOR_LISTEN="127.0.0.1:0"
    VIDEOVECTOR_BOOTSTRAP_EMAIL="$email"
    VIDEOVECTOR_BOOTSTRAP_PASSWORD="$password"
    VIDEOVECTOR_LOG="warn,videovector=info,videovector_server=info"
    # The seeded connector and webhook point back at this server.
    VIDEOVECTOR_ALLOW_PRIVATE_TARGETS=true
    # A limit in every family that no CI client reaches (every answer still carries the
    # RateLimit headers), and usage written every 200 ms.
    VIDEOVECTOR_RATE_LIMITS__DEFAULTS='[{name="search_per_second",family="search",quota=1000000,window_seconds=1},{name="read_per_second",family="read",quota=1000000,window_seconds=1},{name="write_per_second",family="write",quota=1000000,window_seconds=1},{name="audit_per_second",family="audit",quota=1000000,window_seconds=1}]'
    VIDEOVECTOR_RATE_LIMITS__USAGE_FLUSH_MS=200
    NO_COLOR=1
  )
  if [[ -n "$database_url" ]]; then
    server_env+=(VIDEOVECTOR_DATABASE_URL="$database_url")
  fi
  env -u RUST_LOG "${server_env[@]}" "$@" "$server_bin" serve >"$log" 2>&1 &
  server_pid=$!
  server_pids+=("$server_pid")

  # The server logs its URL once it listens (port 0: the kernel picks a free one).
  url=""
  for _ in $(seq 1 300); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 || true)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      cat "$log" >&2
      echo "$who: the server exited before listening" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    cat "$log" >&2
    echo "$who: the server did not listen within 30 s" >&2
    exit 1
  fi
}

# The first instance, with any extra environment the caller set in $first_instance_env.
start_instance data ${first_instance_env[@]+"${first_instance_env[@]}"}
