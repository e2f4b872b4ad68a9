#!/usr/bin/env bash
# Runs every test of the workspace. Compiles the tests, installs and starts the local
# stand-ins the provider tests need (on 127.0.0.1 only; the Kubernetes control plane in a
# network namespace of its own), runs `cargo test` over the whole workspace, stops them.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p dr-core # extra arguments go to `cargo test`
#
# With CI set, a stand-in that cannot be installed or started is a failure; without it,
# the provider tests that need it say they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

STANDINS=()
cleanup() {
  for stop in "${STANDINS[@]}"; do "$stop" || true; done
}
trap cleanup EXIT

start() { # start NAME: sources scripts/standins/NAME.sh and calls NAME_start
  local name=$1
  # shellcheck source=/dev/null
  source "scripts/standins/$name.sh"
  if "${name}_start"; then
    STANDINS+=("${name}_stop")
  elif [ -n "${CI:-}" ]; then
    echo "error: the $name stand-in could not be started, and CI needs it" >&2
    exit 1
  else
    echo "warning: the $name stand-in could not be started: its tests will report skips" >&2
  fi
}

# The Kubernetes control plane is built once per machine (minutes, the first time): build it
# while the tests compile. k8s_start waits for that build and reports its failure.
K8S_BUILD_PID=""
if [ -e scripts/standins/k8s.sh ]; then
  # shellcheck source=scripts/standins/k8s.sh
  source scripts/standins/k8s.sh
  mkdir -p target/standins
  echo "k8s: building the control plane (or finding it built) in the background;" \
    "output in target/standins/k8s-build.out" >&2
  k8s_build >target/standins/k8s-build.out 2>&1 &
  K8S_BUILD_PID=$!
fi
cargo test --workspace --all-features --no-run "$@"
if [ -n "$K8S_BUILD_PID" ] && ! wait "$K8S_BUILD_PID"; then
  cat target/standins/k8s-build.out >&2
  export K8S_BUILD_FAILED=1
fi

for script in scripts/standins/*.sh; do
  [ -e "$script" ] || continue
  start "$(basename "$script" .sh)"
done

cargo test --workspace --all-features "$@"
