#!/usr/bin/env bash
# Side-by-side flag evaluation benchmark: posthog-embedded ("us", devtools' bench_eval) against
# posthog-rs, posthog-python and posthog-node, on the same definitions, context and ids.
# See README.md beside this file.
#
#   bench/compare/run.sh [--runs N] [--ids N] [--repeat R] [--definitions F] [--context F]
#
# Installs the pinned peers into bench/compare/.deps/ (once), builds the posthog-rs runner
# and bench_eval (release), runs the four runners alternating (us, rs, py, node, us, ...),
# checks that they all print the same per-flag result counts, and prints a markdown table.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEPS="$HERE/.deps"

# Pinned peers.
PY_PKG_VERSION=7.91.1   # PyPI `posthog`
NODE_PKG_VERSION=5.70.0 # npm `posthog-node` (with @posthog/core, see node-deps/package-lock.json)
RS_PKG_VERSION=0.30.0   # crates.io `posthog-rs` (see rs-runner/Cargo.toml)

RUNS=5
IDS=2000
REPEAT=5
DEFINITIONS="$HERE/workload/definitions.json"
CONTEXT="$HERE/workload/context.json"

usage() {
  sed -n '6p' "${BASH_SOURCE[0]}" | sed 's/^# *//'
  echo "defaults: --runs $RUNS --ids $IDS --repeat $REPEAT"
  echo "          --definitions ${DEFINITIONS#"$ROOT"/} --context ${CONTEXT#"$ROOT"/}"
}

abspath() { # a path given relative to the caller's directory
  case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}

positive() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a number above 0, got '$2'" >&2; exit 2; }
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) positive "$1" "${2-}"; RUNS="$2"; shift 2 ;;
    --ids) positive "$1" "${2-}"; IDS="$2"; shift 2 ;;
    --repeat) positive "$1" "${2-}"; REPEAT="$2"; shift 2 ;;
    --definitions) DEFINITIONS="$(abspath "${2:?--definitions needs a file}")"; shift 2 ;;
    --context) CONTEXT="$(abspath "${2:?--context needs a file}")"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for f in "$DEFINITIONS" "$CONTEXT"; do
  [[ -f "$f" ]] || { echo "run.sh: no such file: $f" >&2; exit 2; }
done

step() { echo "==> $*" >&2; }

# --- Peers -----------------------------------------------------------------------------------

install_python() {
  local py="$DEPS/py/bin/python"
  if [[ -x "$py" ]] && "$py" -c "import posthog.version as v, sys; sys.exit(v.VERSION != '$PY_PKG_VERSION')" 2>/dev/null; then
    return
  fi
  step "installing posthog-python $PY_PKG_VERSION into ${DEPS#"$ROOT"/}/py"
  rm -rf "$DEPS/py"
  python3 -m venv "$DEPS/py"
  "$DEPS/py/bin/pip" install --quiet --disable-pip-version-check "posthog==$PY_PKG_VERSION"
}

node_package_version() { # NAME -> installed version, or nothing
  local manifest="$DEPS/node/node_modules/$1/package.json"
  [[ -f "$manifest" ]] && node -p "require('$manifest').version" 2>/dev/null || true
}

install_node() {
  local lock="$HERE/node-deps/package-lock.json"
  if [[ "$(node_package_version posthog-node)" == "$NODE_PKG_VERSION" ]] \
    && cmp -s "$lock" "$DEPS/node/package-lock.json"; then
    return
  fi
  step "installing posthog-node $NODE_PKG_VERSION into ${DEPS#"$ROOT"/}/node"
  rm -rf "$DEPS/node"
  mkdir -p "$DEPS/node"
  cp "$HERE/node-deps/package.json" "$lock" "$DEPS/node/"
  npm ci --prefix "$DEPS/node" --no-audit --no-fund --loglevel=error >&2
}

install_python
install_node

# --- Builds (one cargo at a time) ------------------------------------------------------------

