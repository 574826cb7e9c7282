"""Peer baselines (SetFit, logistic regression and LabelSpreading on frozen embeddings) on any config's data.

    python scripts/peers.py CONFIG [key=value overrides] [--seeds 0,1,2]
                            [--methods logistic_regression,label_spreading,setfit] [--model-path FOLDER] [--out FILE]

The data come through ssl-text's own loading and sampling (`load_config` + `load_text_data`): for each seed
the peers get exactly the labeled rows, the unlabeled pool and the test set that
`ssl-text train CONFIG data.sampling.seed=SEED` trains and tests on (the seed is set as that override;
`data.sampling.rows_from=RUN_DIR` takes the rows another run drew instead). The seed also seeds the peers.
They are scored on `data.test`; `data.validation` is not read, since the peers' settings are fixed in advance
(`peer_baselines.SETTINGS`). The encoder is `--model-path`, else the config's `model.name_or_path`
(a sentence-transformers folder such as `packaged:all-MiniLM-L6-v2`; a plain encoder gets mean pooling).
Each text is embedded once for all seeds. Prints a markdown table (mean ± population std over seeds) and
writes JSON to `--out` (default runs/peers_<config name>.json): per seed and peer accuracy, macro-F1 and
seconds, the labeled rows drawn, the summary and the settings.

AG News, the peers of docs/benchmarks.md (`python scripts/benchmark.py --peers` runs the same):

    python scripts/peers.py configs/agnews_benchmark.yaml --seeds 0,1,2 --out runs/peers_agnews.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the library without an install, as the other scripts
for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
    os.environ.setdefault(_key, "1")

import peer_baselines  # noqa: E402
from peer_baselines import PEER_NAMES, SETTINGS  # noqa: E402


class EmbeddingCache:
    """Embeds each distinct text once (`peer_baselines.embed`), however many seeds and sets it appears in."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self.vectors: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if new or not texts:
            t0 = time.perf_counter()
            emb = peer_baselines.embed(new, self.model_path)
            self.seconds += time.perf_counter() - t0
            self.vectors.update(zip(new, emb))
            if not texts:
                return emb
        return np.stack([self.vectors[t] for t in texts])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peers.py", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="YAML run config, as for `ssl-text train`")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.sampling.num_per_class=5")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated sampling seeds (default 0,1,2)")
    parser.add_argument("--methods", default=",".join(PEER_NAMES), help=f"comma-separated, from {', '.join(PEER_NAMES)}")
    parser.add_argument("--model-path", default=None, help="encoder folder (default: the config's model.name_or_path)")
    parser.add_argument("--out", default=None, help="JSON output (default runs/peers_<config name>.json)")
    args = parser.parse_intermixed_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. --seeds 0,1,2")
    if not args.seeds or any(s < 0 for s in args.seeds):
        parser.error(f"--seeds {args.seeds!r}: expected one or more integers >= 0")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in PEER_NAMES]
    if unknown or not args.methods:
        parser.error(f"--methods: unknown {unknown or args.methods!r}; choose from {', '.join(PEER_NAMES)}")
    if args.out is None:
        args.out = str(Path("runs") / f"peers_{Path(args.config).stem}.json")
    if Path(args.out).is_dir():
        parser.error(f"--out {args.out!r} is a folder; give the JSON file to write, e.g. {Path(args.out) / 'peers.json'}")
    return args


def load_split(config: str, overrides: list[str], seed: int):
    """The labeled set, pool and test set that a run of `config` with `data.sampling.seed=seed` draws."""
    from ssl_text.data.loading import DataError
    from ssl_text.data.text_data import load_text_data
    from ssl_text.training.run_config import load_config

    cfg = load_config(config, [*overrides, f"data.sampling.seed={seed}"])
    if cfg.task != "text_classification":
        raise DataError(f"{config}: task is {cfg.task!r}; the peers classify whole texts (task: text_classification).")
    if cfg.data.test is None:
        raise DataError(f"{config}: the peers are scored on `data.test`, which is not set; add a test split.")
    cfg.data.validation = None  # the peers select nothing: their settings are fixed in advance
    data = load_text_data(cfg.data)
    return cfg, data


def pool_texts(data, methods: list[str], config: str) -> list[str]:
    """The unlabeled texts (label spreading's graph), read whole; [] when no chosen peer uses them."""
    import datasets

    from ssl_text.data.loading import DataError

    if "label_spreading" not in methods:
        return []
    if data.unlabeled is None:
        return []
    if not isinstance(data.unlabeled, datasets.Dataset):
        raise DataError(
            f"{config}: `data.unlabeled.streaming` is true, but label_spreading builds its graph over the whole pool "
            "in memory; set `data.unlabeled.streaming=false` or leave label_spreading out of --methods."
        )
    return list(data.unlabeled["text"])


