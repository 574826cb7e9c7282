"""What the benchmark scripts share: offline Hub settings, the checkout's paths, and mean ± std over seeds.

A script in scripts/ imports it by name (`python scripts/x.py` puts scripts/ on sys.path) and calls
`offline()` before it imports transformers or datasets.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # ../shared/data next to the checkout (never shipped)
RUNS = ROOT / "runs" / "benchmark"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the library and tasks/ without an install


def offline() -> None:
    """Never reach the Hub: benchmarks read ../shared/data and packaged or local models only."""
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(key, "1")


def mean_std(values: list[float]) -> str:
    """`83.1 ± 1.2` (sample std over seeds), or `83.1 (1 seed)`."""
    mean = statistics.mean(values)
    return f"{mean:.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{mean:.1f} (1 seed)"
