#!/usr/bin/env bash
# End-to-end test of the firmware example (examples/firmware) on an emulated Cortex-M4F.
#
# Builds the firmware (release), starts the local ingest server (`posthog-embedded serve`) on
# loopback, boots QEMU's mps2-an386 with UART0 bridged to it, waits for the firmware's exit
# status (it exits 0 only when every batch got a 2xx), then checks what the server received
# with scripts/check_events.py. Three passes:
#
#   keep-alive  the server keeps the connection open: every batch on one TCP connection
#   close       the server answers `Connection: close`: QEMU reconnects, the firmware resends
#   defmt       the firmware built with `--features defmt`; its decoded log must have lines
#               and must not contain the API key
#   defmt-refused  the same against a server refusing every batch (400): the firmware must
#               fail, and the library's own warnings must not contain the API key either
#
# With PH_E2E_PORT=PORT, QEMU is bridged to a server already listening on that port instead,
# and only the firmware's exit status is checked (one pass).
#
# Needs: cargo with the thumbv7em-none-eabihf target, qemu-system-arm, python3, and for the
# defmt pass defmt-print (`cargo install defmt-print --locked`).
# Environment: PH_SERVER_PROFILE=release|dev (how the server is built, default release),
# PH_E2E_SERVER=FILE (a `posthog-embedded` binary already built: no server build),
# PH_E2E_QEMU_TIMEOUT (seconds per QEMU run, default 90), PH_E2E_KEEP=1 (keep the work dir).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FW="$ROOT/examples/firmware"
TARGET=thumbv7em-none-eabihf
QEMU_TIMEOUT="${PH_E2E_QEMU_TIMEOUT:-90}"
SERVER_PROFILE="${PH_SERVER_PROFILE:-release}"

