#!/usr/bin/env bash
# Footprint and cost of posthog-embedded on a Cortex-M4F (examples/firmware), as markdown.
#
# 1. Builds the size binaries and the e2e firmware (release: opt-level "s", LTO, one codegen
#    unit) for thumbv7em-none-eabihf, and the firmware for thumbv6m-none-eabi, and measures
#    flash (text + data) and static RAM (data + bss) with arm-none-eabi-size, also as the
#    difference from an empty cortex-m-rt program.
# 2. Runs the `bench` binary under QEMU with `-icount shift=0` (one instruction = 1 ns of
#    virtual time, read through SysTick at 25 MHz) and prints instructions per operation,
#    with the calibration against a loop of known length.
#
# 3. Gates: exits non-zero when a build's flash or an operation's instruction count exceeds
#    its budget below, so the footprint cannot creep back. The budgets are a ratchet (today's
#    figures plus a little slack for toolchain changes): lower them as the figures fall, never
#    raise them to make a change pass. The "target" column printed beside them is where the
#    library is headed; a budget at or under its target means the target is met.
#
# Needs: cargo with the thumbv7em-none-eabihf and thumbv6m-none-eabi targets,
# arm-none-eabi-size (binutils-arm-none-eabi), qemu-system-arm.
set -euo pipefail

# Budgets (bytes of flash = text + data; instructions per operation). Override one from the
# environment to try a tighter value locally.
BUDGET_CAPTURE_FLASH=${BUDGET_CAPTURE_FLASH:-16896}       # (a) size_capture, total
BUDGET_FLAGS_FLASH=${BUDGET_FLAGS_FLASH:-118784}          # (b) size_flags, total
BUDGET_FULL_FLASH=${BUDGET_FULL_FLASH:-218624}            # (c) firmware, default features
BUDGET_NO_PERSIST_FLASH=${BUDGET_NO_PERSIST_FLASH:-194560} # (c) without persistence
BUDGET_TLS_FLASH=${BUDGET_TLS_FLASH:-311296}              # (c) with TLS
BUDGET_COMPACT_FLASH=${BUDGET_COMPACT_FLASH:-207872}      # (c) in the compact profile
BUDGET_CAPTURE_INSTR=${BUDGET_CAPTURE_INSTR:-3100}         # one 5-property capture
BUDGET_LOAD_INSTR_PER_BYTE=${BUDGET_LOAD_INSTR_PER_BYTE:-120} # FlagStore::load, per document byte
BUDGET_LOAD_ONCE_INSTR_PER_BYTE=${BUDGET_LOAD_ONCE_INSTR_PER_BYTE:-64} # load_or_clear, per byte
BUDGET_CLIENT_BYTES=${BUDGET_CLIENT_BYTES:-960}            # size_of::<Client>(), with `storage`
# Where each is headed.
TARGET_CAPTURE_FLASH=8192
TARGET_FULL_FLASH=131072
TARGET_COMPACT_FLASH=81920
TARGET_CAPTURE_INSTR=3000
TARGET_LOAD_INSTR_PER_BYTE=60
TARGET_CLIENT_BYTES=1024

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FW="$ROOT/examples/firmware"
M4=thumbv7em-none-eabihf
M0=thumbv6m-none-eabi

die() { echo "FAIL $*" >&2; exit 1; }
for tool in cargo arm-none-eabi-size qemu-system-arm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (see examples/firmware/README.md)"
done
if command -v rustup >/dev/null 2>&1; then
  for t in "$M4" "$M0"; do
    rustup target list --installed | grep -qx "$t" || die "Rust target $t missing: rustup target add $t"
  done
fi

cd "$FW"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/firmware-size.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
echo "building (release) ..." >&2
# Without the firmware's `persist` feature (on by default) first: the size binaries never use
# persistence, and the firmware without it shows what the storage layer costs.
cargo build --release --quiet --target "$M4" --no-default-features \
  --bin size_baseline --bin size_capture --bin size_flags --bin posthog-firmware
for b in size_baseline size_capture size_flags; do
  cp "target/$M4/release/$b" "$OUT/$b.elf"
done
cp "target/$M4/release/posthog-firmware" "$OUT/no-persist.elf"
# With TLS on the device (the throwaway root beside the firmware crate: only sizes matter).
cargo build --release --quiet --target "$M4" --bin posthog-firmware --features tls
cp "target/$M4/release/posthog-firmware" "$OUT/tls.elf"
# The library's compact profile (no Unicode data): (b) and (c) again.
cargo build --release --quiet --target "$M4" --bin size_flags --bin posthog-firmware \
  --features compact
