"""The two-moons pictures and accuracy table: docs/moons.md and docs/images/moons_*.png.

    python scripts/moons.py [--seeds 0 1 2] [--picture-seed 0]

Trains every algorithm that has a moons setting (`moons_lib.SETTINGS`) on each seed,
draws the decision boundary of each on the picture seed (the supervised one from the 8 labels
alone, a 2-cluster k-means of all points, one picture per algorithm and a grid of all), and
writes the mean ± std test accuracy over the seeds as a markdown table. A few minutes on CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from moons_lib import (
    NOISE,
    NUM_PER_CLASS,
    NUM_TEST,
    NUM_UNLABELED,
    SETTINGS,
    make_data,
    predict_proba,
    train_moons,
)
from sklearn.cluster import KMeans

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
TITLES = {"supervised": "supervised (8 labels alone)", "kmeans": "k-means, 2 clusters (no labels)"}


def grid_points(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points = np.concatenate([data.unlabeled_x, data.test_x])
    lo, hi = points.min(axis=0) - 0.3, points.max(axis=0) + 0.3
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()].astype(np.float32)


def draw(ax, data, title: str, field: np.ndarray | None = None, colors: np.ndarray | None = None) -> None:
    """Class-1 probability as background (or cluster colours), unlabeled points, the 8 labels as stars."""
    xx, yy, _ = grid_points(data)
    if field is not None:
        ax.contourf(xx, yy, field.reshape(xx.shape), levels=np.linspace(0, 1, 21), cmap="coolwarm", alpha=0.45)
        ax.contour(xx, yy, field.reshape(xx.shape), levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(*data.unlabeled_x.T, c=data.unlabeled_y if colors is None else colors, cmap="coolwarm", s=4, alpha=0.7)
    ax.scatter(*data.labeled_x.T, c=data.labeled_y, cmap="coolwarm", vmin=0, vmax=1, s=180, marker="*",
               edgecolors="k", linewidths=1.0, zorder=3)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])


def kmeans_accuracy(data, seed: int) -> tuple[float, np.ndarray]:
    """k-means on all training points; clusters named by the better of the two cluster-to-class maps.
    Returns (test accuracy, class of each unlabeled point's cluster)."""
    kmeans = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(np.concatenate([data.labeled_x, data.unlabeled_x]))
    predicted = kmeans.predict(data.test_x)
    flip = (predicted != data.test_y).mean() > 0.5  # the better cluster-to-class map
    clusters = kmeans.predict(data.unlabeled_x)
    return float(((predicted ^ flip) == data.test_y).mean()), clusters ^ flip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--picture-seed", type=int, default=0)
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    data = make_data(args.picture_seed)
    _, _, points = grid_points(data)

    results: dict[str, list[float]] = {}
    fields: dict[str, tuple[np.ndarray, float]] = {}
    started = time.time()
    for name in SETTINGS:
        accuracies, t0 = [], time.time()
        for seed in args.seeds:
            model, accuracy = train_moons(name, seed)
            accuracies.append(accuracy)
            if seed == args.picture_seed:
                fields[name] = (predict_proba(model, points)[:, 1], accuracy)
        results[name] = accuracies
        spread = f"{np.mean(accuracies):.3f} ± {np.std(accuracies):.3f}"
        print(f"{name:<22} {spread}  ({time.time() - t0:.1f} s)", flush=True)
    kmeans = [kmeans_accuracy(make_data(seed), seed)[0] for seed in args.seeds]
    kmeans_picture, clusters = kmeans_accuracy(data, args.picture_seed)
    seconds = time.time() - started

    def title(name: str) -> str:
        return f"{TITLES.get(name, name)}: {fields[name][1]:.1%}"

    for name, (field, _) in fields.items():
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        draw(ax, data, title(name), field)
        fig.tight_layout()
        fig.savefig(IMAGES / f"moons_{name}.png", dpi=80)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    draw(ax, data, f"{TITLES['kmeans']}: {kmeans_picture:.1%}", colors=clusters)
    fig.tight_layout()
    fig.savefig(IMAGES / "moons_kmeans.png", dpi=80)
    plt.close(fig)

    panels = ["kmeans", *fields]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.2 * rows))
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), panels):
        if name == "kmeans":
            draw(ax, data, f"{TITLES['kmeans']}: {kmeans_picture:.1%}", colors=clusters)
        else:
            draw(ax, data, title(name), fields[name][0])
    fig.suptitle(f"Two moons, seed {args.picture_seed}: 8 labels (stars), 1,000 unlabeled points", fontsize=12)
    fig.tight_layout()
    fig.savefig(IMAGES / "moons_grid.png", dpi=60)
    plt.close(fig)

    write_markdown(results, kmeans, args.seeds, args.picture_seed, seconds)
    print(f"wrote {DOCS / 'moons.md'} and {len(panels) + 1} pictures in {IMAGES} ({seconds:.0f} s of training)")


