"""`python -m tests.counted_teacher_cli ARGS`: the `ssl-text` CLI with its teacher passes logged and slowed.

Each teacher forward pass (`PoolTeacher.logits`: one distillation shard, one self-training pool) appends a line to the
file named by $TEACHER_PASS_LOG and then sleeps $TEACHER_PASS_SECONDS (default 0) before its
result is used. A crash test counts the passes across processes (nothing written before a kill
is computed again) and, by waiting for a line, SIGKILLs a run while its teacher is labelling.
"""

from __future__ import annotations

import os
import sys
import time

from ssl_text.cli.main import main
from ssl_text.pipelines.unlabeled_pool import PoolTeacher


def logged(real):
    def teacher_pass(teacher, rows):
        out = real(teacher, rows)
        kind = "pool" if len(rows) == len(teacher.pool) else "shard"  # self-training labels the whole pool at once
        with open(os.environ["TEACHER_PASS_LOG"], "a") as log:
            log.write(f"{kind} {len(out)}\n")
        time.sleep(float(os.environ.get("TEACHER_PASS_SECONDS", "0")))
        return out

    return teacher_pass


if __name__ == "__main__":
    PoolTeacher.logits = logged(PoolTeacher.logits)
    sys.exit(main(sys.argv[1:]))
