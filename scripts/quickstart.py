"""Quickstart: the recommended recipe against supervised fine-tuning on the shipped AG News sample, seeds 0, 1, 2.

    python scripts/quickstart.py [key=value overrides applied to every run]

Every run uses configs/quickstart.yaml (40 labels drawn per seed, ~960 unlabeled texts, the packaged
all-MiniLM-L6-v2) with `data.sampling.seed` and `trainer.seed` set to the seed: `ssl-text train` with the
`supervised` algorithm, and `ssl-text recipe` (ssl_text/pipelines/recipe.py). The runs go to
runs/quickstart/seed_<s>/<arm>, as many at a time as there are CPU cores (each on one torch thread,
`trainer.num_threads=1`), in bf16 on a CPU with bf16 instructions (pass `trainer.mixed_precision=auto` to turn that
off). Prints
both arms' test accuracy per seed and writes runs/quickstart/summary.json:
`{"seeds": [...], "test_accuracy": {"supervised": [...], "recipe": [...]}, ...}`, the last step's model
(no validation needed), with the validation-selected figures beside it.
"""

import json
import multiprocessing
import os
import resource
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "quickstart.yaml")
OUT = Path("runs/quickstart")
SEEDS = (0, 1, 2)
ARMS = ("supervised", "recipe")
STOPPING = None  # in a worker process: the main process's event, set once the quickstart is stopping


def cpu_seconds() -> float:
    """CPU time of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def precision() -> str:
    """bf16 on a CPU with bf16 instructions (AVX512-BF16 or AMX; a training step is 1.6x faster than in fp32 there,
    and slower without them), else the config's own `auto`; as on GPUs, where `auto` is bf16 where supported. The
    recipe's warm start stays in fp32 either way (ssl_text/pipelines/recipe.py says why)."""
    import torch

    if torch.cuda.is_available():
        return "auto"
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16" if any(probe() for probe in probes if probe is not None) else "auto"


def run_arm(arm: str, seed: int, overrides: list[str]) -> dict:
    """One run in this (worker) process; its metrics, with the precision it trained in."""
    if STOPPING is not None and STOPPING.is_set():  # a job queued before the quickstart was stopped
        raise RuntimeError(f"not started: the quickstart is stopping ({arm}, seed {seed})")
    import datasets
    import transformers

    from ssl_text.training.run_config import load_config

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    cpu_before = cpu_seconds()
    extra = [f"output_dir={OUT / f'seed_{seed}' / arm}", f"data.sampling.seed={seed}", f"trainer.seed={seed}",
             "trainer.num_threads=1",  # one run per core
             f"trainer.mixed_precision={precision()}",
             "trainer.progress_bar=false"]  # runs in parallel: one line per finished run instead of interleaved bars
    if arm == "supervised":
        from ssl_text.pipelines.train import train

        cfg = load_config(CONFIG, [*extra, "algorithm={name: supervised}", *overrides])
        metrics = train(cfg, overwrite=True)
    else:
        from ssl_text.pipelines.recipe import recipe

        cfg = load_config(CONFIG, [*extra, *overrides])
        metrics = recipe(cfg, overwrite=True)
    metrics["cpu_seconds"] = cpu_seconds() - cpu_before
    metrics["mixed_precision"] = cfg.trainer.mixed_precision  # the script's choice or an override of the user's
    print(f"== seed {seed} {arm}: test accuracy {metrics['test_last_step']['accuracy']:.3f} (last step), "
          f"{metrics['total_seconds'] / 60:.1f} min", flush=True)
    return metrics


def init_worker(stopping) -> None:
    """A worker dies on SIGTERM (a training run saves its checkpoint first), instead of inheriting main's handler,
    and starts no queued run once `stopping` is set: a training run that caught SIGTERM returns, and its worker would
    otherwise take the next job the pool had already queued."""
    global STOPPING
    STOPPING = stopping
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(overrides: list[str]) -> None:
    from ssl_text.training.trainer import available_cpus

    started = time.time()
    jobs = [(arm, seed) for arm in reversed(ARMS) for seed in SEEDS]  # the long recipe runs first: the wall is shorter
    workers = max(1, min(available_cpus(), len(jobs)))
    stopping = multiprocessing.Event()
    pool = ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(stopping,))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # SIGTERM unwinds through `except`
    try:
        futures = {job: pool.submit(run_arm, *job, overrides) for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    except BaseException:  # stopped or failed: no run starts, the running ones stop as on their own SIGTERM
        stopping.set()
        processes = list((pool._processes or {}).values())  # public terminate_workers() is Python 3.14+
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True)

    def figures(key: str, metric: str = "accuracy") -> dict:
        return {arm: [round(results[arm, seed][key][metric], 4) for seed in SEEDS] for arm in ARMS}

    summary = {
        "seeds": list(SEEDS),
        "test_accuracy": figures("test_last_step"),
        "test_macro_f1": figures("test_last_step", "macro_f1"),
        "test_accuracy_validation_selected": figures("test"),
        "minutes": {arm: [round(results[arm, seed]["total_seconds"] / 60, 1) for seed in SEEDS] for arm in ARMS},
        "cpu_minutes": {arm: [round(results[arm, seed]["cpu_seconds"] / 60, 2) for seed in SEEDS] for arm in ARMS},
        "wall_minutes_total": round((time.time() - started) / 60, 1),
        "mixed_precision": results[ARMS[0], SEEDS[0]]["mixed_precision"],  # every run gets the same overrides
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    print()
    print(f"{'arm':<12} " + " ".join(f"{'seed ' + str(s):>8}" for s in SEEDS) + f" {'mean':>8}")
    for arm in ARMS:
        values = summary["test_accuracy"][arm]
        print(f"{arm:<12} " + " ".join(f"{v:>8.3f}" for v in values) + f" {sum(values) / len(values):>8.3f}")
    wins = sum(r > s for r, s in zip(summary["test_accuracy"]["recipe"], summary["test_accuracy"]["supervised"]))
    print(f"\nrecipe above supervised on {wins} of {len(SEEDS)} seeds (test accuracy of the last step; "
          f"validation-selected figures in {OUT / 'summary.json'})")
    cpu = sum(sum(v) for v in summary["cpu_minutes"].values())
    print(f"{summary['wall_minutes_total']:.1f} minutes wall; the runs used {cpu:.1f} CPU minutes on {workers} "
          f"worker processes (trainer.mixed_precision={summary['mixed_precision']})")
    print(f"models: {OUT}/seed_<s>/supervised/best and {OUT}/seed_<s>/recipe/student/best "
          "(transformers.pipeline('text-classification', model=..., trust_remote_code=True))")


if __name__ == "__main__":
    main(sys.argv[1:])
