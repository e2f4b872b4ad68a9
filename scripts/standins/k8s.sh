# shellcheck shell=bash
# A real Kubernetes control plane (v1.20.2) for the test command. Source this file, then:
#
#   k8s_build   # builds kube-apiserver, kube-controller-manager, kube-scheduler and kubemark
#               # (the hollow kubelet: pods become Running/Ready without containers) from
#               # Debian's source package `kubernetes` with Debian's Go, once per machine, into
#               # ${DR_STANDIN_CACHE:-~/.cache/dr-standins}/k8s-1.20.2/bin (16-22 min on 2 busy
#               # cores, 341 MB); does nothing when that build is already there
#   k8s_start   # k8s_build, then starts etcd (Debian's etcd-server), the apiserver, the
#               # controller-manager, the scheduler and one hollow node inside a network
#               # namespace that has only loopback, bridges its 127.0.0.1:6443 to the host's
#               # 127.0.0.1:${K8S_PORT:-6443}, waits until the node is Ready and exports
#               # KUBECONFIG (a file under target/standins/k8s) and DR_K8S_CONTEXT
#   k8s_stop    # stops everything k8s_start started and deletes the cluster's state
#
# Nothing the control plane starts can reach anything but its own loopback: the namespace has
# no other interface, its default route is loopback, and the hollow node's address
# (192.0.2.2) is on loopback too, so logs/exec/port-forward must never be used.
# Needs root (or unprivileged user namespaces) and apt-get on the first run (packages
# etcd-server, golang-1.19-go, socat, openssl, curl and the `kubernetes` source package).

K8S_VERSION=1.20.2
# Debian bookworm's source package that carries v1.20.2.
K8S_DEB_VERSION="${K8S_DEB_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}"
K8S_GOROOT="${K8S_GOROOT:-/usr/lib/go-1.19}"
K8S_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubemark"
# Bumped whenever the build recipe changes, so that a build from an older recipe is redone.
K8S_BUILD_REV=2

k8s__cache() {
  echo "${DR_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dr-standins}/k8s-$K8S_VERSION"
}

k8s__run_dir() {
  local root
  root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null || pwd)"
  echo "${STANDIN_DIR:-$root/target/standins}/k8s"
}

k8s__apt() { # k8s__apt PACKAGE...: installs the Debian packages that are missing
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "k8s: the Debian packages ${missing[*]} are missing, and installing them needs root" >&2
    return 1
  fi
  echo "k8s: installing ${missing[*]}" >&2
  if [ -z "${K8S__APT_UPDATED:-}" ]; then
    apt-get update -q >&2 || return 1
    K8S__APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
}

k8s_build() {
  local cache bin
  cache="$(k8s__cache)"
  bin="$cache/bin"
  k8s__apt etcd-server socat openssl curl ca-certificates || return 1
  if [ -f "$bin/.complete-r$K8S_BUILD_REV" ]; then
    return 0
  fi
  mkdir -p "$cache" || return 1
  # One build at a time per machine; a second caller waits for the first and reuses it.
  (
    flock 9 || exit 1
    [ -f "$bin/.complete-r$K8S_BUILD_REV" ] && exit 0
    # A separate shell, so that `set -e` holds whatever context k8s_build is called in.
    bash -c 'set -euo pipefail; source "$1"; k8s__build_locked "$2"' k8s-build "${BASH_SOURCE[0]}" "$cache" \
      >"$cache/build.log" 2>&1
    status=$?
    if [ $status -ne 0 ]; then
      echo "k8s: building the control plane failed; the end of $cache/build.log:" >&2
      tail -n 40 "$cache/build.log" >&2
    fi
    exit $status
  ) 9>"$cache/.lock"
}