cp "target/$M4/release/size_flags" "$OUT/compact-flags.elf"
cp "target/$M4/release/posthog-firmware" "$OUT/compact.elf"
cargo build --release --quiet --target "$M4" --bin posthog-firmware --bin bench
cargo build --release --quiet --target "$M0" --bin posthog-firmware

# text data bss of an ELF.
sizes() { arm-none-eabi-size "$1" | awk 'NR == 2 { print $1, $2, $3 }'; }

read -r bt bd bb < <(sizes "$OUT/size_baseline.elf")
base_flash=$((bt + bd))
base_ram=$((bd + bb))

row() { # LABEL ELF
  local t d b flash ram
  read -r t d b < <(sizes "$2")
  flash=$((t + d))
  ram=$((d + b))
  printf '| %s | %d | %d | %+d | %+d |\n' "$1" "$flash" "$ram" "$((flash - base_flash))" \
    "$((ram - base_ram))"
}

echo "## Footprint (release: opt-level \"s\", LTO, codegen-units 1)"
echo
echo "Bytes. Flash = text + data, static RAM = data + bss (stack not included); \"+\" columns"
echo "are the difference from the empty cortex-m-rt program."
echo
echo "| Binary | Flash | Static RAM | Flash over baseline | RAM over baseline |"
echo "|---|---:|---:|---:|---:|"
row "baseline: empty cortex-m-rt program (\`size_baseline\`)" "$OUT/size_baseline.elf"
row "(a) capture: Encoder + 4 KiB Queue + render_batch (\`size_capture\`)" \
  "$OUT/size_capture.elf"
row "(b) capture + local flags: FlagStore load + evaluate (\`size_flags\`)" \
  "$OUT/size_flags.elf"
row "(c) full client: embassy, HTTP over UART, queue and definitions on flash (\`posthog-firmware\`)" \
  "target/$M4/release/posthog-firmware"
row "(c) without persistence (\`--no-default-features\`)" "$OUT/no-persist.elf"
row "(c) on Cortex-M0+ (\`thumbv6m-none-eabi\`)" "target/$M0/release/posthog-firmware"
row "(c) with TLS on the device (\`--features tls\`)" "$OUT/tls.elf"
row "(b) in the compact profile (\`--features compact\`)" "$OUT/compact-flags.elf"
row "(c) in the compact profile (\`--features compact\`)" "$OUT/compact.elf"
echo
read -r pt pd pb < <(sizes "target/$M4/release/posthog-firmware")
read -r nt nd nb < <(sizes "$OUT/no-persist.elf")
echo "Persistence (the event log, the definitions slot, the storage task and the client's"
echo "bookkeeping; the 1 KiB event staging buffer included): $(((pt + pd) - (nt + nd))) bytes of"
echo "flash, $(((pd + pb) - (nd + nb))) bytes of static RAM."
echo
read -r tt td tb < <(sizes "$OUT/tls.elf")
echo "TLS on the device (embedded-tls, the certificate verifier on rustls-webpki, ECDSA P-256,"
echo "the 16,640-byte record buffer and 2 KiB write buffer included): $(((tt + td) - (pt + pd)))"
echo "bytes of flash, $(((td + tb) - (pd + pb))) bytes of static RAM."
echo

echo "running bench under QEMU -icount shift=0 ..." >&2
out="$(timeout 120 qemu-system-arm -icount shift=0 -cpu cortex-m4 -machine mps2-an386 \
  -nographic -monitor none -semihosting-config enable=on,target=native \
  -kernel "target/$M4/release/bench")" || die "bench failed: $out"
field() { awk -v k="$1" -v n="$2" '$1 == "bench" && $2 == k { print $n }' <<<"$out"; }
val() { field "$1" 3; }
for k in client_bytes calibration_long calibration_short capture render_batch render_batch_bytes flags_load \
  flags_load_once \
  eval_rollout eval_semver eval_multivariate persist_event persist_event_bytes restore_full \
  restore_full_events; do
  [ -n "$(val "$k")" ] || die "bench printed no $k: $out"
done
calibration() { # NAME: "E instructions measured as M (+D, +P %)"
  local e m
  e="$(field "calibration_$1" 3)"
  m="$(field "calibration_$1" 4)"
  awk -v e="$e" -v m="$m" 'BEGIN { printf "%d instructions measured as %d (%+d, %+.3f %%)", e, m, m - e, (m - e) * 100 / e }'
}

