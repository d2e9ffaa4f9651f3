#!/usr/bin/env bash
# A/B in one run: the original LOOM MCP gateway (loom-ai 0.9.0, Python, gateway A) against
# `loom mcp` (this repo, gateway B), with the shared peer harness
# (/work/shared/bench/peer: nats-server + Python router + Python processor worker
# (TextStatsBackend), load from the official Python `mcp` SDK). Both gateways are measured
# in every repetition, interleaved (A,B then B,A, ...), and the harness prints B/A ratios.
#
# Usage:  bench/ab-peer.sh                      (REPS=3; ~2.5 min per repetition)
#         REPS=5 DURATION=10 bench/ab-peer.sh   (any run.sh knob passes through)
#
# Needs the release binary (cargo build --release -p loom-cli); LOOM_BIN overrides it.
# The harness folder is read-only, so it is copied to a temp dir (without its recorded
# results) and run from there; the raw JSON + summary.md land in RESULTS_DIR (default
# bench/results/ab-peer-latest in this repo), logs in the run dir it prints.
#
# Why a generated config: the harness's gateway YAML names the worker config relative to
# the directory the Python gateway is started in (`configs/worker_textstats.yaml`), while
# `loom mcp` resolves `config:` paths relative to the YAML file itself. So the same YAML is
# rewritten here with an absolute path (and the harness's NATS URL). The worker YAML names
# `processing_backend: peer_backend.TextStatsBackend`, which `loom mcp` accepts: on NATS it
# never builds processors, it only reads the worker's name, schemas and timeout.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_SRC="${PEER_SRC:-/work/shared/bench/peer}"
LOOM_BIN="${LOOM_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/loom}"
NATS_PORT="${NATS_PORT:-14222}"
export NATS_PORT
export REPS="${REPS:-3}"
export RESULTS_DIR="${RESULTS_DIR:-$REPO/bench/results/ab-peer-latest}"
export GATEWAY_LABEL_B="${GATEWAY_LABEL_B:-rust}"

[ -x "$LOOM_BIN" ] || { echo "ab-peer.sh: no $LOOM_BIN; run cargo build --release -p loom-cli" >&2; exit 1; }
[ -f "$PEER_SRC/run.sh" ] || { echo "ab-peer.sh: no harness at $PEER_SRC" >&2; exit 1; }
# run.sh starts the gateways from its own folder: the binary's path must be absolute.
LOOM_BIN="$(cd "$(dirname "$LOOM_BIN")" && pwd)/$(basename "$LOOM_BIN")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/loom-ab-peer.XXXXXX")"
# The harness copy and the generated config go when this script ends; the run dir with
# the logs is separate (run.sh prints it).
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/peer"
(cd "$PEER_SRC" && tar --exclude=./results -cf - .) | (cd "$WORK/peer" && tar -xf -)
chmod -R u+w "$WORK/peer"

RUST_CONFIG="$WORK/rust_gateway.yaml"
sed -e "s#@NATS_URL@#nats://127.0.0.1:${NATS_PORT}#" \
    -e "s#config: \"configs/#config: \"$WORK/peer/configs/#" \
    "$WORK/peer/configs/mcp_gateway.yaml.in" > "$RUST_CONFIG"
grep -q "config: \"$WORK/peer/configs/worker_textstats.yaml\"" "$RUST_CONFIG" \
  || { echo "ab-peer.sh: could not rewrite the worker path in the gateway YAML" >&2; exit 1; }

# run.sh starts it with `bash -c "exec $GATEWAY_CMD_B"`, with GW_PORT and NATS_URL exported,
# so the PID it watches is the gateway's own. LOOM_BIN and RUST_GW_CONFIG are exported too,
# so GATEWAY_CMD / GATEWAY_CMD_B given by the caller can use them (e.g. to compare two
# builds or settings of the Rust gateway: see BENCHMARKS.md, "Gateway").
export LOOM_BIN RUST_GW_CONFIG="$RUST_CONFIG"
export GATEWAY_CMD_B="${GATEWAY_CMD_B:-\"\$LOOM_BIN\" mcp --config \"\$RUST_GW_CONFIG\" --transport http --host 127.0.0.1 --port \$GW_PORT --nats-url \$NATS_URL}"
echo "ab-peer.sh: GATEWAY_CMD_B=$GATEWAY_CMD_B" >&2
echo "ab-peer.sh: results -> $RESULTS_DIR" >&2
"$WORK/peer/run.sh"
