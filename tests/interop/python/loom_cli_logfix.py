"""The loom-ai 0.9.0 `loom` CLI, with one logging fix: used for `loom pipeline` only.

loom-ai 0.9.0's PipelineOrchestrator binds an int `level` (the stage level index) to
its logger (`log.bind(level=level_idx)`, loom/orchestrator/pipeline.py). The CLI's
structlog ConsoleRenderer (loom/cli/main.py) treats `level` as the log level name and
pads it with len(), so with the pinned structlog every goal fails at once with
"Pipeline error (TypeError): object of type 'int' has no len()" before any stage is
dispatched. This runs the same CLI entry point (`loom.cli.main:cli`) after adding a
processor that renames a non-string `level` to `stage_level`; nothing else changes.

  python loom_cli_logfix.py pipeline --config ... --nats-url ... --skip-preflight
"""

from __future__ import annotations

import sys

import structlog
from loom.cli.main import cli


def _stage_level(_logger, _name, event_dict):
    level = event_dict.get("level")
    if level is not None and not isinstance(level, str):
        event_dict["stage_level"] = event_dict.pop("level")
    return event_dict


structlog.configure(
    processors=[
        structlog.processors.TimeStamper(fmt="iso"),
        _stage_level,
        structlog.dev.ConsoleRenderer(),
    ]
)

if __name__ == "__main__":
    sys.argv[0] = "loom"
    sys.exit(cli())