echo "## Instructions per operation (Cortex-M4, QEMU \`-icount shift=0\`)"
echo
echo "Average over 1000 calls (10 for the load), timing overhead subtracted. Calibration with"
echo "\`cortex_m::asm::delay\` loops: long, 20 runs of $(calibration long); short,"
echo "1000 runs of $(calibration short)."
echo
echo "| Operation | Instructions |"
echo "|---|---:|"
echo "| \`capture\`: a 5-property event into the queue | $(val capture) |"
echo "| \`render_batch\`: 10 such events, $(val render_batch_bytes) bytes of body | $(val render_batch) |"
echo "| \`FlagStore::load\`: the 20-flag sample definitions (10 KB; validate, then fill) | $(val flags_load) |"
echo "| \`FlagStore::load_or_clear\`: the same in one pass, as into a staging store | $(val flags_load_once) |"
echo "| evaluate \`ota-updates\` (30% rollout) | $(val eval_rollout) |"
echo "| evaluate \`new-sampling-rate\` (semver_gte filter) | $(val eval_semver) |"
echo "| evaluate \`display-theme\` (multivariate, 3 variants) | $(val eval_multivariate) |"
echo "| \`EventLog::append\`: one such event ($(val persist_event_bytes) bytes of JSON) to flash, erases and a tail record every 10 events included | $(val persist_event) |"
echo "| restore a full 40 KiB log at boot: mount, then read all $(val restore_full_events) events back | $(val restore_full) |"

# The definitions document the bench loads (the sample, embedded in the firmware).
doc_bytes=$(wc -c <"$ROOT/examples/data/sample_definitions.json")
load_per_byte=$(( ($(val flags_load) + doc_bytes - 1) / doc_bytes ))
load_once_per_byte=$(( ($(val flags_load_once) + doc_bytes - 1) / doc_bytes ))
flash_of() { local t d b; read -r t d b < <(sizes "$1"); echo $((t + d)); }

echo
echo "## Gates"
echo
echo "| Measure | Value | Budget | Target |"
echo "|---|---:|---:|---:|"
failed=0
gate() { # LABEL VALUE BUDGET TARGET
  local verdict=""
  if [ "$2" -gt "$3" ]; then verdict=" **over budget**"; failed=1; fi
  printf '| %s | %d%s | %d | %s |\n' "$1" "$2" "$verdict" "$3" "$4"
}
gate "(a) capture flash" "$(flash_of "$OUT/size_capture.elf")" "$BUDGET_CAPTURE_FLASH" "$TARGET_CAPTURE_FLASH"
gate "(b) capture + local flags flash" "$(flash_of "$OUT/size_flags.elf")" "$BUDGET_FLAGS_FLASH" "-"
gate "(c) full client flash" "$(flash_of "target/$M4/release/posthog-firmware")" "$BUDGET_FULL_FLASH" "$TARGET_FULL_FLASH"
gate "(c) without persistence flash" "$(flash_of "$OUT/no-persist.elf")" "$BUDGET_NO_PERSIST_FLASH" "-"
gate "(c) with TLS flash" "$(flash_of "$OUT/tls.elf")" "$BUDGET_TLS_FLASH" "-"
gate "(c) compact profile flash" "$(flash_of "$OUT/compact.elf")" "$BUDGET_COMPACT_FLASH" "$TARGET_COMPACT_FLASH"
# Every static of the library and the firmware is all zeros (`const fn new()` storage), so none
# is copied from flash at boot: a non-zero `.data` means one stopped being (a niche-encoded
# `None` in a `static`, say) and now costs its whole size in flash as well as in RAM.
data_of() { local t d b; read -r t d b < <(sizes "$1"); echo "$d"; }
gate "(c) initialised data (.data), flash image of statics" "$(data_of "target/$M4/release/posthog-firmware")" 0 "0"
gate "library fixed state: size_of::<Client>() (bytes; Resources are the caller's)" "$(val client_bytes)" "$BUDGET_CLIENT_BYTES" "$TARGET_CLIENT_BYTES"
gate "capture instructions" "$(val capture)" "$BUDGET_CAPTURE_INSTR" "$TARGET_CAPTURE_INSTR"
gate "load instructions per byte ($doc_bytes-byte document; two passes)" "$load_per_byte" "$BUDGET_LOAD_INSTR_PER_BYTE" "-"
gate "staged load instructions per byte (one pass)" "$load_once_per_byte" "$BUDGET_LOAD_ONCE_INSTR_PER_BYTE" "$TARGET_LOAD_INSTR_PER_BYTE"
echo
[ "$failed" = 0 ] || die "a footprint or instruction budget is exceeded (see the Gates table)"
