#!/usr/bin/env bash
# Loom interop test: the Python original (PyPI loom-ai 0.9.0) and the Rust build on
# ONE real nats-server, talking over the shared `loom.*` subjects and JSON messages.
#
# Usage:  tests/interop/run.sh [--loom PATH/TO/loom]
#         (without --loom, or $LOOM_BIN, it runs `cargo build -p loom-cli` and uses
#          ${CARGO_TARGET_DIR:-target}/debug/loom)
#
# It installs what it needs when missing, idempotently:
#   - nats-server (Debian package, via apt-get);
#   - a venv at ${LOOM_INTEROP_VENV:-$HOME/.cache/loom/interop-venv} with
#     `pip install -r requirements.txt -c constraints.txt` (loom-ai==0.9.0, pinned deps);
#     reinstalled only when those two files change. Python: $LOOM_INTEROP_PYTHON, else
#     the first of python3.11, python3, python3.12, python3.13 that is >= 3.11 (Debian's
#     python3-venv is installed if `python -m venv` lacks ensurepip).
# Then it starts its own nats-server on random loopback ports and runs, in two phases:
#
#   phase 1 (Rust router):
#     a. Python worker behind the Rust router (Rust `loom submit` -> Rust router ->
#        Python `loom processor` textstats; then the same from the loom-ai client,
#        checking the TaskMessage the Rust router forwards)
#     c. dead letter answered: a malformed task from the Python client, through the Rust
#        router, gets an immediate FAILED TaskResult that loom-ai parses
#     d. Python goal to a Rust pipeline (`loom up --compat-goals`), whose stages run on the
#        Python worker and a Rust worker
#   phase 2 (Python router; the Rust router is stopped first):
#     b. Rust worker behind the Python router (loom-ai client -> Python `loom router` ->
#        Rust `loom processor` text_stats; the result parsed by loom-ai's TaskResult)
#     e. Rust client through the Python router (Rust `loom submit` -> Python router ->
#        Python worker)
#     f. Python pipeline (`loom pipeline`) over a Rust worker and a Python worker
#
# Readiness is read from nats-server's monitor (/subsz): a component is ready when its
# subscription is registered. Each step has a timeout. Every process is started by PID
# and stopped by PID (trap on EXIT/INT/TERM). loom-ai actors ignore SIGTERM while idle
# (mesh spec 4.3), so they get SIGKILL after a short grace period; that is expected.
#
# Output: one `PASS <id>. <title> (<secs> s)` or `FAIL ...` line per scenario (on failure
# followed by the client output and the tail of every process log), and as the last line
# `N passed, M failed`. Exit status 0 when all passed, 1 otherwise.
#
# Env: LOOM_INTEROP_VENV, LOOM_INTEROP_PYTHON, LOOM_BIN, LOOM_INTEROP_KEEP_LOGS=1 (keep the
# run directory even when everything passed), LOOM_INTEROP_STEP_TIMEOUT (default 45 s).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${LOOM_INTEROP_VENV:-$HOME/.cache/loom/interop-venv}"
STEP_TIMEOUT="${LOOM_INTEROP_STEP_TIMEOUT:-45}"
LOOM="${LOOM_BIN:-}"
TEXT_PY='héllo wörld, the quick ✓ brown fox'   # non-ASCII: loom-ai escapes it as \uXXXX
TEXT_RS='the quick brown fox jumps over the lazy dog'

while [ $# -gt 0 ]; do
    case "$1" in
        --loom) LOOM="$2"; shift 2 ;;
        --loom=*) LOOM="${1#--loom=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Timings below read $EPOCHREALTIME, whose decimal point follows LC_NUMERIC.
export LC_NUMERIC=C
# The Rust CLI reads these; this test talks to its own server only.
unset LOOM_NATS_URL LOOM_NATS_CREDS

# The script's own stdout/stderr, for the summary and cleanup even when a signal
# arrives while a scenario's output is redirected to its file.
exec 3>&1 4>&2

T0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[interop +%ss] %s\n' "$(since "$T0")" "$*" >&2; }

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/loom-interop.XXXXXX")"
PASSED=0
FAILED=0
SUMMARY_DONE=0

# ------------------------------------------------------------------ processes
# name -> PID of every process this script started (only these are ever signalled)
declare -A PIDS=()
ORDER=()

start() {  # start NAME CMD... : runs CMD in the background, output to $RUN_DIR/NAME.log
    local name="$1"; shift
    "$@" > "$RUN_DIR/$name.log" 2>&1 3>&- 4>&- &
    PIDS[$name]=$!
    [[ " ${ORDER[*]} " == *" $name "* ]] || ORDER+=("$name")
    log "started $name (pid ${PIDS[$name]})"
}

