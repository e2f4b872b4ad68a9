# shellcheck shell=bash
# PostgreSQL 15 (for the dr-postgres tests) for the test command. Source this file, then:
#
#   postgres_start   # installs PostgreSQL 15 with apt-get if missing (apt-get update first),
#                    # checks initdb runs, and exports DR_PG_BINDIR (the server binaries) and
#                    # DR_PG_USER (the OS user the test servers run as when this shell is root)
#   postgres_stop    # unsets them
#
# No server is started here: each test starts its own primary and streaming standby on free
# 127.0.0.1 ports in temporary directories (initdb, pg_basebackup -R) and stops them. The
# Debian package's own cluster, if it creates one, is not used and not started.

POSTGRES_MAJOR="${POSTGRES_MAJOR:-15}"

postgres_start() {
  local bindir="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"
  if [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_dump" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      echo "PostgreSQL $POSTGRES_MAJOR is missing and cannot be installed (needs root and apt-get)" >&2
      return 1
    fi
    echo "installing PostgreSQL $POSTGRES_MAJOR with apt-get" >&2
    if ! apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "postgresql-$POSTGRES_MAJOR" >/dev/null 2>&1; then
      apt-get update -q >/dev/null || return 1
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        "postgresql-$POSTGRES_MAJOR" "postgresql-client-$POSTGRES_MAJOR" >/dev/null || return 1
    fi
  fi
  local user=""
  if [ "$(id -u)" = 0 ]; then
    # initdb and postgres refuse to run as root: the tests run them as this user.
    user="${DR_PG_USER:-postgres}"
    if ! id -u "$user" >/dev/null 2>&1; then
      echo "user $user (to run the test servers as) does not exist" >&2
      return 1
    fi
  fi
  if ! "$bindir/initdb" --version >/dev/null; then
    echo "$bindir/initdb does not run" >&2
    return 1
  fi
  export DR_PG_BINDIR="$bindir"
  if [ -n "$user" ]; then export DR_PG_USER="$user"; fi
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready in $bindir" >&2
}

postgres_stop() {
  unset DR_PG_BINDIR DR_PG_USER
}