k8s__build_locked() { # runs in its own `set -e` shell holding the build lock
  local cache=$1 start src bin apt_opts dirs ldflags minor pkg c
  start=$(date +%s)
  src="$cache/src/kubernetes-$K8S_VERSION"
  bin="$cache/bin"
  echo "k8s: building Kubernetes $K8S_VERSION from Debian's source package into $cache" \
    "(once per machine; 16-22 min on 2 busy cores)" >&2
  k8s__apt golang-1.19-go python3 time
  rm -rf "$cache/src" "$bin"
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/apt/empty.d" \
    "$cache/src" "$bin"
  # A private deb-src list: the system's apt configuration stays as it is.
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$cache/apt/deb-src.sources"
  apt_opts=(-o "Dir::Etc::SourceList=$cache/apt/deb-src.sources" -o "Dir::Etc::SourceParts=$cache/apt/empty.d"
    -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache")
  apt-get "${apt_opts[@]}" update -q
  (cd "$cache/src" && apt-get "${apt_opts[@]}" source --download-only "kubernetes=$K8S_DEB_VERSION")
  tar -C "$cache/src" -xzf "$cache/src/kubernetes_${K8S_DEB_VERSION%%-*}.orig.tar.gz"
  [ -d "$src" ] || { echo "k8s: the source package did not unpack into $src" >&2; return 1; }

  # The vendored reflect2 v1.0.1 corrupts memory on Go >= 1.18 (its map iterator holds 2 of
  # the runtime's 12 words, and mapiterinit changed signature): apply the v1.0.2 fix, the
  # full iterator layout and the new signature.
  local r="$src/vendor/github.com/modern-go/reflect2"
  python3 - "$r/unsafe_link.go" "$r/unsafe_map.go" <<'EOF'
import re
import sys
link, umap = sys.argv[1], sys.argv[2]
s = open(link).read()
old = "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) *hiter\n"
assert old in s, "reflect2: mapiterinit not found"
s = s.replace(old, "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)\n")
full = """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}"""
s, n = re.subn(r"type hiter struct \{.*?\n\}", full, s, count=1, flags=re.S)
assert n == 1, "reflect2: hiter not found"
open(link, "w").write(s)
s = open(umap).read()
old = "\treturn &UnsafeMapIterator{\n\t\thiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),"
new = "\tvar it hiter\n\tmapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)\n\treturn &UnsafeMapIterator{\n\t\thiter:      &it,"
assert old in s, "reflect2: UnsafeIterate not found"
open(umap, "w").write(s.replace(old, new))
EOF

  # Kubernetes 1.20 builds in GOPATH mode, as Debian builds it.
  export GOROOT="$K8S_GOROOT" PATH="$K8S_GOROOT/bin:$PATH" GOTOOLCHAIN=local GO111MODULE=off \
    CGO_ENABLED=0 GOPATH="$cache/gopath" GOCACHE="$cache/gocache" GOFLAGS=
  mkdir -p "$GOPATH/src/k8s.io"
  ln -sfn "$src" "$GOPATH/src/k8s.io/kubernetes"
  cd "$GOPATH/src/k8s.io/kubernetes"

  # pkg/generated/openapi is not in the tarball: generate it, as `make` does.
  go build -o "$cache/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  dirs=$(grep -rl --include='*.go' '+k8s:openapi-gen=' pkg/apis vendor/k8s.io/api \
    vendor/k8s.io/apiextensions-apiserver/pkg/apis vendor/k8s.io/apimachinery/pkg vendor/k8s.io/apiserver/pkg/apis \
    vendor/k8s.io/client-go/pkg vendor/k8s.io/cloud-provider/config vendor/k8s.io/controller-manager/config \
    vendor/k8s.io/kube-aggregator/pkg/apis vendor/k8s.io/kube-controller-manager/config vendor/k8s.io/kube-proxy/config \
    vendor/k8s.io/kube-scheduler/config vendor/k8s.io/kubelet/config vendor/k8s.io/metrics/pkg/apis |
    grep -v _test.go | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
  "$cache/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$cache/openapi-violations.report"

  ldflags="-s -w"
  minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X k8s.io/kubernetes/vendor/$pkg.gitVersion=v$K8S_VERSION"
    ldflags="$ldflags -X k8s.io/kubernetes/vendor/$pkg.gitMajor=1"
    ldflags="$ldflags -X k8s.io/kubernetes/vendor/$pkg.gitMinor=$minor"
    ldflags="$ldflags -X k8s.io/kubernetes/vendor/$pkg.gitTreeState=clean"
  done
  for c in $K8S_COMPONENTS; do
    /usr/bin/time -f "$c: wall=%es user=%Us maxrss=%MkB" go build -ldflags="$ldflags" -o "$bin/$c" "./cmd/$c"
  done
  # The binaries and the Go cache (~1.5 GB: a rebuild after a recipe change recompiles only
  # what the change touches) are kept, the sources are not.
  cd "$cache"
  rm -rf "$cache/src" "$cache/gopath" "$cache/apt" "$cache/openapi-gen"
  echo "k8s: built in $(($(date +%s) - start)) s" >&2
  date -u +%FT%TZ >"$bin/.complete-r$K8S_BUILD_REV"
}

# The part that runs inside the loopback-only network namespace: certificates, then etcd and
# the control plane, then a bridge from a Unix socket (reachable from the host through the
# file system) to the apiserver. Written to a file and run by k8s_start.
k8s__inner_script() {
  cat <<'INNER'
set -u
run=$1 bin=$2 token=$3 sock=$4
ip link set lo up || exit 1
# The hollow kubelet takes its node address from the interface of the default route: give it
# one on loopback (192.0.2.2, a documentation address), so everything stays on lo.
ip addr add 192.0.2.2/32 dev lo || exit 1
ip route add default dev lo || exit 1
p=$run/pki
mkdir -p "$p"
openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.crt" -days 30 \
  -subj /CN=dr-standin-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$p/apiserver.key" -out "$p/apiserver.csr" \
  -subj /CN=kube-apiserver 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"$p/ext.cnf"
openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
  -out "$p/apiserver.crt" -days 30 -extfile "$p/ext.cnf" 2>/dev/null || exit 1
echo "$token,admin,admin,system:masters" >"$p/tokens.csv"
# The components' own kubeconfig: the apiserver inside this namespace.
cat >"$run/inner.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$p/ca.crt"}}]
users: [{name: admin, user: {token: $token}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
KC
k=$run/inner.kubeconfig
start() { # start NAME CMD...: PID in $run/NAME.pid, output in $run/NAME.log
  local n=$1
  shift
  "$@" >"$run/$n.log" 2>&1 &
  echo $! >"$run/$n.pid"
}
wait_up() { # wait_up NAME CMD...: up to 60 s
  local n=$1 i
  shift
  for i in $(seq 600); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$run/$n.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "k8s: $n did not come up; the end of $run/$n.log:" >&2
  tail -n 20 "$run/$n.log" >&2
  return 1
}
start etcd etcd --name dr-standin --data-dir "$run/etcd-data" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster dr-standin=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
wait_up etcd curl -sf http://127.0.0.1:2379/health || exit 1
start apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 --insecure-port=0 \
  --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
  --client-ca-file="$p/ca.crt" --token-auth-file="$p/tokens.csv" --authorization-mode=RBAC \
  --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none --allow-privileged=true \
  --cert-dir="$run/apiserver-certs"
wait_up apiserver curl -sf --cacert "$p/ca.crt" -H "Authorization: Bearer $token" \
  https://127.0.0.1:6443/readyz || exit 1
start controller-manager "$bin/kube-controller-manager" --kubeconfig="$k" \
  --authentication-kubeconfig="$k" --authorization-kubeconfig="$k" --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port=10257 --port=0 --cert-dir="$run/kcm-certs" \
  --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
  --use-service-account-credentials=false
start scheduler "$bin/kube-scheduler" --kubeconfig="$k" --authentication-kubeconfig="$k" \
  --authorization-kubeconfig="$k" --leader-elect=false --bind-address=127.0.0.1 \
  --secure-port=10259 --port=0 --cert-dir="$run/sched-certs"
# The hollow node advertises the fake address 192.0.2.2 and listens on *:10250 of this
# namespace; AWS_EC2_METADATA_DISABLED stops its ECR credential probe.
AWS_EC2_METADATA_DISABLED=true start node "$bin/kubemark" --morph=kubelet \
  --name=hollow-node-1 --kubeconfig="$k" --kubelet-port=10250 --kubelet-read-only-port=0
start bridge socat "UNIX-LISTEN:$sock,fork,mode=600" TCP:127.0.0.1:6443
wait
INNER
}

k8s_start() {
  local cache bin run port token sock unshare_args ready started
  cache="$(k8s__cache)"
  bin="$cache/bin"
  run="$(k8s__run_dir)"
  port="${K8S_PORT:-6443}"
  token="dr-standin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  if [ -n "${K8S_BUILD_FAILED:-}" ]; then
    echo "k8s: the control plane could not be built (see above)" >&2
    return 1
  fi
  k8s_build || return 1
  for tool in etcd socat openssl curl unshare ip; do
    if ! command -v "$tool" >/dev/null; then
      echo "k8s: '$tool' is not installed; it is needed to run the control plane" >&2
      return 1
    fi
  done
  rm -rf "$run"
  mkdir -p "$run" || return 1
  # A short path: Unix socket paths are limited to 108 bytes.
  K8S__SOCKDIR="$(mktemp -d "${TMPDIR:-/tmp}/dr-k8s.XXXXXX")" || return 1
  sock="$K8S__SOCKDIR/api.sock"
  k8s__inner_script >"$run/inner.sh"
  if [ "$(id -u)" = 0 ]; then
    unshare_args=(--net)
  else
    unshare_args=(--user --map-root-user --net)
  fi
  unshare "${unshare_args[@]}" bash "$run/inner.sh" "$run" "$bin" "$token" "$sock" \
    >"$run/netns.log" 2>&1 &
  K8S_NETNS_PID=$!
  # The host's end of the bridge: 127.0.0.1 only.
  socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$sock" \
    >"$run/host-bridge.log" 2>&1 &
  K8S_BRIDGE_PID=$!
  export K8S_NETNS_PID K8S_BRIDGE_PID K8S__SOCKDIR
  cat >"$run/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: dr-standin, cluster: {server: "https://127.0.0.1:$port", certificate-authority: "$run/pki/ca.crt"}}]
users: [{name: dr-standin-admin, user: {token: $token}}]
contexts: [{name: dr-standin, context: {cluster: dr-standin, user: dr-standin-admin}}]
current-context: dr-standin
KC
  chmod 600 "$run/kubeconfig"
  ready=""
  started=$SECONDS
  while [ $((SECONDS - started)) -lt 120 ]; do
    if ! kill -0 "$K8S_NETNS_PID" 2>/dev/null; then
      break
    fi
    if ! kill -0 "$K8S_BRIDGE_PID" 2>/dev/null; then
      echo "k8s: the bridge could not listen on 127.0.0.1:$port (in use? set K8S_PORT):" >&2
      cat "$run/host-bridge.log" >&2
      break
    fi
    if [ -f "$run/pki/ca.crt" ] && curl -sf --cacert "$run/pki/ca.crt" \
      -H "Authorization: Bearer $token" "https://127.0.0.1:$port/api/v1/nodes/hollow-node-1" |
      tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "k8s: the control plane did not come up with a Ready node (120 s at most); logs in $run:" >&2
    tail -n 20 "$run/netns.log" >&2
    k8s_stop
    return 1
  fi
  export KUBECONFIG="$run/kubeconfig" DR_K8S_CONTEXT=dr-standin AWS_EC2_METADATA_DISABLED=true
  echo "k8s: Kubernetes $K8S_VERSION up on 127.0.0.1:$port (a Ready node after $((SECONDS - started)) s)," \
    "KUBECONFIG=$KUBECONFIG DR_K8S_CONTEXT=$DR_K8S_CONTEXT" >&2
}

k8s_stop() {
  local run n pid
  run="$(k8s__run_dir)"
  if [ -n "${K8S_BRIDGE_PID:-}" ]; then
    kill "$K8S_BRIDGE_PID" 2>/dev/null
    wait "$K8S_BRIDGE_PID" 2>/dev/null
  fi
  # The components first (by the PIDs they wrote), then the namespace's shell.
  for n in bridge node scheduler controller-manager apiserver etcd; do
    [ -f "$run/$n.pid" ] && kill "$(cat "$run/$n.pid")" 2>/dev/null
  done
  for n in bridge node scheduler controller-manager apiserver etcd; do
    if [ -f "$run/$n.pid" ]; then
      pid=$(cat "$run/$n.pid")
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
      rm -f "$run/$n.pid"
    fi
  done
  if [ -n "${K8S_NETNS_PID:-}" ]; then
    kill "$K8S_NETNS_PID" 2>/dev/null
    wait "$K8S_NETNS_PID" 2>/dev/null
  fi
  rm -rf "$run/etcd-data"
  [ -n "${K8S__SOCKDIR:-}" ] && rm -rf "$K8S__SOCKDIR"
  unset K8S_BRIDGE_PID K8S_NETNS_PID K8S__SOCKDIR DR_K8S_CONTEXT
  return 0
}