# What the firmware does (examples/firmware/src): keep in sync. Event names start with `$`.
API_KEY="phc_firmware_e2e_key"
DEVICE_ID="mps2-an386-0042"
# shellcheck disable=SC2016
EXPECT=(
  --distinct-id "$DEVICE_ID"
  --expect '$identify=1'
  --expect '$feature_flag_called=4'
  --expect 'sampling interval changed=1'
  --expect 'ota check scheduled=0'
  --expect 'sensor reading=5'
  --set firmware_version=1.4.2 --set board=mps2-an386 --set region=eu-west
  --flag ota-updates=false --flag new-sampling-rate=true
  --flag 'display-theme="high-contrast"' --flag eu-data-residency=true
  --secret "$API_KEY"
)

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
die() { echo "FAIL $*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}
need cargo "install Rust with rustup"
need python3 "apt-get install -y python3"
need qemu-system-arm "apt-get install -y qemu-system-arm"
need timeout "apt-get install -y coreutils"
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
  die "Rust target $TARGET missing: rustup target add $TARGET"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/firmware-e2e.XXXXXX")"
SERVER_PID=""
cleanup() {
  stop_server
  if [ "${PH_E2E_KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

build_firmware() { # NAME [cargo args...]: builds and copies the ELF to $WORK/NAME.elf
  local name="$1"
  shift
  echo "--- building the firmware ($name)"
  (cd "$FW" && cargo build --release --quiet --bin posthog-firmware "$@")
  cp "$FW/target/$TARGET/release/posthog-firmware" "$WORK/$name.elf"
}

SERVER="${PH_E2E_SERVER:-}"
build_server() {
  [ -n "$SERVER" ] && return 0
  echo "--- building the ingest server (posthog-embedded serve, $SERVER_PROFILE)"
  if [ "$SERVER_PROFILE" = release ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin posthog-embedded)
    SERVER="$ROOT/target/release/posthog-embedded"
  else
    (cd "$ROOT" && cargo build --quiet --bin posthog-embedded)
    SERVER="$ROOT/target/debug/posthog-embedded"
  fi
}

PORT=""
start_server() { # NAME [serve args...]: starts the server, sets PORT
  local name="$1"
  shift
  : > "$WORK/$name.jsonl"
  "$SERVER" serve --bind 127.0.0.1 --port 0 --events-out "$WORK/$name.jsonl" "$@" \
    > "$WORK/$name.server.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 100); do
    PORT="$(sed -n '1s#^listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$WORK/$name.server.log")"
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/$name.server.log" >&2
  die "server ($name) did not start"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

START=""
QEMU_RC=0
run_qemu() { # NAME ELF PORT [EXPECTED_STATUS]: boots the firmware; output in $WORK/NAME.out
  local name="$1" elf="$2" port="$3" want="${4:-0}"
  START="$(date +%s.%N)"
  QEMU_RC=0
  timeout --kill-after=5 "$QEMU_TIMEOUT" qemu-system-arm \
    -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -chardev "socket,id=uart0,host=127.0.0.1,port=$port,reconnect=1" -serial chardev:uart0 \
    -kernel "$elf" > "$WORK/$name.out" 2> "$WORK/$name.qemu.err" || QEMU_RC=$?
  local took
  took="$(python3 -c "import time; print(f'{time.time() - $START:.1f}')")"
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    fail "[$name] QEMU timed out after $QEMU_TIMEOUT s"
  elif [ "$QEMU_RC" = "$want" ]; then
    pass "[$name] firmware exited with status $QEMU_RC, as expected, after ${took} s"
  else
    fail "[$name] firmware exited with status $QEMU_RC (expected $want) after ${took} s"
  fi
  if [ -s "$WORK/$name.qemu.err" ]; then sed 's/^/    qemu: /' "$WORK/$name.qemu.err"; fi
}

show_output() { sed 's/^/    /' "$1"; }

check_defmt_log() { # NAME: decodes $WORK/NAME.out with the defmt ELF and checks it
  local name="$1" lines
  if ! defmt-print -e "$WORK/defmt.elf" < "$WORK/$name.out" > "$WORK/$name.log" 2>&1; then
    cat "$WORK/$name.log"
    fail "[$name] defmt-print could not decode the output"
    return
  fi
  show_output "$WORK/$name.log"
  lines="$(grep -c -E ' (TRACE|DEBUG|INFO|WARN|ERROR) ' "$WORK/$name.log" || true)"
  if [ "$lines" -ge 5 ]; then
    pass "[$name] $lines decoded log lines"
  else
    fail "[$name] only $lines decoded log lines"
  fi
  local verdict="PASS: every batch got a 2xx"
  if [ "$name" = defmt-refused ]; then verdict="batch refused with status 400"; fi
  if grep -qF "$verdict" "$WORK/$name.log"; then
    pass "[$name] the log says \"$verdict\""
  else
    fail "[$name] the log does not say \"$verdict\""
  fi
  if grep -qF "$API_KEY" "$WORK/$name.log" "$WORK/$name.out"; then
    fail "[$name] the API key appears in the log output"
  else
    pass "[$name] the API key appears nowhere in the log output (decoded or raw)"
  fi
}

check_events() { # NAME
  python3 "$ROOT/scripts/check_events.py" "$WORK/$1.jsonl" --start "$START" --label "$1" \
    "${EXPECT[@]}" || failures=$((failures + 1))
}

if [ -n "${PH_E2E_PORT:-}" ]; then
  build_firmware plain
  echo "--- pass external: server on 127.0.0.1:$PH_E2E_PORT"
  run_qemu external "$WORK/plain.elf" "$PH_E2E_PORT"
  show_output "$WORK/external.out"
else
  need defmt-print "cargo install defmt-print --locked"
  build_firmware plain
  build_firmware defmt --features defmt
  build_server

  for pass_name in keep-alive close; do
    echo "--- pass $pass_name"
    args=()
    if [ "$pass_name" = close ]; then args=(--close-connections); fi
    start_server "$pass_name" "${args[@]}"
    run_qemu "$pass_name" "$WORK/plain.elf" "$PORT"
    stop_server
    show_output "$WORK/$pass_name.out"
    check_events "$pass_name"
  done

  # defmt: the log decodes, has lines, and never shows the API key. The second run makes the
  # server refuse every batch (400), so the library logs its own warnings too, and the firmware
  # must fail.
  for pass_name in defmt defmt-refused; do
    echo "--- pass $pass_name"
    args=()
    want_rc=0
    if [ "$pass_name" = defmt-refused ]; then
      args=(--status 400)
      want_rc=1
    fi
    start_server "$pass_name" "${args[@]}"
    run_qemu "$pass_name" "$WORK/defmt.elf" "$PORT" "$want_rc"
    stop_server
    check_defmt_log "$pass_name"
    if [ "$pass_name" = defmt ]; then check_events defmt; fi
  done
fi

echo
if [ "$failures" = 0 ]; then
  echo "PASS firmware e2e"
else
  echo "FAIL firmware e2e: $failures failed checks"
  exit 1
fi
