# shellcheck shell=bash
# What scripts/kafka.sh, registry.sh, jaeger.sh and test.sh share. Sourced, never run: each of
# them does `cd "$(dirname "$0")/.."` and then `. scripts/lib.sh`. Messages are prefixed with
# the name of the script that sources it (kafka.sh: …).

# warn MESSAGE...: MESSAGE on stderr, prefixed with the script's name.
warn() { echo "${0##*/}: $*" >&2; }

# die MESSAGE...: warn, and exit 1.
die() { warn "$@"; exit 1; }

# need COMMAND WHY: dies with "COMMAND not found: WHY" unless COMMAND is on the PATH.
need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }

# apt_install WHY PACKAGE...: installs Debian's PACKAGEs with apt-get (as root, or with sudo),
# reading the package lists again when the first try fails; without apt-get, dies saying WHY.
apt_install() {
  local why=$1 sudo=""; shift
  need apt-get "$why"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian's $*…" >&2
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@")
  $sudo "${install[@]}" >/dev/null || { $sudo apt-get update -qq && $sudo "${install[@]}" >/dev/null; } ||
    die "installing $* with apt-get failed"
}

# free_port: a TCP port on 127.0.0.1 that is free now (the kernel's choice).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# maven DIR FAILURE ARGS...: mvn ARGS in DIR (batch mode, quiet, no colours), its output on
# stderr; dies with FAILURE when it fails.
maven() {
  local dir=$1 failure=$2; shift 2
  (cd "$dir" && mvn -B -q -Dstyle.color=never "$@") >&2 || die "$failure"
}

# spawn PIDFILE LOG COMMAND...: COMMAND in the background under nohup, its output in LOG and
# its pid in PIDFILE.
spawn() {
  local pidfile=$1 log=$2; shift 2
  nohup "$@" >"$log" 2>&1 &
  echo $! >"$pidfile"
}

# alive PIDFILE: whether PIDFILE exists and the process it names is alive.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile PIDFILE SIGNAL TENTHS [MESSAGE]: sends SIGNAL to the process of PIDFILE (nothing
# to do without PIDFILE), waits up to TENTHS tenths of a second for it to exit, SIGKILLs it,
# and removes PIDFILE. Without MESSAGE the SIGKILL is sent whether or not it still runs, and
# not waited for; with MESSAGE, only to a process still alive then, after warning MESSAGE, and
# waited for.
stop_pidfile() {
  local pidfile=$1 signal=$2 tenths=$3 message=${4:-} pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if [ -z "$message" ]; then
    kill -KILL "$pid" 2>/dev/null || true
  elif kill -0 "$pid" 2>/dev/null; then
    warn "$message"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
}

# poll TRIES PAUSE COMMAND...: runs COMMAND until it succeeds, at most TRIES times, sleeping
# PAUSE seconds after each failure; fails when it never succeeded. (COMMAND may die instead,
# e.g. when the process it waits for has exited.)
poll() {
  local tries=$1 pause=$2; shift 2
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    sleep "$pause"
  done
  return 1
}

# server_certificate CA_NAME NAME: in the current directory, a CA (ca.key, ca.pem, subject
# CN=CA_NAME) and NAME.key and NAME.pem, a certificate for localhost and 127.0.0.1 signed by
# it; valid 7 days.
server_certificate() {
  local ca_name=$1 name=$2
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 7 \
    -subj "/CN=$ca_name"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=localhost"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
    -days 7 -extfile san.ext
}

# at_exit COMMAND: evaluates the string COMMAND when the script exits, after the commands
# registered before it.
at_exit_commands=()
at_exit() {
  [ "${#at_exit_commands[@]}" -gt 0 ] || trap run_at_exit EXIT
  at_exit_commands+=("$1")
}
run_at_exit() { local c; for c in "${at_exit_commands[@]}"; do eval "$c"; done; }

# own_instance NAME VAR: for scripts/NAME.sh (kafka, registry, jaeger, mlflow, docker or kube), installs it, exports
# VAR (its state directory variable, e.g. KAFKA_STATE_DIR) as a new temporary directory, and at
# exit stops what runs there and removes the directory. Starting it is the caller's.
own_instance() {
  local name=$1 var=$2 dir
  "scripts/$name.sh" install
  dir=$(mktemp -d "${TMPDIR:-/tmp}/driftwood-test-$name.XXXXXX")
  export "$var=$dir"
  at_exit "scripts/$name.sh stop; rm -rf \"\$$var\""
}

# debian_base_tar: the path of a Debian bookworm root filesystem (minbase, ca-certificates) as
# a tar, made from Debian's mirror by mmdebstrap once (about 80 s) and cached: the base of the
# images scripts/image.sh and scripts/docker.sh build, where no registry can be pulled from.
debian_base_tar() {
  local tar="${XDG_CACHE_HOME:-$HOME/.cache}/driftwood/images/debian-bookworm-minbase.tar"
  if [ ! -f "$tar" ]; then
    command -v mmdebstrap >/dev/null ||
      apt_install "making the Debian base needs mmdebstrap (Debian: mmdebstrap)" mmdebstrap
    echo "making a Debian bookworm base from Debian's mirror (about 80 s)…" >&2
    mkdir -p "$(dirname "$tar")"
    mmdebstrap --format=tar --variant=minbase --include=ca-certificates bookworm "$tar.part" \
      http://deb.debian.org/debian >/dev/null 2>&1 || die "mmdebstrap failed"
    mv "$tar.part" "$tar"
  fi
  echo "$tar"
}
