#!/usr/bin/env python3
"""Reads one conformance-suite run and judges it against tests/e2e/conformance-baseline.yml.

    conformance_report.py extract --baseline B --run RUN --out FILE
        writes the run's section of B in the suite's own --expected-failures format
        (`server: [...]`), for `conformance server --expected-failures FILE`.

    conformance_report.py judge --baseline B --run RUN --results DIR [--json OUT]
        reads every DIR/*/checks.json, prints per scenario one line

            PASS  conformance RUN: SCENARIO (S/T checks)
            XFAIL conformance RUN: SCENARIO (...; expected failure: REASON)
            FAIL  conformance RUN: SCENARIO: unexpected failure ... | stale baseline entry ...

        and exits 1 when a scenario fails that the baseline does not list (a regression),
        when a listed scenario or check now passes (a stale entry: the baseline must stay
        honest), when a baseline entry names nothing that ran, or when an entry has no reason.

Semantics follow the suite's own baseline check (0.2.0-alpha.12): an entry is a scenario
(the whole scenario is expected to fail) or `scenario:check-id` (only that check); a check
"fails" when its status is FAILURE or WARNING; SKIPPED and INFO never fail.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

FAILING = {"FAILURE", "WARNING"}
DIR_RE = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or "runs" not in data or "reasons" not in data:
        raise SystemExit(f"{path}: expected top-level keys 'reasons' and 'runs'")
    return data


def run_entries(data: dict, run: str) -> list[str]:
    runs = data["runs"] or {}
    if run not in runs:
        raise SystemExit(f"baseline has no run {run!r} (runs: {', '.join(runs)})")
    section = runs[run] or {}
    return [str(e) for e in (section.get("server") or [])]


def extract(args: argparse.Namespace) -> int:
    data = load(Path(args.baseline))
    entries = run_entries(data, args.run)
    Path(args.out).write_text(yaml.safe_dump({"server": entries}, sort_keys=False))
    return 0


def read_results(results: Path) -> dict[str, list[dict]]:
    by_scenario: dict[str, list[dict]] = {}
    for f in sorted(results.glob("*/checks.json")):
        m = DIR_RE.match(f.parent.name)
        scenario = m.group("scenario") if m else f.parent.name
        by_scenario.setdefault(scenario, []).extend(json.loads(f.read_text()))
    return by_scenario


def judge(args: argparse.Namespace) -> int:
    data = load(Path(args.baseline))
    reasons: dict[str, str] = {str(k): str(v) for k, v in (data["reasons"] or {}).items()}
    entries = run_entries(data, args.run)
    whole = {e for e in entries if ":" not in e}
    partial: dict[str, set[str]] = {}
    for e in entries:
        if ":" in e:
            scenario, check = e.split(":", 1)
            partial.setdefault(scenario, set()).add(check)

    results = read_results(Path(args.results))
    failed = 0
    report = []

    def reason_for(key: str) -> str:
        return reasons.get(key) or reasons.get(key.split(":", 1)[0]) or ""

    def short(text: str, n: int = 110) -> str:
        text = " ".join(text.split())
        return text if len(text) <= n else text[: n - 1] + "…"

    for entry in entries:
        if not reason_for(entry):
            print(f"FAIL  conformance {args.run}: baseline entry {entry!r} has no reason in 'reasons'")
            failed += 1
        scenario = entry.split(":", 1)[0]
        if scenario not in results:
            print(f"FAIL  conformance {args.run}: baseline entry {entry!r} names a scenario that did not run")
            failed += 1

    if not results:
        print(f"FAIL  conformance {args.run}: no checks.json under {args.results}")
        return 1

    for scenario, checks in sorted(results.items()):
        counts = Counter(c.get("status", "?") for c in checks)
        total = len(checks)
        ok = counts.get("SUCCESS", 0)
        summary = f"{ok}/{total} checks passed"
        extra = ", ".join(f"{counts[s]} {s.lower()}" for s in ("FAILURE", "WARNING", "SKIPPED", "INFO")
                          if counts.get(s))
        if extra:
            summary += f"; {extra}"
        failing = [c for c in checks if c.get("status") in FAILING]
        row = {"scenario": scenario, "checks": total, "success": ok,
               "failure": counts.get("FAILURE", 0), "warning": counts.get("WARNING", 0),
               "skipped": counts.get("SKIPPED", 0), "info": counts.get("INFO", 0)}

        def detail(cs: list[dict]) -> str:
            return "; ".join(f"{c.get('id')} {c.get('status')}: {(c.get('errorMessage') or '')[:200]}"
                             for c in cs)

        if scenario in whole:
            if failing:
                row["verdict"] = "expected failure"
                row["reason"] = reason_for(scenario)
                print(f"XFAIL conformance {args.run}: {scenario} ({summary}; expected failure: "
                      f"{short(reason_for(scenario))})")
            else:
                row["verdict"] = "STALE"
                failed += 1
                print(f"FAIL  conformance {args.run}: {scenario}: stale baseline entry, the scenario now "
                      f"passes ({summary}); remove it from the baseline")
        elif scenario in partial:
            listed = partial[scenario]
            unexpected = [c for c in failing if c.get("id") not in listed]
            stale = sorted(ch for ch in listed
                           if any(c.get("id") == ch for c in checks)
                           and all(c.get("status") == "SUCCESS" for c in checks if c.get("id") == ch))
            missing = sorted(ch for ch in listed if not any(c.get("id") == ch for c in checks))
            problems = []
            if unexpected:
                problems.append(f"unexpected failure: {detail(unexpected)}")
            if stale:
                problems.append(f"stale baseline entries (now pass): {', '.join(stale)}")
            if missing:
                problems.append(f"baseline names checks that did not run: {', '.join(missing)}")
            if problems:
                row["verdict"] = "FAIL"
                failed += 1
                print(f"FAIL  conformance {args.run}: {scenario} ({summary}): {' | '.join(problems)}")
            else:
                row["verdict"] = "pass except expected checks"
                row["reason"] = "; ".join(f"{ch}: {reason_for(scenario + ':' + ch)}" for ch in sorted(listed))
                print(f"XFAIL conformance {args.run}: {scenario} ({summary}; expected failing checks: "
                      f"{', '.join(sorted(listed))})")
        else:
            if failing:
                row["verdict"] = "FAIL"
                failed += 1
                print(f"FAIL  conformance {args.run}: {scenario} ({summary}): unexpected failure: "
                      f"{detail(failing)}")
            else:
                row["verdict"] = "pass"
                print(f"PASS  conformance {args.run}: {scenario} ({summary})")
        report.append(row)

    if args.json:
        Path(args.json).write_text(json.dumps({"run": args.run, "scenarios": report}, indent=2))
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--baseline", required=True)
    e.add_argument("--run", required=True)
    e.add_argument("--out", required=True)
    j = sub.add_parser("judge")
    j.add_argument("--baseline", required=True)
    j.add_argument("--run", required=True)
    j.add_argument("--results", required=True)
    j.add_argument("--json")
    args = ap.parse_args()
    return extract(args) if args.cmd == "extract" else judge(args)


if __name__ == "__main__":
    sys.exit(main())