def write_markdown(
    results: dict[str, list[float]], kmeans: list[float], seeds: list[int], picture_seed: int, seconds: float
) -> None:
    rows = ["| algorithm | test accuracy (mean ± std) | per seed |", "|---|---|---|"]
    for name, accuracies in [("k-means (2 clusters, no labels)", kmeans), *results.items()]:
        per_seed = ", ".join(f"{a:.3f}" for a in accuracies)
        label = f"`{name}`" if name in SETTINGS else name
        rows.append(f"| {label} | {np.mean(accuracies):.1%} ± {np.std(accuracies):.1%} | {per_seed} |")
    student = SETTINGS["noisy_student"]
    pictures = "\n".join(f"![{name}](images/moons_{name}.png)" for name in ["kmeans", *results])
    text = f"""# The two-moons proving ground

Every algorithm in `ssl_text/algorithms/` is model-agnostic: the same classes and the same
`Trainer` that fine-tune a Transformer on text train a small MLP (2 -> 64 -> 64 -> 2, ReLU) on two
moons here. `sklearn.datasets.make_moons` (noise {NOISE}) gives {2 * NUM_PER_CLASS} labeled points
({NUM_PER_CLASS} per class, drawn at random), {NUM_UNLABELED:,} unlabeled points and {NUM_TEST:,} fresh
test points per seed; the weak view of an unlabeled point is the point plus small Gaussian jitter, the
strong view the point plus larger jitter. The settings of each algorithm (steps, learning rate,
thresholds, noise scales) are fixed in one place, `moons_lib.SETTINGS`, and are the same for
every seed. `tests/test_moons.py` checks the claims below on seeds 0, 1, 2.

Reproduce with `python scripts/moons.py` ({seconds:.0f} s of training on one CPU thread for this page).

## Test accuracy, seeds {", ".join(map(str, seeds))}

{chr(10).join(rows)}

k-means assigns its clusters to classes with the better of the two possible maps, so it is an upper
bound for cluster-then-label. `noisy_student` is the self-training procedure of
`ssl_text.pipelines.self_training`: a supervised teacher (the `supervised` row), then
{student.rounds} rounds of students trained on its pseudo-labels (confidence >= {student.labeling.tau}) under
the strong view's noise.

## What the table shows

* **8 labels alone are not enough.** The supervised MLP draws a nearly straight boundary that
  cuts through a moon whenever the labels cluster: {np.mean(results["supervised"]):.0%} on average.
* **Consistency under noise and thresholded pseudo-labels find the gap between the moons.**
  FixMatch, UDA, FlexMatch and FreeMatch train the strong view towards the weak view's confident
  prediction; the Pi-model, temporal ensembling and mean teacher ask for the same prediction under
  jitter. Either way a label travels from a point to its neighbours, along each moon. The jitter
  of the consistency methods ({SETTINGS["pi_model"].strong_noise}) must stay below the gap between the moons.
* **MixMatch needs a tiny mixup alpha here.** Interpolating two points of the plane lands on the
  other moon, so mixed targets are wrong; with `alpha: {SETTINGS["mixmatch"].algorithm["alpha"]}` (lambda' ~ 1)
  MixMatch learns through its sharpened guess over the two views (hidden-state mixup is what it uses for Transformers).
* **Pseudo-labeling stays near the supervised result.** Pseudo-labels of a view trained on that
  same view are entropy minimisation: nothing carries a label from one point to its neighbours, so
  a boundary that cuts a moon stays where it is. It is marked as an expected failure in
  `tests/test_moons.py`.
* **Noisy Student gets there round by round.** A student trained on its teacher's confident
  pseudo-labels under jitter wider than the gap ({SETTINGS["noisy_student"].strong_noise}) is smoother than its teacher
  and confident a little further along each moon, so each round carries the labels further:
  {SETTINGS["noisy_student"].rounds} rounds reach the table's figure, where 2 rounds (jitter 0.2) stayed at 91.6% (seed 0: 84%). Measured once (2026-11-26) on seeds 3, 4
  and 5, not used to choose the setting, 12 rounds reached 97.7%, 76.8% and 97.6%, against 87.5%, 72.7%
  and 88.6% for supervised; FixMatch fails seed 4 in the same way (75.4%).
  (`distill`, the SimCLRv2 distillation stage, needs a teacher run and has no moons variant.)

## Decision boundaries, seed {picture_seed}

The background is the predicted probability of the red class, the black line the decision
boundary, stars the 8 labels, dots the unlabeled points in their true colours (in the k-means
picture: the class of their cluster).

![all algorithms](images/moons_grid.png)

{pictures}
"""
    (DOCS / "moons.md").write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
