#!/usr/bin/env bash
# End-to-end test of the firmware example (examples/firmware) on an emulated Cortex-M4F.
#
# Builds the firmware (release), starts the local ingest server (`posthog-embedded serve`) on
# loopback, boots QEMU's mps2-an386 with UART0 bridged to it, waits for the firmware's exit
# status (it exits 0 only when every captured event was acknowledged by a 2xx: nothing
# dropped, nothing pending), then checks what the server received with
# scripts/check_events.py and how many retries the firmware's summary line reports. Seven
# passes:
#
#   keep-alive  the server keeps the connection open: every batch on one TCP connection, no
#               retry
#   close       the server answers `Connection: close`: QEMU reconnects, the firmware resends;
#               no retry
#   defmt       the firmware built with `--features defmt`; its decoded log must have lines,
#               must not contain the API key, and must report no retry
#   defmt-refused  the same against a server refusing every batch (400): the firmware must
#               fail, and the library's own warnings must not contain the API key either
#   outage      scripts/outage_proxy.py between QEMU and the server drops every connection for
#               90 s (PH_E2E_OUTAGE_SECONDS) from QEMU's first one, then forwards: the firmware
#               must retry (retries > 0) until every event is delivered, exactly once (unique
#               uuids, expected counts), each captured during the outage and received after it,
#               and still at its capture time within 1 s. Prints the events captured and
#               delivered, how long the QEMU run took and how many connections the proxy
#               dropped. QEMU gets PH_E2E_OUTAGE_QEMU_TIMEOUT s (default 360) for this pass.
#   reset       the firmware built with `--features e2e-reset`, its queue and definitions on an
#               emulated flash chip (SRAM outside the ELF, kept across a system reset), in one
#               QEMU run of three boots: boot 1 captures with the link down (learning the wall
#               clock half-way), waits until every event is on flash and resets itself
#               (SYSRESETREQ); boot 2 restores and delivers them and keeps the server's
#               definitions on flash, then resets; boot 3 restores nothing and loads the
#               definitions from flash, whose ETag gets a 304. Checks: every event delivered
#               exactly once (unique uuids, expected counts), each at its true capture time
#               (timestamps from the boot's clock anchor), the boots' output lines, and the
#               server's definitions answers (a 200, then a 304).
#   tls         HTTPS on the device: `serve --tls` generates a private CA and writes it out,
#               the firmware is built with `--features tls` trusting that CA (PH_TLS_ROOT), and
#               each connection through the UART bridge is a TLS 1.3 session whose certificate
#               the firmware verifies; the checks of keep-alive, with wall-clock timestamps
#
# With PH_E2E_PORT=PORT, QEMU is bridged to a server already listening on that port instead,
# and only the firmware's exit status is checked (one pass).
#
# Needs: cargo with the thumbv7em-none-eabihf target, qemu-system-arm, python3, and for the
# defmt passes defmt-print (`cargo install defmt-print --locked`).
# Environment: PH_SERVER_PROFILE=release|dev (how the server is built, default release),
# PH_E2E_SERVER=FILE (a `posthog-embedded` binary already built: no server build),
# PH_E2E_QEMU_TIMEOUT (seconds per QEMU run, default 90; not the outage pass),
# PH_E2E_OUTAGE_SECONDS (the outage pass's outage, default 90),
# PH_E2E_OUTAGE_QEMU_TIMEOUT (seconds for the outage pass's QEMU run, default 360),
# PH_E2E_ONLY=PASS[,PASS...] (run only these passes, e.g. `outage`; default all),
# PH_E2E_KEEP=1 (keep the work dir).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FW="$ROOT/examples/firmware"
TARGET=thumbv7em-none-eabihf
QEMU_TIMEOUT="${PH_E2E_QEMU_TIMEOUT:-90}"
OUTAGE_SECONDS="${PH_E2E_OUTAGE_SECONDS:-90}"
OUTAGE_QEMU_TIMEOUT="${PH_E2E_OUTAGE_QEMU_TIMEOUT:-360}"
ONLY="${PH_E2E_ONLY:-}"
PASSES=(keep-alive close defmt defmt-refused outage reset tls)
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
for n in "$QEMU_TIMEOUT" "$OUTAGE_SECONDS" "$OUTAGE_QEMU_TIMEOUT"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "timeouts and PH_E2E_OUTAGE_SECONDS must be whole seconds, got '$n'"
done
for p in ${ONLY//,/ }; do
  [[ " ${PASSES[*]} " == *" $p "* ]] || die "PH_E2E_ONLY: no pass '$p' (passes: ${PASSES[*]})"
done

selected() { # PASS: true when PH_E2E_ONLY is unset or names PASS
  [ -z "$ONLY" ] && return 0
  [[ ",${ONLY// /,}," == *",$1,"* ]]
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/firmware-e2e.XXXXXX")"
SERVER_PID=""
PROXY_PID=""
cleanup() {
  stop_proxy
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
    (cd "$ROOT" && cargo build --release --quiet -p posthog-embedded-devtools --bin posthog-embedded)
    SERVER="$ROOT/target/release/posthog-embedded"
  else
    (cd "$ROOT" && cargo build --quiet -p posthog-embedded-devtools --bin posthog-embedded)
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
    PORT="$(sed -n '1s#^listening on https\{0,1\}://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$WORK/$name.server.log")"
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

PROXY_PORT=""
start_proxy() { # NAME TARGET_PORT OUTAGE_SECONDS: starts scripts/outage_proxy.py, sets PROXY_PORT
  local name="$1" target="$2" outage="$3"
  # It stops by itself after --max-seconds, well after QEMU's timeout, if this script dies.
  python3 "$ROOT/scripts/outage_proxy.py" --target-port "$target" --outage "$outage" \
    --max-seconds $((OUTAGE_QEMU_TIMEOUT + 60)) --log "$WORK/$name.proxy.log" \
    > "$WORK/$name.proxy.out" 2>&1 &
  PROXY_PID=$!
  PROXY_PORT=""
  for _ in $(seq 1 100); do
    PROXY_PORT="$(sed -n '1s#^listening on 127\.0\.0\.1:\([0-9]*\)$#\1#p' "$WORK/$name.proxy.out")"
    [ -n "$PROXY_PORT" ] && return 0
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/$name.proxy.out" >&2
  die "outage proxy ($name) did not start"
}

stop_proxy() {
  if [ -n "$PROXY_PID" ]; then
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
  fi
}

START=""
TOOK=""
QEMU_RC=0
run_qemu() { # NAME ELF PORT [EXPECTED_STATUS [TIMEOUT]]: boots the firmware; output in $WORK/NAME.out
  local name="$1" elf="$2" port="$3" want="${4:-0}" limit="${5:-$QEMU_TIMEOUT}"
  START="$(date +%s.%N)"
  QEMU_RC=0
  timeout --kill-after=5 "$limit" qemu-system-arm \
    -cpu cortex-m4 -machine mps2-an386 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -chardev "socket,id=uart0,host=127.0.0.1,port=$port,reconnect=1" -serial chardev:uart0 \
    -kernel "$elf" > "$WORK/$name.out" 2> "$WORK/$name.qemu.err" || QEMU_RC=$?
  TOOK="$(python3 -c "import time; print(f'{time.time() - $START:.1f}')")"
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    fail "[$name] QEMU timed out after $limit s"
  elif [ "$QEMU_RC" = "$want" ]; then
    pass "[$name] firmware exited with status $QEMU_RC, as expected, after ${TOOK} s"
  else
    fail "[$name] firmware exited with status $QEMU_RC (expected $want) after ${TOOK} s"
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

check_events() { # NAME [check_events.py args...]
  local name="$1"
  shift
  python3 "$ROOT/scripts/check_events.py" "$WORK/$name.jsonl" --start "$START" --label "$name" \
    "${EXPECT[@]}" "$@" || failures=$((failures + 1))
}

# The firmware's summary line: `captured N, sent N, requests N, retries N, dropped N, pending N`.
summary_figure() { # FILE WORD: the number after WORD in the last summary line (empty if none)
  grep -E 'captured [0-9]+, sent [0-9]+, requests [0-9]+, retries [0-9]+' "$1" | tail -n 1 |
    grep -oE "$2 [0-9]+" | head -n 1 | cut -d' ' -f2 || true
}

check_retries() { # NAME FILE zero|some: the firmware's retry count in its output FILE
  local name="$1" file="$2" want="$3" retries
  retries="$(summary_figure "$file" retries)"
  if [ -z "$retries" ]; then
    fail "[$name] no summary line (captured .., retries ..) in the firmware output"
  elif [ "$want" = zero ] && [ "$retries" = 0 ]; then
    pass "[$name] retries 0: every batch got a 2xx at its first attempt"
  elif [ "$want" = some ] && [ "$retries" -gt 0 ]; then
    pass "[$name] retries $retries: the firmware retried through the outage"
  elif [ "$want" = zero ]; then
    fail "[$name] retries $retries, expected 0 (no outage in this pass)"
  else
    fail "[$name] retries 0, expected some across the outage"
  fi
}

if [ -n "${PH_E2E_PORT:-}" ]; then
  build_firmware plain
  echo "--- pass external: server on 127.0.0.1:$PH_E2E_PORT"
  run_qemu external "$WORK/plain.elf" "$PH_E2E_PORT"
  show_output "$WORK/external.out"
else
  build_firmware plain
  if selected reset; then
    build_firmware reset --features e2e-reset
  fi
  if selected defmt || selected defmt-refused; then
    need defmt-print "cargo install defmt-print --locked"
    build_firmware defmt --features defmt
  fi
  build_server

  for pass_name in keep-alive close; do
    selected "$pass_name" || continue
    echo "--- pass $pass_name"
    args=()
    if [ "$pass_name" = close ]; then args=(--close-connections); fi
    start_server "$pass_name" "${args[@]}"
    run_qemu "$pass_name" "$WORK/plain.elf" "$PORT"
    stop_server
    show_output "$WORK/$pass_name.out"
    check_events "$pass_name"
    check_retries "$pass_name" "$WORK/$pass_name.out" zero
  done

  # defmt: the log decodes, has lines, and never shows the API key. The second run makes the
  # server refuse every batch (400), so the library logs its own warnings too, and the firmware
  # must fail.
  for pass_name in defmt defmt-refused; do
    selected "$pass_name" || continue
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
    if [ "$pass_name" = defmt ]; then
      check_events defmt
      check_retries defmt "$WORK/defmt.log" zero
    fi
  done

  # outage: a proxy in front of the server drops every connection for OUTAGE_SECONDS from
  # QEMU's first one (QEMU reconnects every second), then forwards. The firmware retries with
  # back-off until its queue is empty; every event must arrive once, at its capture time.
  if selected outage; then
    echo "--- pass outage: ${OUTAGE_SECONDS} s outage, QEMU timeout ${OUTAGE_QEMU_TIMEOUT} s"
    start_server outage
    start_proxy outage "$PORT" "$OUTAGE_SECONDS"
    run_qemu outage "$WORK/plain.elf" "$PROXY_PORT" 0 "$OUTAGE_QEMU_TIMEOUT"
    stop_proxy
    stop_server
    show_output "$WORK/outage.out"
    sed 's/^/    proxy: /' "$WORK/outage.proxy.log" | grep -v ' dropped #' || true
    dropped_conns="$(grep -c ' dropped #' "$WORK/outage.proxy.log" || true)"
    forwarded_conns="$(grep -c ' forwarding #' "$WORK/outage.proxy.log" || true)"
    outage_end="$(sed -n 's/.* first connection: outage ends at \([0-9.]*\)$/\1/p' \
      "$WORK/outage.proxy.log" | head -n 1)"
    if [ "$dropped_conns" -gt 0 ] && [ "$forwarded_conns" -gt 0 ] && [ -n "$outage_end" ]; then
      pass "[outage] the proxy dropped $dropped_conns connections, then forwarded $forwarded_conns"
      check_events outage --outage-end "$outage_end"
    else
      fail "[outage] no outage then forwarding at the proxy (dropped $dropped_conns, forwarded $forwarded_conns)"
      check_events outage
    fi
    check_retries outage "$WORK/outage.out" some
    captured="$(summary_figure "$WORK/outage.out" captured)"
    retries="$(summary_figure "$WORK/outage.out" retries)"
    delivered="$(grep -c . "$WORK/outage.jsonl" || true)"
    echo "    outage figures: outage ${OUTAGE_SECONDS} s, events captured ${captured:-?}" \
      "(firmware), events delivered $delivered (server), retries ${retries:-?}," \
      "QEMU run ${TOOK} s, connections dropped at the proxy $dropped_conns"
  fi

  if selected tls; then
    echo "--- pass tls: TLS 1.3 on the device, certificate verified against serve --tls's CA"
    start_server tls --tls --tls-ca-out "$WORK/tls-ca.der"
    # The firmware trusts the CA this server just generated.
    PH_TLS_ROOT="$WORK/tls-ca.der" build_firmware tls --features tls
    run_qemu tls "$WORK/tls.elf" "$PORT"
    stop_server
    show_output "$WORK/tls.out"
    # The wall clock is set before dialing (certificates need it): events carry timestamps.
    check_events tls --wall-clock
    check_retries tls "$WORK/tls.out" zero
    # The stack TLS adds: the firmware reports how deep its stack went (painted at boot).
    tls_stack="$(sed -n 's/.*stack peak: \([0-9]*\) bytes.*/\1/p' "$WORK/tls.out" | tail -n 1)"
    plain_stack="$(sed -n 's/.*stack peak: \([0-9]*\) bytes.*/\1/p' "$WORK/keep-alive.out" 2>/dev/null | tail -n 1)"
    if [ -n "$tls_stack" ] && [ -n "$plain_stack" ]; then
      pass "[tls] stack peak ${tls_stack} bytes, against ${plain_stack} over plain HTTP (keep-alive): TLS adds $((tls_stack - plain_stack))"
    elif [ -n "$tls_stack" ]; then
      pass "[tls] stack peak ${tls_stack} bytes"
    else
      fail "[tls] the firmware reported no stack peak"
    fi
  fi

  # reset: three boots over the emulated flash chip in one QEMU run (see the header).
  if selected reset; then
    echo "--- pass reset: capture with the link down, reset, restore and deliver, reset, definitions from flash"
    start_server reset --definitions "$ROOT/examples/data/sample_definitions.json"
    run_qemu reset "$WORK/reset.elf" "$PORT"
    stop_server
    show_output "$WORK/reset.out"
    # The wall clock comes from the host in whole seconds: up to 1 s early.
    check_events reset --wall-clock --tolerance-s 1.5
    stored="$(sed -n 's/.*reset pass: \([0-9]*\) events on flash.*/\1/p' "$WORK/reset.out" | head -n 1)"
    restored="$(sed -n 's/.*boot 2: \([0-9]*\) events restored.*/\1/p' "$WORK/reset.out" | head -n 1)"
    delivered="$(grep -c . "$WORK/reset.jsonl" || true)"
    if [ -n "$stored" ] && [ "$stored" = "$restored" ] && [ "$restored" = "$delivered" ]; then
      pass "[reset] $stored events on flash before the reset, $restored restored after it, $delivered delivered"
    else
      fail "[reset] stored ${stored:-?}, restored ${restored:-?}, delivered $delivered"
    fi
    if grep -q 'boot 3: 0 events restored from flash .*definitions from flash' "$WORK/reset.out"; then
      pass "[reset] boot 3 restored no event again, and its definitions from flash"
    else
      fail "[reset] boot 3 did not start with an empty queue and definitions from flash"
    fi
    defs_200="$(grep -c 'GET /flags/definitions.* 200 ' "$WORK/reset.server.log" || true)"
    defs_304="$(grep -c 'GET /flags/definitions.* 304 ' "$WORK/reset.server.log" || true)"
    if [ "$defs_200" = 1 ] && [ "$defs_304" = 1 ]; then
      pass "[reset] definitions: one 200 (boot 2), then one 304 for the ETag kept on flash (boot 3)"
    else
      fail "[reset] definitions answers: $defs_200 x 200, $defs_304 x 304 (expected one of each)"
    fi
    echo "    reset figures: events stored ${stored:-?}, restored ${restored:-?}," \
      "delivered $delivered, QEMU run ${TOOK} s"
  fi
fi

echo
if [ "$failures" = 0 ]; then
  echo "PASS firmware e2e"
else
  echo "FAIL firmware e2e: $failures failed checks"
  exit 1
fi
