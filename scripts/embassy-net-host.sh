#!/usr/bin/env bash
# End to end: examples/embassy_net_host.rs (embassy-executor + embassy-net on a TAP device, the
# embassy driver over adapters::embassy_net::TcpConnect) sends a device session to
# `posthog-embedded serve`, and scripts/check_events.py checks what the server received.
#
# Everything runs in a private network namespace created for this run: a TAP device tap0 whose
# kernel side is 192.168.69.1/24, the ingest server bound to that address, and the example
# (192.168.69.2). No traffic leaves the namespace. On exit, whatever happens, the server is
# stopped and the namespace (with its TAP device) deleted. Two passes:
#
#   keep-alive  the server keeps the connection open: both batches on one TCP connection
#   close       the server answers `Connection: close`: TcpConnect closes and reconnects
#
# Needs root and /dev/net/tun; without them (or when `ip netns add` is refused) it prints
# `SKIPPED: <reason>` and exits 0. Any failure exits 1 with the reason.
#
# Environment: CARGO_TARGET_DIR (honoured), PH_SERVE_BIN=FILE (a server already built that
# takes `serve --bind --port --events-out [--close-connections]`: no server build).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

skip() {
  echo "SKIPPED: $*"
  exit 0
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (a TAP device in a network namespace)"
[ -c /dev/net/tun ] || skip "/dev/net/tun is missing"
command -v ip >/dev/null 2>&1 || skip "iproute2 ('ip') is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 not found (it checks the received events)"

KERNEL_IP=192.168.69.1
DEVICE_IP=192.168.69.2
PORT=8080
EXAMPLE_TIMEOUT=30

# What the example does (examples/embassy_net_host.rs): keep in sync.
# shellcheck disable=SC2016 # event names, not expansions
EXPECT=(
  --distinct-id embassy-net-host-0001
  --expect '$identify=1'
  --expect '$feature_flag_called=1'
  --expect 'sampling interval changed=1'
  --expect 'sensor reading=3'
  --set firmware_version=1.4.2 --set board=linux-tap
  --flag new-sampling-rate=true
  --secret phc_embassy_net_host_example
  # The first batch leaves when the session ends, 3 readings of 250 ms after the $identify.
  --min-first-offset-ms 500
)

echo "==> build"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
EXAMPLE="$target_dir/debug/examples/embassy_net_host"
SERVER="${PH_SERVE_BIN:-}"
if [ -n "$SERVER" ]; then
  cargo build --quiet --features std,embassy-net --example embassy_net_host
else
  cargo build --quiet --features std,embassy-net --example embassy_net_host
  cargo build --quiet -p posthog-embedded-devtools --bin posthog-embedded
  SERVER="$target_dir/debug/posthog-embedded"
fi
[ -x "$EXAMPLE" ] || die "$EXAMPLE was not built"
[ -x "$SERVER" ] || die "$SERVER is not an executable"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/embassy-net-host.XXXXXX")"
NS="ph-embnet-$$-$RANDOM"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    timeout 5 tail --pid="$SERVER_PID" -f /dev/null 2>/dev/null || kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  local status=$?
  stop_server
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> network namespace $NS: tap0 with $KERNEL_IP/24"
ip netns add "$NS" 2>"$WORK/netns.err" || skip "cannot create a network namespace: $(cat "$WORK/netns.err")"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev tap0 mode tap
in_ns ip addr add "$KERNEL_IP/24" dev tap0
in_ns ip link set tap0 up

start_server() { # NAME [serve args...]
  local name="$1"
  shift
  : >"$WORK/$name.jsonl"
  # Not through a shell function: $! must be the server itself (`ip netns exec` execs it).
  ip netns exec "$NS" "$SERVER" serve --bind "$KERNEL_IP" --port "$PORT" --events-out "$WORK/$name.jsonl" "$@" \
    >"$WORK/$name.server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$WORK/$name.server.log" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  sed 's/^/    server: /' "$WORK/$name.server.log" >&2
  die "[$name] the server did not start listening"
}

run_pass() { # NAME [serve args...]
  local name="$1"
  shift
  echo "==> [$name] server on http://$KERNEL_IP:$PORT${*:+ ($*)}, example on $DEVICE_IP"
  start_server "$name" "$@"
  local start status=0
  start="$(date +%s.%N)"
  timeout --kill-after=5 "$EXAMPLE_TIMEOUT" ip netns exec "$NS" "$EXAMPLE" --tap tap0 \
    --server "$KERNEL_IP:$PORT" --address "$DEVICE_IP/24" --gateway "$KERNEL_IP" \
    >"$WORK/$name.out" 2>&1 || status=$?
  stop_server
  sed 's/^/    /' "$WORK/$name.out"
  case "$status" in
    0) ;;
    124 | 137) die "[$name] the example did not finish within $EXAMPLE_TIMEOUT s" ;;
    *) die "[$name] the example exited with status $status" ;;
  esac
  python3 scripts/check_events.py "$WORK/$name.jsonl" --start "$start" --label "$name" \
    "${EXPECT[@]}" || die "[$name] the server did not receive the expected session"
}

run_pass keep-alive
run_pass close --close-connections

echo
echo "PASS: embassy-net on a TAP device delivered the session (keep-alive and reconnecting)"
