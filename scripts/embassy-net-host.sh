#!/usr/bin/env bash
# End to end: examples/embassy_net_host.rs (embassy-executor + embassy-net on a TAP device, the
# embassy driver over adapters::embassy_net::TcpConnect) sends a device session to
# `posthog-embedded serve`, and scripts/check_events.py checks what the server received.
#
# Everything runs in a private network namespace created for this run: a TAP device tap0 whose
# kernel side is 192.168.69.1/24, the ingest server bound to that address, and the example
# (192.168.69.2). No traffic leaves the namespace. On exit, whatever happens, the server is
# stopped and the namespace (with its TAP device) deleted. Five passes:
#
#   keep-alive    the server keeps the connection open: both batches on one TCP connection
#   close         the server answers `Connection: close`: TcpConnect closes and reconnects
#   dns           the server is named (`ingest.test`) and closes every connection:
#                 DnsTcpConnect resolves the name through embassy-net's DNS client at every
#                 connect, asking scripts/dns_responder.py (the test's own resolver, on the
#                 kernel side)
#   dns-nxdomain  the resolver's first answer is NXDOMAIN: the connect fails, the events stay
#                 queued, and the retry resolves and delivers every one of them
#   dns-timeout   the resolver ignores the first query: the resolve timeout (300 ms, shorter
#                 than the DNS client's own 1 s retransmission) fails the connect; same outcome
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
SERVER_NAME=ingest.test
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
  cargo build --quiet --features std,embassy-net-dns --example embassy_net_host
else
  cargo build --quiet --features std,embassy-net-dns --example embassy_net_host
  cargo build --quiet -p posthog-embedded-devtools --bin posthog-embedded
  SERVER="$target_dir/debug/posthog-embedded"
fi
[ -x "$EXAMPLE" ] || die "$EXAMPLE was not built"
[ -x "$SERVER" ] || die "$SERVER is not an executable"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/embassy-net-host.XXXXXX")"
NS="ph-embnet-$$-$RANDOM"
SERVER_PID=""
DNS_PID=""
stop_dns() {
  if [ -n "$DNS_PID" ]; then
    kill "$DNS_PID" 2>/dev/null || true
    wait "$DNS_PID" 2>/dev/null || true
    DNS_PID=""
  fi
}
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
  stop_dns
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

await_listening() { # PID OUTPUT LABEL: waits for "listening on" in OUTPUT (10 s), or shows it
  local pid="$1" out="$2" label="$3"
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$out" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sed "s/^/    $label: /" "$out" >&2
  return 1
}

start_server() { # NAME [serve args...]
  local name="$1"
  shift
  : >"$WORK/$name.jsonl"
  # Not through a shell function: $! must be the server itself (`ip netns exec` execs it).
  ip netns exec "$NS" "$SERVER" serve --bind "$KERNEL_IP" --port "$PORT" --events-out "$WORK/$name.jsonl" "$@" \
    >"$WORK/$name.server.log" 2>&1 &
  SERVER_PID=$!
  await_listening "$SERVER_PID" "$WORK/$name.server.log" server ||
    die "[$name] the server did not start listening"
}

start_dns() { # NAME [dns_responder args...]
  local name="$1"
  shift
  : >"$WORK/$name.dns.log"
  ip netns exec "$NS" python3 scripts/dns_responder.py --bind "$KERNEL_IP" \
    --name "$SERVER_NAME" --address "$KERNEL_IP" --log "$WORK/$name.dns.log" "$@" \
    >"$WORK/$name.dns.out" 2>&1 &
  DNS_PID=$!
  await_listening "$DNS_PID" "$WORK/$name.dns.out" dns ||
    die "[$name] the DNS responder did not start"
}

# The example's target and options: an address by default; run_dns_pass sets a name.
EXAMPLE_ARGS=(--server "$KERNEL_IP:$PORT")

run_pass() { # NAME [serve args...]
  local name="$1"
  shift
  echo "==> [$name] server on http://$KERNEL_IP:$PORT${*:+ ($*)}, example on $DEVICE_IP (${EXAMPLE_ARGS[*]})"
  start_server "$name" "$@"
  local start status=0
  start="$(date +%s.%N)"
  timeout --kill-after=5 "$EXAMPLE_TIMEOUT" ip netns exec "$NS" "$EXAMPLE" --tap tap0 \
    "${EXAMPLE_ARGS[@]}" --address "$DEVICE_IP/24" --gateway "$KERNEL_IP" \
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

# NAME QUERIES_MIN SERVE_ARGS [dns_responder args...] -- [example args...]: the session to
# $SERVER_NAME, resolved by the test's responder, which must have been asked at least
# QUERIES_MIN times and must have given its address at least once. SERVE_ARGS: one word for
# the server ("" for none).
run_dns_pass() {
  local name="$1" queries_min="$2" serve_args="$3"
  shift 3
  local dns_args=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    dns_args+=("$1")
    shift
  done
  [ "$#" -gt 0 ] && shift
  start_dns "$name" "${dns_args[@]}"
  EXAMPLE_ARGS=(--server "$SERVER_NAME:$PORT" --dns "$KERNEL_IP" "$@")
  # shellcheck disable=SC2086 # one optional word
  run_pass "$name" $serve_args
  stop_dns
  sed 's/^/    dns: /' "$WORK/$name.dns.log"
  local asked answered
  asked="$(grep -c " $SERVER_NAME 1 " "$WORK/$name.dns.log" || true)"
  answered="$(grep -c " $SERVER_NAME 1 $KERNEL_IP\$" "$WORK/$name.dns.log" || true)"
  [ "$asked" -ge "$queries_min" ] ||
    die "[$name] the resolver got $asked A queries for $SERVER_NAME, expected at least $queries_min"
  [ "$answered" -ge 1 ] || die "[$name] the resolver never gave the address"
  echo "PASS [$name] $asked A queries for $SERVER_NAME, $answered answered"
}

run_pass keep-alive
run_pass close --close-connections
run_dns_pass dns 2 --close-connections
run_dns_pass dns-nxdomain 2 "" --fail-first 1 --fail-mode nxdomain -- --expect-retries
run_dns_pass dns-timeout 2 "" --fail-first 1 --fail-mode silent -- --expect-retries --resolve-timeout-ms 300

echo
echo "PASS: embassy-net on a TAP device delivered the session (keep-alive, reconnecting, by name through DNS, and through DNS failures)"
