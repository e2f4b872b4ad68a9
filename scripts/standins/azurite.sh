# shellcheck shell=bash
# Azurite (Azure Blob Storage stand-in) for the test command. Source this file, then:
#
#   azurite_start  # installs azurite 3.37.0 (npm) into target/standins/azurite if missing,
#                  # starts its Blob service on 127.0.0.1:${AZURITE_PORT:-10000} in memory,
#                  # waits until it answers, creates the test containers and exports
#                  # AZURITE_BLOB_URL, AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_CONTAINER
#   azurite_stop   # stops the server azurite_start started
#
# Needs node and npm (npm reaches the registry on the first run only) and curl.

AZURITE_VERSION="${AZURITE_VERSION:-3.37.0}"
# The published Azurite development account (not a secret).
AZURITE_DEV_ACCOUNT=devstoreaccount1
AZURITE_DEV_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

azurite_start() {
  local root dir port pid i bin
  root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null || pwd)"
  dir="${STANDIN_DIR:-$root/target/standins}"
  port="${AZURITE_PORT:-10000}"
  bin="$dir/azurite/node_modules/.bin/azurite-blob"
  for tool in node npm curl; do
    if ! command -v "$tool" >/dev/null; then
      echo "azurite: '$tool' is not installed; it is needed to run Azurite" >&2
      return 1
    fi
  done
  mkdir -p "$dir" || return 1
  if [ ! -x "$bin" ]; then
    echo "installing azurite $AZURITE_VERSION into $dir/azurite" >&2
    npm install --no-audit --no-fund --loglevel=error --prefix "$dir/azurite" \
      "azurite@$AZURITE_VERSION" >&2 || { echo "azurite: npm install failed" >&2; return 1; }
  fi
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "azurite: 127.0.0.1:$port is already in use; set AZURITE_PORT to a free port" >&2
    return 1
  fi
  "$bin" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --loose --skipApiVersionCheck --disableTelemetry --silent \
    >"$dir/azurite.log" 2>&1 &
  pid=$!
  # Node can take a while to start on a busy machine: up to 60 s.
  for i in $(seq 1 600); do
    # Any HTTP answer (an auth error included) means the service is up.
    if curl -s -o /dev/null "http://127.0.0.1:$port/$AZURITE_DEV_ACCOUNT?comp=list"; then
      AZURITE_PID=$pid
      export AZURITE_PID
      export AZURITE_BLOB_URL="http://127.0.0.1:$port/$AZURITE_DEV_ACCOUNT"
      export AZURITE_ACCOUNT="$AZURITE_DEV_ACCOUNT" AZURITE_KEY="$AZURITE_DEV_KEY"
      export AZURITE_CONTAINER="${AZURITE_CONTAINER:-dr-test}"
      _azurite_create_container "$AZURITE_CONTAINER" \
        || { echo "azurite: cannot create container $AZURITE_CONTAINER" >&2; azurite_stop; return 1; }
      echo "azurite up on 127.0.0.1:$port (pid $pid)" >&2
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "azurite exited; log:" >&2
      cat "$dir/azurite.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "azurite did not answer on 127.0.0.1:$port within 60 s" >&2
  kill "$pid" 2>/dev/null
  return 1
}

# Creates a container through the REST API with an account SAS signed here (openssl).
_azurite_create_container() {
  local container=$1 se sts hexkey sig sas code
  command -v openssl >/dev/null || { echo "azurite: openssl is needed to sign requests" >&2; return 1; }
  se=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
  # (printf -v keeps the string's trailing newlines, which are part of it)
  printf -v sts '%s\nrwdlac\nb\nsco\n\n%s\n\n\n2022-11-02\n\n' "$AZURITE_ACCOUNT" "$se"
  hexkey=$(printf '%s' "$AZURITE_KEY" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  sig=$(printf '%s' "$sts" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64)
  sig=$(printf '%s' "$sig" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
  sas="sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=${se//:/%3A}&sig=$sig"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'x-ms-version: 2022-11-02' \
    -H 'content-length: 0' "$AZURITE_BLOB_URL/$container?restype=container&$sas")
  # 201 created, 409 already there
  [ "$code" = 201 ] || [ "$code" = 409 ]
}

azurite_stop() {
  if [ -n "${AZURITE_PID:-}" ]; then
    kill "$AZURITE_PID" 2>/dev/null
    wait "$AZURITE_PID" 2>/dev/null
    unset AZURITE_PID
  fi
  unset AZURITE_BLOB_URL AZURITE_ACCOUNT AZURITE_KEY AZURITE_CONTAINER
}
