"""PNG plots of a run, written to RUN_DIR/plots/ at the end of training.

  training_curves.png    loss parts, mask rate, pseudo-label accuracy, learning rate and the
                         validation metrics, read back from the TensorBoard event files in RUN_DIR/logs
                         (falling back to metrics.json's validation history when there are none)
  confusion_matrix.png   the selected model on the test split (validation when there is no test
                         split), from metrics.json's `confusion_matrix`
  entity_f1.png          NER runs: F1 per entity type on the test split (validation when there is none)

matplotlib draws through its Agg canvas directly: no pyplot, no global backend switch, no display.
`write_run_plots(run_dir)` only reads the run directory, so it also redraws the plots of an old run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import sklearn.metrics

from ssl_text.config.keys import METRICS_FILE, PLOTS_DIR

CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
ENTITY_F1_FILE = "entity_f1.png"


def confusion_matrix(predictions, references, num_classes: int) -> list[list[int]]:
    """Counts [true class][predicted class], every class a row and a column even when it never occurs."""
    labels = list(range(num_classes))
    return sklearn.metrics.confusion_matrix(references, predictions, labels=labels).astype(int).tolist()


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the TensorBoard event files directly under `log_dir`: tag -> [(step, value)].

    A resumed run logs some steps twice (once before the stop, once after); the later value wins.
    """
    if not log_dir.is_dir() or not any(log_dir.glob("events.out.tfevents*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})  # 0 = keep every point
    acc.Reload()
    series = {}
    for tag in acc.Tags().get("scalars", []):
        by_step: dict[int, tuple[float, float]] = {}
        for event in acc.Scalars(tag):
            if event.step not in by_step or event.wall_time >= by_step[event.step][0]:
                by_step[event.step] = (event.wall_time, float(event.value))
        series[tag] = [(step, by_step[step][1]) for step in sorted(by_step)]
    return series


def _panels(scalars: dict[str, list], metrics: dict) -> list[tuple[str, dict[str, list], str | None]]:
    """(title, {legend: points}, y label) for each panel that has data."""
    train = {tag.split("/", 1)[1]: pts for tag, pts in scalars.items() if tag.startswith("train/")}
    validation = {tag.split("/", 1)[1]: pts for tag, pts in scalars.items() if tag.startswith("validation/")}
    if not validation and metrics.get("validation_history"):
        history = metrics["validation_history"]
        keys = [k for k in history[0] if k != "step" and isinstance(history[0][k], (int, float))]
        validation = {k: [(h["step"], h[k]) for h in history if k in h] for k in keys}
    panels = []
    losses = {k: v for k, v in train.items() if k == "loss" or k.startswith("loss_")}
    if losses:
        panels.append(("training loss", losses, "loss"))
    if "mask_rate" in train:
        panels.append(("mask rate (share of unlabeled texts above the threshold)", {"mask_rate": train["mask_rate"]}, None))
    accuracy = {k: train[k] for k in ("pseudo_label_accuracy", "masked_pseudo_label_accuracy") if k in train}
    if accuracy:
        panels.append(("pseudo-label accuracy (against the pool's held-back labels)", accuracy, None))
    if "lr" in train:
        panels.append(("learning rate", {"lr": train["lr"]}, None))
    if validation:
        panels.append(("validation metrics", validation, None))
    return panels


def plot_training_curves(scalars: dict[str, list], metrics: dict, path: Path) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(scalars, metrics)
    if not panels:
        return None
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(6.0 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    selected = metrics.get("selected_step") if metrics.get("selected_on") == "validation" else None
    last_step = max(step for _, series, _ in panels for points in series.values() for step, _ in points)
    for i, (title, series, ylabel) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name, points in sorted(series.items(), key=lambda item: item[0] == "loss"):  # the total on top
            steps, values = zip(*points)
            style = {"color": "black", "linestyle": "--", "linewidth": 1.2} if name == "loss" else {}
            ax.plot(steps, values, marker="o" if len(points) <= 12 else None, markersize=3, label=name, **style)
        ax.set_xlim(0, last_step * 1.03 + 0.5)  # every panel on the same step axis
        if title.startswith("validation") and selected is not None:
            ax.axvline(selected, color="grey", linestyle="--", linewidth=1, label=f"selected (step {selected})")
        if title.startswith(("mask rate", "pseudo-label")):  # shares: always on the same 0..1 scale
            ax.set_ylim(-0.03, 1.03)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1 or title.startswith("validation"):
            ax.legend(fontsize=8)
    name = metrics.get("algorithm", "")
    fig.suptitle(f"{name} training curves".strip(), fontsize=12)
    fig.savefig(path, dpi=110)
    return path


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = min(max(4.0, 0.6 * n + 2.5), 16.0)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(n), labels=labels, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, f"{counts[i, j]}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=8, color=color)
    ax.set_title(title, fontsize=11)
    fig.savefig(path, dpi=110)
    return path


def write_run_plots(run_dir: str | Path, metrics: dict | None = None) -> list[Path]:
    """Draw the plots of a finished run into RUN_DIR/plots/; returns the files written. `metrics`: the run's,
    before its metrics file is written (that file marks the run finished, so it comes last); default: that file."""
    run_dir = Path(run_dir)
    if metrics is None:
        metrics_path = run_dir / METRICS_FILE
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    out = run_dir / PLOTS_DIR
    out.mkdir(exist_ok=True)
    written = []
    curves = plot_training_curves(read_scalars(run_dir / "logs"), metrics, out / CURVES_FILE)
    if curves is not None:
        written.append(curves)
    cm = metrics.get("confusion_matrix")
    if cm and cm.get("matrix"):
        total = sum(map(sum, cm["matrix"]))
        correct = sum(cm["matrix"][i][i] for i in range(len(cm["matrix"])))
        title = f"confusion matrix on {cm['split']} ({total} examples, accuracy {correct / max(total, 1):.1%})"
        written.append(plot_confusion_matrix(cm["matrix"], cm["labels"], title, out / CONFUSION_FILE))
    scores = per_entity_f1(metrics)
    if scores:
        written.append(plot_entity_f1(scores, metrics, out / ENTITY_F1_FILE))
    return written


def per_entity_f1(metrics: dict) -> dict[str, float]:
    """NER runs: entity type -> F1 on the test split (validation when there is none); empty otherwise."""
    split = metrics.get("test") or metrics.get("validation") or {}
    return {k[: -len("_f1")]: v for k, v in split.items() if k.endswith("_f1") and k not in ("macro_f1",)}


def plot_entity_f1(scores: dict[str, float], metrics: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    split = "test" if metrics.get("test") else "validation"
    overall = (metrics.get(split) or {}).get("f1")
    fig = Figure(figsize=(1.2 * len(scores) + 2, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = sorted(scores)
    bars = ax.bar(names, [scores[n] for n in names], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{scores[n]:.2f}" for n in names], fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("entity F1")
    ax.set_title(f"per-entity F1 on {split}" + (f" (micro F1 {overall:.3f})" if overall is not None else ""), fontsize=11)
    fig.savefig(path, dpi=110)
    return path
