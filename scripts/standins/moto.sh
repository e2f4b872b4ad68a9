# shellcheck shell=bash
# moto (AWS stand-in) for the test command. Source this file, then:
#
#   moto_start   # installs moto 5.2.5 into target/standins/venv if missing, starts it on
#                # 127.0.0.1:${MOTO_PORT:-5000}, waits for /moto-api/ and exports
#                # AWS_ENDPOINT_URL and test credentials
#   moto_stop    # stops the server moto_start started
#
# Needs python3 (with venv) and curl; pip reaches PyPI on the first run only.

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"

moto_start() {
  local root dir port pid i
  root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null || pwd)"
  dir="${STANDIN_DIR:-$root/target/standins}"
  port="${MOTO_PORT:-5000}"
  mkdir -p "$dir" || return 1
  if [ ! -x "$dir/venv/bin/moto_server" ]; then
    echo "installing moto $MOTO_VERSION into $dir/venv" >&2
    python3 -m venv "$dir/venv" || return 1
    "$dir/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" || return 1
  fi
  "$dir/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  pid=$!
  for i in $(seq 1 150); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
      MOTO_PID=$pid
      export MOTO_PID
      export AWS_ENDPOINT_URL="http://127.0.0.1:$port" \
        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
      echo "moto up on 127.0.0.1:$port (pid $pid)" >&2
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto exited; log:" >&2
      cat "$dir/moto.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto did not answer on 127.0.0.1:$port within 15 s" >&2
  kill "$pid" 2>/dev/null
  return 1
}

moto_stop() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
    unset MOTO_PID
  fi
  unset AWS_ENDPOINT_URL
}