running() { [ -n "${PIDS[$1]:-}" ] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

stop() {  # stop [GRACE_SECS] NAME... : SIGTERM, wait up to GRACE, then SIGKILL; reap
    local grace=5 name pid i alive
    case "${1:-}" in [0-9]*) grace="$1"; shift ;; esac
    local names=()
    for name in "$@"; do
        pid="${PIDS[$name]:-}"
        [ -n "$pid" ] || continue
        names+=("$name")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < grace * 10; i++)); do
        alive=0
        for name in "${names[@]}"; do kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for name in "${names[@]}"; do
        pid="${PIDS[$name]:-}"
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) still running ${grace} s after SIGTERM; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        unset "PIDS[$name]"
    done
}

stop_all() {
    local names=() i
    for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
        [ -n "${PIDS[${ORDER[$i]}]:-}" ] && names+=("${ORDER[$i]}")
    done
    # nats-server last, so that the others can drain.
    local others=() n
    for n in "${names[@]}"; do [ "$n" = nats ] || others+=("$n"); done
    # loom-ai actors ignore SIGTERM while idle (mesh spec 4.3): 1 s, then SIGKILL.
    local py=() rest=()
    for n in "${others[@]}"; do
        case "$n" in py_textstats|py_pipeline) py+=("$n") ;; *) rest+=("$n") ;; esac
    done
    [ ${#py[@]} -eq 0 ] || stop 1 "${py[@]}"
    [ ${#rest[@]} -eq 0 ] || stop 5 "${rest[@]}"
    [ -z "${PIDS[nats]:-}" ] || stop 5 nats
}

summary() {
    SUMMARY_DONE=1
    echo "$PASSED passed, $FAILED failed"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    stop_all
    if [ "$SUMMARY_DONE" = 0 ]; then
        # Aborted before the scenarios finished (setup error, signal).
        echo "FAIL run: the interop test stopped early (exit status $rc: a setup error or a signal); logs in $RUN_DIR"
        tail_logs
        FAILED=$((FAILED + 1))
        summary
        exit 1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

strip_ansi() { sed 's/\x1b\[[0-9;]*m//g'; }

tail_logs() {
    local f
    for f in "$RUN_DIR"/*.log; do
        [ -e "$f" ] || continue
        echo "    ---- tail of $(basename "$f")"
        tail -n 25 "$f" | strip_ansi | sed 's/^/    | /'
    done
}

# ------------------------------------------------------------------ install
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

find_nats() {
    if command -v nats-server >/dev/null 2>&1; then command -v nats-server
    elif [ -x /usr/sbin/nats-server ]; then echo /usr/sbin/nats-server
    else return 1; fi
}
NATS_SERVER="$(find_nats)" || { apt_install nats-server; NATS_SERVER="$(find_nats)"; }

pick_python() {
    local c
    for c in ${LOOM_INTEROP_PYTHON:-} python3.11 python3 python3.12 python3.13; do
        if "$c" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    echo "no Python 3.11-3.13 found (set LOOM_INTEROP_PYTHON)" >&2
    return 1
}

ensure_venv() {
    local want have="" py ver
    want="$(cat "$HERE/requirements.txt" "$HERE/constraints.txt" | sha256sum | cut -d' ' -f1)"
    [ -f "$VENV/.loom-interop-stamp" ] && have="$(cat "$VENV/.loom-interop-stamp")"
    if [ "$have" = "$want" ] && "$VENV/bin/python" -c 'import loom.core.messages, nats' 2>/dev/null; then
        log "venv $VENV is up to date"
        return 0
    fi
    if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        if [ -e "$VENV" ]; then
            # Only ever remove a directory that is a venv.
            [ -f "$VENV/pyvenv.cfg" ] || { echo "$VENV exists and is not a venv" >&2; return 1; }
            log "removing broken venv $VENV"
            rm -rf "$VENV"
        fi
        py="$(pick_python)"
        log "creating venv $VENV with $py ($("$py" --version 2>&1))"
        if ! "$py" -m venv "$VENV" > "$RUN_DIR/venv.log" 2>&1; then
            # Debian's own python3 ships without ensurepip unless pythonX.Y-venv is installed.
            cat "$RUN_DIR/venv.log" >&2
            rm -rf "$VENV"
            ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            apt_install "python${ver}-venv" || apt_install python3-venv
            "$py" -m venv "$VENV"
        fi
    fi
    log "pip install -r requirements.txt -c constraints.txt (loom-ai==0.9.0)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
    "$VENV/bin/python" -c 'import loom.core.messages, nats'
    echo "$want" > "$VENV/.loom-interop-stamp"
}

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9   # one install at a time when runs share the venv
ensure_venv
exec 9>&-
PY="$VENV/bin/python"
PYLOOM="$VENV/bin/loom"
log "loom-ai $("$PY" -c 'from importlib.metadata import version; print(version("loom-ai"))') on Python $("$PY" -c 'import platform; print(platform.python_version())')"

if [ -z "$LOOM" ]; then
    log "cargo build -p loom-cli"
    (cd "$REPO" && cargo build -q -p loom-cli --locked)
    target="${CARGO_TARGET_DIR:-target}"
    case "$target" in /*) ;; *) target="$REPO/$target" ;; esac
    LOOM="$target/debug/loom"
fi
[ -x "$LOOM" ] || { echo "Rust loom binary not found at '$LOOM' (use --loom PATH)" >&2; exit 2; }
LOOM="$(cd "$(dirname "$LOOM")" && pwd)/$(basename "$LOOM")"
log "Rust loom: $LOOM ($("$LOOM" --version))"

# ------------------------------------------------------------------ nats-server
start nats "$NATS_SERVER" -a 127.0.0.1 -p -1 -m -1
for _ in $(seq 1 100); do
    grep -q 'Server is ready' "$RUN_DIR/nats.log" 2>/dev/null && break
    running nats || break
    sleep 0.05
done
NATS_HOSTPORT="$(grep -o 'client connections on [0-9.]*:[0-9]*' "$RUN_DIR/nats.log" | awk '{print $4}' | head -1)"
MON_HOSTPORT="$(grep -o 'http monitor on [0-9.]*:[0-9]*' "$RUN_DIR/nats.log" | awk '{print $4}' | head -1)"
[ -n "$NATS_HOSTPORT" ] && [ -n "$MON_HOSTPORT" ] || { echo "nats-server did not start" >&2; exit 1; }
NATS_URL="nats://$NATS_HOSTPORT"
MONITOR="http://$MON_HOSTPORT"
log "nats-server at $NATS_URL (monitor $MONITOR); run dir $RUN_DIR"

# ------------------------------------------------------------------ components
# Python (loom-ai 0.9.0) parts: PYTHONPATH holds peer_backend.TextStatsBackend.
# (`env` execs the program, so the recorded PID is the Python process itself.)
PY_ENV=(env PYTHONPATH="$HERE/python" PYTHONUNBUFFERED=1)

start_py_textstats() {
    running py_textstats || start py_textstats "${PY_ENV[@]}" "$PYLOOM" processor \
        --config "$HERE/python/textstats.yaml" --tier local --nats-url "$NATS_URL" --skip-preflight
}
start_py_router() {
    running py_router || start py_router "${PY_ENV[@]}" "$PYLOOM" router \
        --config "$HERE/python/router_rules.yaml" --nats-url "$NATS_URL" --skip-preflight
}
start_py_pipeline() {
    # Through loom_cli_logfix.py: loom-ai 0.9.0's own `loom pipeline` fails every goal
    # with a structlog TypeError (see that file); only its log processors differ.
    running py_pipeline || start py_pipeline "${PY_ENV[@]}" "$PY" "$HERE/python/loom_cli_logfix.py" pipeline \
        --config "$HERE/python/pipeline.yaml" --nats-url "$NATS_URL" --skip-preflight
}
start_rs_router() {
    running rs_router || start rs_router "$LOOM" router --nats-url "$NATS_URL"
}
start_rs_text_stats() {
    running rs_text_stats || start rs_text_stats "$LOOM" processor \
        --config "$REPO/examples/docman/workers/text_stats.yaml" --nats-url "$NATS_URL"
}
start_rs_up() {
    running rs_up || start rs_up "$LOOM" up --config "$HERE/rust_mesh" --no-router \
        --compat-goals --nats-url "$NATS_URL"
}

wait_subs() {  # wait_subs SPEC... (see python/wait_subs.py)
    local pids=() n
    for n in "${!PIDS[@]}"; do pids+=(--pid "${PIDS[$n]}"); done
    echo "  waiting for subscriptions: $*"
    timeout -k 5 "$STEP_TIMEOUT" "$PY" "$HERE/python/wait_subs.py" --monitor "$MONITOR" \
        --timeout 30 "${pids[@]}" "$@"
}

client() {  # client ARGS... : the loom-ai Python client
    timeout -k 5 "$STEP_TIMEOUT" env PYTHONPATH="$HERE/python" "$PY" "$HERE/python/pyclient.py" \
        --nats-url "$NATS_URL" "$@"
}

rs_submit() {  # rs_submit OUTFILE ARGS... : Rust `loom submit`, TaskResult JSON to OUTFILE
    local out="$1" rc=0; shift
    timeout -k 5 "$STEP_TIMEOUT" "$LOOM" submit --nats-url "$NATS_URL" --timeout 20 "$@" > "$out" || rc=$?
    echo "  loom submit exit status $rc; printed:"
    sed 's/^/    /' "$out"
    return "$rc"
}

# ------------------------------------------------------------------ scenarios
# Scenario functions run in this shell (so the PIDs they start are known to the
# cleanup); errexit does not apply inside them, so each step checks its own status.

scenario_a() {
    start_py_textstats && start_rs_router || return 1
    wait_subs loom.tasks.textstats.local@processors-textstats loom.tasks.incoming@router || return 1
    rs_submit "$RUN_DIR/a.json" --worker textstats --tier local --context text="$TEXT_RS" || return 1
    "$PY" "$HERE/python/pyclient.py" check-result "$RUN_DIR/a.json" --worker textstats \
        --text "$TEXT_RS" --model-used peer-textstats-v1 || return 1
    echo "  and from the loom-ai client, checking what the Rust router forwards:"
    client --timeout 15 task --worker textstats --tier local --text "$TEXT_PY" --check-forwarded
}

scenario_c() {
    start_py_textstats && start_rs_router || return 1
    wait_subs loom.tasks.incoming@router || return 1
    client --timeout 10 deadletter --worker textstats --max-ms 2000
}

scenario_d() {
    start_py_textstats && start_rs_router && start_rs_up || return 1
    wait_subs loom.tasks.incoming@router loom.tasks.textstats.local@processors-textstats \
        loom.tasks.echo.local@processors-echo loom.goals.incoming@pipelines || return 1
    client --timeout 20 goal --pipeline interop_pipeline --stages stats,report \
        --context "$(printf '{"text": "%s", "title": "interop"}' "$TEXT_RS")" \
        --expect '{"stats.word_count": 9, "stats.char_count": 43, "report.words": 9,
                   "report.title": "interop", "report.kind": "word_report",
                   "report.reversed": "god yzal eht revo spmuj xof nworb kciuq eht"}'
}

switch_to_python_router() {
    echo "  stopping the Rust router and the Rust pipeline mesh"
    stop rs_up rs_router
    wait_subs '!loom.tasks.incoming@router' '!loom.goals.incoming@pipelines' || return 1
    start_py_router && start_rs_text_stats && start_py_textstats || return 1
}

scenario_b() {
    switch_to_python_router || return 1
    wait_subs loom.tasks.incoming@ loom.tasks.text_stats.local@processors-text_stats || return 1
    client --timeout 15 task --worker text_stats --tier local --text "$TEXT_PY" --check-forwarded
}

scenario_e() {
    switch_to_python_router || return 1
    wait_subs loom.tasks.incoming@ loom.tasks.textstats.local@processors-textstats || return 1
    rs_submit "$RUN_DIR/e.json" --worker textstats --tier local --context text="$TEXT_PY" || return 1
    "$PY" "$HERE/python/pyclient.py" check-result "$RUN_DIR/e.json" --worker textstats \
        --text "$TEXT_PY" --model-used peer-textstats-v1
}

scenario_f() {
    switch_to_python_router && start_py_pipeline || return 1
    wait_subs loom.tasks.incoming@ loom.tasks.textstats.local@processors-textstats \
        loom.tasks.text_stats.local@processors-text_stats loom.goals.incoming@pipelines || return 1
    client --timeout 20 goal --pipeline py_interop_pipeline --stages stats,restore \
        --context "$(printf '{"text": "%s"}' "$TEXT_PY")" \
        --expect "$("$PY" -c 'import json, sys; t = sys.argv[1]
print(json.dumps({"stats.reversed": t[::-1], "stats.char_count": len(t),
                  "restore.reversed": t, "restore.word_count": len(t.split())}))' "$TEXT_PY")"
}

run_scenario() {  # run_scenario ID TITLE
    local id="$1" title="$2" t out="$RUN_DIR/scenario_$1.out" rc=0
    log "scenario $id: $title"
    t=$EPOCHREALTIME
    "scenario_$id" > "$out" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        PASSED=$((PASSED + 1))
        echo "PASS $id. $title ($(since "$t") s)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $id. $title ($(since "$t") s, status $rc)"
        echo "    ---- scenario output"
        strip_ansi < "$out" | sed 's/^/    | /'
        tail_logs
    fi
}

run_scenario a "Python worker behind the Rust router (Rust loom submit -> Rust router -> Python processor)"
run_scenario c "dead letter answered: malformed task from Python, through the Rust router, gets an immediate FAILED TaskResult"
run_scenario d "Python goal to a Rust pipeline (loom up --compat-goals; stages on a Python and a Rust worker)"
run_scenario b "Rust worker behind the Python router (loom-ai client -> Python router -> Rust processor)"
run_scenario e "Rust client through the Python router (Rust loom submit -> Python router -> Python processor)"
run_scenario f "Python pipeline over a Rust worker and a Python worker (loom-ai loom pipeline)"

stop_all
if [ "$FAILED" = 0 ] && [ "${LOOM_INTEROP_KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$RUN_DIR"
else
    log "logs kept in $RUN_DIR"
fi
log "done in $(since "$T0") s"
summary
[ "$FAILED" = 0 ]