def summarize(per_seed: dict[str, dict], methods: list[str]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for peer in methods:
        summary[peer] = {}
        for metric in ("accuracy", "macro_f1", "seconds"):
            values = np.array([scores[peer][metric] for scores in per_seed.values()])
            summary[peer][f"{metric}_mean"] = float(values.mean())
            summary[peer][f"{metric}_std"] = float(values.std())  # population std, as docs/benchmarks.md reports
    return summary


def table(summary: dict[str, dict[str, float]], per_seed: dict[str, dict], title: str) -> str:
    lines = [title, "", "| peer | accuracy | per seed | macro-F1 | seconds / seed |", "|---|---|---|---|---|"]
    for peer, s in summary.items():
        seeds = " / ".join(f"{100 * scores[peer]['accuracy']:.2f}" for scores in per_seed.values())
        lines.append(
            f"| {peer} | {100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f} | {seeds} "
            f"| {100 * s['macro_f1_mean']:.2f} ± {100 * s['macro_f1_std']:.2f} "
            f"| {s['seconds_mean']:.1f} ± {s['seconds_std']:.1f} |"
        )
    return "\n".join(lines)


def versions() -> dict[str, object]:
    import sklearn
    import torch

    found: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__,
                                "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads()}
    for name in ("sentence_transformers", "setfit"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = None
    return found


def run(args: argparse.Namespace) -> dict:
    from ssl_text.models.resolve import resolve_model_path

    # Every seed's data first: a mistake in the config or the data stops here, before any model loads.
    splits = {seed: load_split(args.config, args.overrides, seed) for seed in args.seeds}
    cfg = splits[args.seeds[0]][0]
    model_path = resolve_model_path(args.model_path or cfg.model.name_or_path)
    if not os.path.isdir(model_path):
        raise FileNotFoundError(
            f"encoder {model_path!r} is not a folder; pass --model-path with a local sentence-transformers folder "
            "(or set model.name_or_path, e.g. packaged:all-MiniLM-L6-v2)."
        )
    embed = EmbeddingCache(model_path)
    per_seed: dict[str, dict] = {}
    drawn: dict[str, dict] = {}
    for seed, (_, data) in splits.items():
        lb_texts, lb_y = list(data.labeled["text"]), np.asarray(data.labeled["label"], dtype=np.int64)
        ulb_texts = pool_texts(data, args.methods, args.config)
        test_texts, test_y = list(data.test["text"]), np.asarray(data.test["label"], dtype=np.int64)
        uses_embeddings = bool({"logistic_regression", "label_spreading"} & set(args.methods))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = peer_baselines.run_peers(
                lb_texts, lb_y, ulb_texts, test_texts, test_y, model_path, seed,
                ulb_emb=embed(ulb_texts) if "label_spreading" in args.methods else None,
                test_emb=embed(test_texts) if uses_embeddings else None,
                methods=args.methods,
            )  # fmt: skip
        per_seed[str(seed)] = scores
        rows = data.labeled_rows  # the rows' positions in the labeled data, as RUN_DIR/labeled_rows.jsonl records them
        drawn[str(seed)] = {
            "num_labeled": len(lb_texts),
            "num_unlabeled": len(ulb_texts) if "label_spreading" in args.methods else None,
            "labeled_rows": [row.index for row in rows] if rows is not None else None,
            "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        }
        print(f"seed {seed}: " + ", ".join(f"{p} accuracy {scores[p]['accuracy']:.4f}" for p in args.methods), flush=True)

    summary = summarize(per_seed, args.methods)
    n_test = len(splits[args.seeds[0]][1].test)
    title = (f"{args.config} {' '.join(args.overrides)}".strip() + f": {drawn[str(args.seeds[0])]['num_labeled']} labeled, "
             f"test {n_test}, seeds {args.seeds} (mean ± population std)")
    markdown = table(summary, per_seed, title)
    print(markdown)
    print(f"embedding every distinct text once: {embed.seconds:.1f} s (not in the per-seed seconds)")
    return {
        "config": args.config,
        "overrides": args.overrides,
        "model_path": model_path,
        "methods": args.methods,
        "seeds": args.seeds,
        "label_names": splits[args.seeds[0]][1].label_names,
        "num_test": n_test,
        "settings": {peer: SETTINGS[peer] for peer in args.methods},
        "per_seed": per_seed,
        "drawn": drawn,
        "summary": summary,
        "table_markdown": markdown,
        "embed_seconds": embed.seconds,
        "versions": versions(),
    }


def main(argv: list[str] | None = None) -> int:
    from ssl_text.config import ConfigError
    from ssl_text.data.loading import DataError

    args = parse_args(argv)
    try:
        record = run(args)
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"peers.py: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(record, indent=2), encoding="utf-8")
    partial.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
