"""Wait until nats-server reports the subscriptions a test step needs (stdlib only).

Readiness is read from the server, not from process logs: a component is ready when
its subscription is registered, whatever language it is written in.

  wait_subs.py --monitor http://127.0.0.1:8222 --timeout 20 [--pid PID ...] SPEC ...

SPEC is `SUBJECT[@QUEUE_GROUP]`: some subscription that a message published to SUBJECT
would reach (wildcards in the subscription are honoured), in that queue group when one
is given (`@` alone: no queue group). A leading `!` means no such subscription may
exist (e.g. a stopped component is gone). Exits 0 when every SPEC holds, 1 when a
--pid has exited, 2 on timeout; prints what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request


def matches(sub: str, subject: str) -> bool:
    s, t = sub.split("."), subject.split(".")
    for i, tok in enumerate(s):
        if tok == ">":
            return len(t) > i
        if i >= len(t) or (tok != "*" and tok != t[i]):
            return False
    return len(s) == len(t)


def holds(spec: str, subs: list[dict]) -> bool:
    negate = spec.startswith("!")
    spec = spec.lstrip("!")
    subject, _, group = spec.partition("@")
    want_group = "@" in spec
    found = any(
        s.get("account") == "$G"
        and matches(s.get("subject", ""), subject)
        and (not want_group or s.get("qgroup", "") == group)
        for s in subs
    )
    return found != negate


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by the shell) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitor", required=True)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--pid", type=int, action="append", default=[])
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    url = a.monitor.rstrip("/") + "/subsz?subs=1&limit=100000"
    missing = list(a.specs)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                subs = json.load(r).get("subscriptions_list") or []
            missing = [s for s in a.specs if not holds(s, subs)]
            if not missing:
                return 0
        except OSError as e:
            missing = [f"(monitor unreachable: {e})"]
        dead = [p for p in a.pid if not alive(p)]
        if dead:
            print(f"process(es) {dead} exited; still missing: {missing}")
            return 1
        if time.monotonic() > deadline:
            print(f"timed out after {a.timeout} s; still missing: {missing}")
            return 2
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
