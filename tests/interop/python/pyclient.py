"""Python side of the Loom interop test: a client that speaks to the mesh exactly as
loom-ai 0.9.0 does, and checks what comes back with loom-ai's own Pydantic models.

Messages are built with ``loom.core.messages`` and published with loom-ai's own
``loom.bus.nats_adapter.NATSBus`` (``json.dumps(model.model_dump(mode="json"))``,
the encoding every loom-ai producer uses). Answers are read with a plain nats-py
subscription so that the exact bytes on the wire are checked, three ways:

1. ``TaskResult.model_validate(json.loads(raw))``: what loom-ai consumers do (lax);
2. ``TaskResult.model_validate_json(raw, strict=True)``: no coercion at all (an int
   sent as a float or a string, an unknown enum string, a malformed datetime fail);
3. the set of keys equals the model's fields: loom-ai always emits every field, so a
   missing key (silently defaulted by Pydantic) or an unknown one (silently dropped)
   means the Rust side named something differently.

Sub-commands (each prints what it checked and exits 0 on success, 1 on a failed
check, 2 on a timeout):

  task       TaskMessage to loom.tasks.incoming, wait for its TaskResult
  deadletter a malformed task (payload not an object) to loom.tasks.incoming; expect
             an immediate FAILED TaskResult and a dead-letter envelope
  goal       OrchestratorGoal to loom.goals.incoming, wait for the final TaskResult
             on loom.results.{goal_id} (stage results on the way are checked too)
  check-result  check a TaskResult another program printed (Rust `loom submit`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

import nats
from loom.bus.nats_adapter import NATSBus
from loom.core.messages import ModelTier, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus

RESULT_KEYS = set(TaskResult.model_fields)


class CheckFailed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)
    print(f"  ok: {what}")


def parse_result(raw: bytes, where: str) -> TaskResult:
    """Parse a TaskResult from raw NATS bytes the three ways described above."""
    text = raw.decode("utf-8")
    try:
        data = json.loads(text)
        lax = TaskResult.model_validate(data)
    except Exception as e:  # noqa: BLE001 - report anything
        raise CheckFailed(f"{where}: TaskResult.model_validate failed: {e}\n  JSON: {text}") from e
    try:
        strict = TaskResult.model_validate_json(raw, strict=True)
    except Exception as e:  # noqa: BLE001
        raise CheckFailed(
            f"{where}: TaskResult.model_validate_json(strict=True) failed: {e}\n  JSON: {text}"
        ) from e
    keys = set(data)
    if keys != RESULT_KEYS:
        raise CheckFailed(
            f"{where}: keys differ from loom-ai's TaskResult: missing {sorted(RESULT_KEYS - keys)}, "
            f"unknown {sorted(keys - RESULT_KEYS)}\n  JSON: {text}"
        )
    if lax != strict:
        raise CheckFailed(f"{where}: lax and strict parses differ: {lax!r} vs {strict!r}")
    print(f"  ok: {where} parses as loom-ai TaskResult (lax, strict JSON, exact key set)")
    return strict


def check_forwarded(raw: bytes, sent: TaskMessage) -> None:
    """The router's forwarded TaskMessage: parses strictly, carries every loom-ai
    field (extra keys such as `_trace_context` are allowed), and equals what was sent."""
    text = raw.decode("utf-8")
    try:
        fwd = TaskMessage.model_validate_json(raw, strict=True)
    except Exception as e:  # noqa: BLE001
        raise CheckFailed(f"forwarded task: TaskMessage.model_validate_json(strict=True) failed: {e}\n  JSON: {text}") from e
    missing = set(TaskMessage.model_fields) - set(json.loads(text))
    if missing:
        raise CheckFailed(f"forwarded task lacks loom-ai fields {sorted(missing)}\n  JSON: {text}")
    if fwd != sent:
        diff = {k: (getattr(sent, k), getattr(fwd, k)) for k in TaskMessage.model_fields if getattr(sent, k) != getattr(fwd, k)}
        raise CheckFailed(f"forwarded task differs from the one sent (sent, forwarded): {diff}")
    print("  ok: forwarded task parses strictly as loom-ai TaskMessage, all fields present and unchanged")


async def connect(url: str) -> tuple[Any, NATSBus]:
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    bus = NATSBus(url)
    await bus.connect()
    return nc, bus


async def close(nc: Any, bus: NATSBus) -> None:
    try:
        await bus.close()
    except TypeError:
        # loom-ai 0.9.0's NATSBus disconnected callback takes an argument that
        # nats-py >= 2.10 no longer passes; the drain itself has happened by then.
        pass
    await nc.close()


async def next_raw(sub: Any, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise asyncio.TimeoutError
    msg = await sub.next_msg(timeout=remaining)
    return msg.data


async def wait_result(sub: Any, task_id: str, deadline: float) -> bytes:
    """The raw body of the first message on `sub` whose task_id is `task_id`."""
    while True:
        raw = await next_raw(sub, deadline)
        try:
            if json.loads(raw).get("task_id") == task_id:
                return raw
        except (ValueError, AttributeError):
            pass
        print(f"  (ignored a message for another task: {raw[:200]!r})")


# ---------------------------------------------------------------- task
async def cmd_task(args: argparse.Namespace) -> None:
    nc, bus = await connect(args.nats_url)
    try:
        parent = f"interop-{uuid.uuid4().hex}"
        task = TaskMessage(
            worker_type=args.worker,
            payload={"text": args.text},
            model_tier=ModelTier(args.tier),
            parent_task_id=parent,
            metadata={"sent_by": "loom-ai 0.9.0 interop client"},
        )
        sub = await nc.subscribe(f"loom.results.{parent}")
        # A plain (non-queue) subscription gets a copy of what the router forwards.
        fwd_sub = await nc.subscribe(f"loom.tasks.{args.worker}.{args.tier}") if args.check_forwarded else None
        await nc.flush()
        t0 = time.monotonic()
        await bus.publish("loom.tasks.incoming", task.model_dump(mode="json"))
        print(f"  published TaskMessage {task.task_id} (worker_type={args.worker}, tier={args.tier})")
        raw = await wait_result(sub, task.task_id, t0 + args.timeout)
        if fwd_sub is not None:
            fwd = await wait_result(fwd_sub, task.task_id, t0 + args.timeout)
            print(f"  router forwarded to loom.tasks.{args.worker}.{args.tier}: {fwd.decode()}")
            check_forwarded(fwd, task)
        ms = (time.monotonic() - t0) * 1000
        print(f"  answer after {ms:.0f} ms: {raw.decode()}")
        res = parse_result(raw, "worker result")
        check(res.status == TaskStatus.COMPLETED, f"status is completed (got {res.status!s}, error={res.error!r})")
        check(res.task_id == task.task_id, "task_id echoed")
        check(res.parent_task_id == parent, "parent_task_id echoed")
        check(res.worker_type == args.worker, f"worker_type is {args.worker}")
        expected = {
            "reversed": args.text[::-1],
            "word_count": len(args.text.split()),
            "char_count": len(args.text),
        }
        check(res.output == expected, f"output == {expected}")
        check(
            set(res.token_usage) == {"prompt_tokens", "completion_tokens"},
            "token_usage has exactly prompt_tokens and completion_tokens",
        )
    finally:
        await close(nc, bus)


# ---------------------------------------------------------------- check a printed result
async def cmd_check_result(args: argparse.Namespace) -> None:
    """Check a TaskResult another program printed (e.g. Rust `loom submit`)."""
    with open(args.file, "rb") as f:
        raw = f.read()
    res = parse_result(raw, f"result in {args.file}")
    check(res.status == TaskStatus(args.status), f"status is {args.status} (got {res.status!s}, error={res.error!r})")
    check(res.worker_type == args.worker, f"worker_type is {args.worker}")
    if args.text is not None:
        expected = {
            "reversed": args.text[::-1],
            "word_count": len(args.text.split()),
            "char_count": len(args.text),
        }
        check(res.output == expected, f"output == {expected}")
    if args.model_used is not None:
        check(res.model_used == args.model_used, f"model_used is {args.model_used!r} (got {res.model_used!r})")


# ---------------------------------------------------------------- dead letter
async def cmd_deadletter(args: argparse.Namespace) -> None:
    nc, bus = await connect(args.nats_url)
    try:
        parent = f"interop-{uuid.uuid4().hex}"
        task_id = str(uuid.uuid4())
        # A TaskMessage loom-ai itself refuses: payload must be an object.
        bad = TaskMessage(worker_type=args.worker, payload={}, parent_task_id=parent, task_id=task_id)
        body = bad.model_dump(mode="json")
        body["payload"] = "not an object"
        try:
            TaskMessage.model_validate(body)
            raise CheckFailed("loom-ai accepts the malformed task; the test message is wrong")
        except CheckFailed:
            raise
        except Exception:  # noqa: BLE001
            print("  (loom-ai's TaskMessage rejects this body too, as intended)")
        sub = await nc.subscribe(f"loom.results.{parent}")
        dl_sub = await nc.subscribe("loom.tasks.dead_letter")
        await nc.flush()
        t0 = time.monotonic()
        await bus.publish("loom.tasks.incoming", body)
        print(f"  published malformed task {task_id} (payload is a string)")
        raw = await wait_result(sub, task_id, t0 + args.timeout)
        ms = (time.monotonic() - t0) * 1000
        print(f"  answer after {ms:.0f} ms: {raw.decode()}")
        res = parse_result(raw, "dead-letter answer")
        check(res.status == TaskStatus.FAILED, f"status is failed (got {res.status!s})")
        check(res.task_id == task_id and res.parent_task_id == parent, "task_id and parent_task_id recovered")
        check(bool(res.error), f"error is set ({res.error!r})")
        check(res.output is None, "no output")
        check(ms < args.max_ms, f"answered in {ms:.0f} ms < {args.max_ms} ms (not a timeout)")
        # The dead-letter envelope (mesh spec 5.4), as loom-ai's DeadLetterConsumer reads it.
        while True:
            env = json.loads(await next_raw(dl_sub, t0 + args.timeout))
            if isinstance(env, dict) and env.get("task_id") == task_id:
                break
        print(f"  dead letter: {json.dumps(env)}")
        check(
            {"reason", "original_task", "task_id", "worker_type"} <= set(env),
            "envelope has reason, original_task, task_id, worker_type",
        )
        check(env["original_task"] == body, "original_task is the raw task, unmodified")
        check(env["worker_type"] == args.worker, "worker_type copied")
        check(str(env["reason"]).startswith("invalid_task_message"), f"reason is invalid_task_message ({env['reason'][:60]!r}...)")
    finally:
        await close(nc, bus)


# ---------------------------------------------------------------- goal
async def cmd_goal(args: argparse.Namespace) -> None:
    nc, bus = await connect(args.nats_url)
    try:
        context = json.loads(args.context)
        goal = OrchestratorGoal(instruction="interop goal from loom-ai 0.9.0", context=context)
        sub = await nc.subscribe(f"loom.results.{goal.goal_id}")
        await nc.flush()
        t0 = time.monotonic()
        # Exactly what `loom submit` (loom-ai 0.9.0) sends.
        await nc.publish("loom.goals.incoming", goal.model_dump_json().encode())
        await nc.flush()
        print(f"  published OrchestratorGoal {goal.goal_id} to loom.goals.incoming")
        stages: list[TaskResult] = []
        deadline = t0 + args.timeout
        while True:
            raw = await next_raw(sub, deadline)
            tid = json.loads(raw).get("task_id")
            if tid == goal.goal_id:
                break
            stages.append(parse_result(raw, f"stage result {len(stages) + 1}"))
            print(f"    stage result: worker_type={stages[-1].worker_type} status={stages[-1].status!s}")
        ms = (time.monotonic() - t0) * 1000
        print(f"  final result after {ms:.0f} ms: {raw.decode()}")
        res = parse_result(raw, "final goal result")
        expect = [s.strip() for s in args.stages.split(",") if s.strip()]
        check(res.status == TaskStatus.COMPLETED, f"status is completed (got {res.status!s}, error={res.error!r})")
        check(res.task_id == goal.goal_id, "task_id is the goal_id")
        check(res.parent_task_id is None, "parent_task_id is null")
        check(res.worker_type == args.pipeline, f"worker_type is the pipeline name {args.pipeline}")
        out = res.output or {}
        check(set(expect) <= set(out), f"output has stage outputs {expect}")
        timeline = out.get("_timeline")
        check(isinstance(timeline, list), "output has a _timeline list")
        check([t.get("stage") for t in timeline] == expect, f"_timeline stages in order {expect}")
        for t in timeline:
            check(
                {"stage", "started_at", "ended_at", "wall_time_ms", "processing_time_ms"} <= set(t),
                f"_timeline entry {t.get('stage')} has stage, started_at, ended_at, wall_time_ms, processing_time_ms",
            )
        check(len(stages) >= len(expect), f"{len(stages)} stage results seen on loom.results.{{goal_id}}")
        if args.expect:
            for path, want in json.loads(args.expect).items():
                got: Any = out
                for k in path.split("."):
                    got = got.get(k) if isinstance(got, dict) else None
                check(got == want, f"output.{path} == {want!r} (got {got!r})")
    finally:
        await close(nc, bus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nats-url", default="", help="required except for check-result")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for an answer")
    sp = ap.add_subparsers(dest="cmd", required=True)
    t = sp.add_parser("task")
    t.add_argument("--worker", required=True)
    t.add_argument("--tier", default="local")
    t.add_argument("--text", default="the quick brown fox")
    t.add_argument(
        "--check-forwarded",
        action="store_true",
        help="also check the TaskMessage the router forwards to loom.tasks.{worker}.{tier}",
    )
    d = sp.add_parser("deadletter")
    d.add_argument("--worker", default="text_stats")
    d.add_argument("--max-ms", type=float, default=2000.0, help="the answer must come faster than this")
    g = sp.add_parser("goal")
    g.add_argument("--pipeline", required=True, help="expected worker_type of the final result")
    g.add_argument("--stages", required=True, help="comma-separated stage names, in timeline order")
    g.add_argument("--context", default="{}", help="goal context (JSON object)")
    g.add_argument("--expect", default="", help='JSON {"dotted.path.in.output": value} to check')
    c = sp.add_parser("check-result")
    c.add_argument("file", help="a file holding one TaskResult as JSON")
    c.add_argument("--status", default="completed")
    c.add_argument("--worker", required=True)
    c.add_argument("--text", default=None, help="check the text-stats output for this input")
    c.add_argument("--model-used", default=None)
    args = ap.parse_args()
    if args.cmd != "check-result" and not args.nats_url:
        ap.error("--nats-url is required")
    fn = {"task": cmd_task, "deadletter": cmd_deadletter, "goal": cmd_goal, "check-result": cmd_check_result}[args.cmd]
    try:
        asyncio.run(asyncio.wait_for(fn(args), args.timeout + 10))
    except CheckFailed as e:
        print(f"  CHECK FAILED: {e}")
        return 1
    except (asyncio.TimeoutError, nats.errors.TimeoutError):
        print(f"  TIMEOUT: no answer within {args.timeout} s")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