step "building the posthog-rs runner (release)"
grep -A1 '^name = "posthog-rs"$' "$HERE/rs-runner/Cargo.lock" | grep -qx "version = \"$RS_PKG_VERSION\"" \
  || { echo "run.sh: rs-runner/Cargo.lock does not pin posthog-rs $RS_PKG_VERSION" >&2; exit 1; }
cargo build --release --locked --quiet --manifest-path "$HERE/rs-runner/Cargo.toml"
RS_BIN="$HERE/rs-runner/target/release/posthog-rs-bench-runner"

step "building bench_eval (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" \
  -p posthog-embedded-devtools --example bench_eval
US_BIN="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/bench_eval"
US_VERSION="$(cd "$ROOT" && cargo pkgid -p posthog-embedded | sed 's/.*[@#]//')"

# --- Isolation: no network for the runners -----------------------------------------------------

if unshare -n true 2>/dev/null; then
  ISOLATE=(unshare -n)
  ISOLATION="every runner in its own network namespace (unshare -n): no network at all"
else
  ISOLATE=()
  ISOLATION="NOT ISOLATED (unshare -n is not available here); the peers are configured for local \
evaluation only, with no poller, no events and hosts pointed at http://127.0.0.1:9"
fi

# --- Header: machine, versions, workload ------------------------------------------------------

cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)"
flag_count="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["flags"]))' "$DEFINITIONS")"
echo "## Flag evaluation: posthog-embedded vs posthog-rs, posthog-python, posthog-node"
echo
echo "- Machine: ${cpu:-unknown CPU}, $(nproc) cores, $(uname -sr)"
echo "- Toolchains: $(rustc --version), $("$DEPS/py/bin/python" --version 2>&1), Node.js $(node --version)"
echo "- Workload: ${DEFINITIONS#"$ROOT"/} ($flag_count flags, $(wc -c <"$DEFINITIONS" | tr -d ' ') bytes), \
${CONTEXT#"$ROOT"/}; $IDS ids; each run: --repeat $REPEAT (medians of $REPEAT loads and $REPEAT passes \
over every id and flag); $RUNS run(s) per runner, alternating"
echo "- Isolation: $ISOLATION"
echo "- Command: bench/compare/run.sh --runs $RUNS --ids $IDS --repeat $REPEAT"
echo

# --- Runs ------------------------------------------------------------------------------------

OUT="$DEPS/last-run"
rm -rf "$OUT"
mkdir -p "$OUT"
ARGS=(--definitions "$DEFINITIONS" --context "$CONTEXT" --ids "$IDS" --repeat "$REPEAT")
RUNNERS=(us rs py node)
command_for() {
  case "$1" in
    us) CMD=("$US_BIN") ;;
    rs) CMD=("$RS_BIN") ;;
    py) CMD=("$DEPS/py/bin/python" "$HERE/py_runner.py") ;;
    node) CMD=(node "$HERE/node_runner.mjs") ;;
  esac
}

for ((run = 1; run <= RUNS; run++)); do
  for r in "${RUNNERS[@]}"; do
    step "run $run/$RUNS: $r"
    command_for "$r"
    if ! python3 "$HERE/measure.py" "$OUT/$r.$run.out" -- ${ISOLATE[@]+"${ISOLATE[@]}"} "${CMD[@]}" "${ARGS[@]}"; then
      echo "run.sh: the $r runner failed (run $run); its output:" >&2
      cat "$OUT/$r.$run.out" "$OUT/$r.$run.out.err" >&2
      exit 1
    fi
  done
done

python3 "$HERE/report.py" "$OUT" "$RUNS" \
  "us:posthog-embedded (us):$US_VERSION" \
  "rs:posthog-rs:$RS_PKG_VERSION" \
  "py:posthog-python:$PY_PKG_VERSION" \
  "node:posthog-node:$NODE_PKG_VERSION (@posthog/core $(node_package_version @posthog/core))"
echo
echo "Raw output of every run: ${OUT#"$ROOT"/}/"
