#!/usr/bin/env python3
"""Keyword extraction for the docman example's `keywords` subprocess worker.

Loom runs it without a shell: the task payload arrives as JSON on stdin, the
output object leaves as JSON on stdout, and a non-zero exit fails the task with
the tail of stderr. Standard library only.
"""

import json
import re
import sys
from collections import Counter

STOP_WORDS = {
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is",
    "it", "its", "of", "on", "or", "that", "the", "to", "was", "were", "will", "with",
}


def main() -> int:
    payload = json.load(sys.stdin)
    text = payload.get("text")
    if not isinstance(text, str):
        print("payload.text must be a string", file=sys.stderr)
        return 2
    top = payload.get("top", 5)
    words = [w for w in re.findall(r"[^\W\d_]+", text.lower()) if w not in STOP_WORDS]
    ranked = Counter(words).most_common(top)
    json.dump({"keywords": [{"word": w, "count": c} for w, c in ranked]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
