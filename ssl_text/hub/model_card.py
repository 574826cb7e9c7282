"""A model card (the Hub's README.md) generated from a finished run directory.

Everything in the card comes from the run: the resolved config (config.yaml), metrics.json
(written by `ssl-text train`) and the selected model's label names. The YAML front matter is built
with `huggingface_hub.ModelCardData`, evaluation results as `EvalResult`s (the `model-index`).
Every finished run writes its card as best/README.md; `ssl-text card RUN_DIR` prints it, and a push
regenerates it for the repo it names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from ssl_text.augment.registry import view_steps
from ssl_text.config import DatasetSpec, RunConfig, read_yaml
from ssl_text.config.keys import BEST, CONFIG_FILE, LABELED_ROWS_FILE, METRICS_FILE
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import RunDirError

# `packaged:<name>` models (see ssl_text/models/resolve.py) and the Hub repos they were copied from.
PACKAGED_HUB_IDS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
_DATA_EXTENSIONS = {".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow"}
_BUILDERS = {"csv", "json", "parquet", "text", "arrow", "pandas"}

METRICS = {  # metrics.json key -> (model-index metric type, readable name, metric config)
    "accuracy": ("accuracy", "accuracy", None),
    "macro_f1": ("f1", "macro F1", "macro"),
    "mcc": ("matthews_correlation", "Matthews correlation", None),
    "f1": ("f1", "entity-level micro F1", "micro"),  # NER (seqeval)
    "precision": ("precision", "entity-level micro precision", "micro"),
    "recall": ("recall", "entity-level micro recall", "micro"),
}
VIEW_USE = {"ulb_weak": "weak", "ulb_strong": "strong"}


def hub_model_id(name_or_path: str) -> str | None:
    """The Hub id of a base model: packaged models map to their source repo; local paths give None."""
    if name_or_path.startswith("packaged:"):
        return PACKAGED_HUB_IDS.get(name_or_path.split(":", 1)[1])
    return name_or_path if _looks_like_hub_id(name_or_path) else None


def hub_dataset_id(spec: DatasetSpec | None) -> str | None:
    """The Hub dataset id a data spec loads, or None for local files, folders and builder names."""
    if spec is None or spec.data_files or spec.path in _BUILDERS:
        return None
    if Path(spec.path).suffix.lower() in _DATA_EXTENSIONS:
        return None
    return spec.path if _looks_like_hub_id(spec.path) else None


def _looks_like_hub_id(name: str) -> bool:
    if not name or name.startswith((".", "/", "~")) or os.path.exists(name) or any(c in name for c in "*?[\\"):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def algorithm_description(name: str) -> str:
    """The first paragraph of the algorithm module's docstring (each algorithm file starts with one)."""
    import sys

    from ssl_text.algorithms import algorithm_class

    try:
        doc = sys.modules[algorithm_class(name).__module__].__doc__ or ""
    except Exception:
        return name
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("|", "/") or name


def missing_run_files(run_dir: Path, metrics_given: bool = False) -> list[str]:
    """What a finished run directory lacks of best/, config.yaml and metrics.json (empty when it is complete);
    `metrics_given`: the run's metrics are at hand, not yet written (the metrics file marks a run finished, so it
    comes last)."""
    wanted = (CONFIG_FILE,) if metrics_given else (CONFIG_FILE, METRICS_FILE)
    missing = [name for name in wanted if not (run_dir / name).is_file()]
    return missing + ([] if (run_dir / BEST).is_dir() else [f"{BEST}/"])


def load_run_info(run_dir: Path, metrics: dict | None = None) -> tuple[RunConfig, dict, list[str]]:
    cfg = parse_config(read_yaml(run_dir / CONFIG_FILE), str(run_dir / CONFIG_FILE))
    if metrics is None:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    labels = metrics.get("label_names")
    if not labels:
        config = json.loads((run_dir / BEST / "config.json").read_text())
        id2label = config.get("id2label", {})
        labels = [id2label[k] for k in sorted(id2label, key=int)]
    return cfg, metrics, list(labels)


def _pipeline_tag(cfg: RunConfig) -> str:
    from ssl_text.tasks import build_task

    return build_task(cfg.task).pipeline_tag


def _data_label(spec: DatasetSpec) -> str:
    hub_id = hub_dataset_id(spec)
    if hub_id:
        extra = "".join(f", {k} `{v}`" for k, v in (("config", spec.name), ("revision", spec.revision)) if v)
        return f"[{hub_id}](https://huggingface.co/datasets/{hub_id}) (split `{spec.split}`{extra})"
    return f"local file `{Path(spec.path).name}`" if not spec.data_files else "local files " + ", ".join(
        f"`{Path(f).name}`" for f in spec.data_files
    )


def _eval_results(cfg: RunConfig, metrics: dict, task_type: str) -> list[EvalResult]:
    results = []
    for role in ("validation", "test"):
        values, spec = metrics.get(role), getattr(cfg.data, role)
        if not values or spec is None:
            continue
        hub_id = hub_dataset_id(spec)
        for key, value in values.items():
            if key not in METRICS or not isinstance(value, (int, float)):
                continue
            metric_type, readable, metric_config = METRICS[key]
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_type.replace("-", " ").capitalize(),
                    dataset_type=hub_id or Path(spec.path).name,
                    dataset_name=hub_id or f"{Path(spec.path).name} (local {role} file)",
                    dataset_config=spec.name if hub_id else None,
                    dataset_split=spec.split if hub_id else role,
                    dataset_revision=spec.revision if hub_id else None,
                    metric_type=metric_type,
                    metric_value=round(float(value), 4),
                    metric_name=f"{role.capitalize()} {readable}"
                    + (" (model selection)" if role == "validation" else ""),
                    metric_config=metric_config,
                )
            )
    return results


def build_card_data(cfg: RunConfig, metrics: dict, repo_id: str) -> ModelCardData:
    task_type = _pipeline_tag(cfg)
    datasets = []
    for role in ("labeled", "unlabeled", "validation", "test"):
        hub_id = hub_dataset_id(getattr(cfg.data, role))
        if hub_id and hub_id not in datasets:
            datasets.append(hub_id)
    eval_results = _eval_results(cfg, metrics, task_type)
    return ModelCardData(
        library_name="transformers",
        pipeline_tag=task_type,
        base_model=hub_model_id(cfg.model.name_or_path),
        datasets=datasets or None,
        tags=["ssl-text", "semi-supervised", cfg.algorithm.name],
        metrics=sorted({METRICS[k][0] for r in ("validation", "test") for k in (metrics.get(r) or {}) if k in METRICS})
        or None,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _usage(task_type: str, model: str, run_dir: Path, local: bool = False, max_length: int | None = None) -> str:
    """How to load the model (`model`: a Hub id, or with `local` the folder of this card as seen from the run's
    parent): a `transformers.pipeline` call, or ssl-text for projection-head classifiers."""
    from ssl_text.models.projection import is_projection_classifier

    where = (
        f"From the folder that holds the run (`{model}` is this card's folder; once pushed, use the Hub id):\n\n"
        if local
        else ""
    )
    cut = f"  # longer texts are cut to {max_length} tokens, as in training" if max_length else ""
    if is_projection_classifier(run_dir / BEST):
        folder = f'"{model}"' if local else f'snapshot_download("{model}")'
        download = "" if local else "from huggingface_hub import snapshot_download\n"
        return f"""This classifier sits on a layer of a SimCLRv2 projection head (`model.projection_head_layers` > 0),
which `transformers` has no class for; load it with ssl-text.

{where}```python
{download}from ssl_text.models.projection import load_projection_classifier

model = load_projection_classifier({folder})
```"""
    if task_type == "token-classification":
        return f"""{where}```python
from transformers import pipeline

ner = pipeline("token-classification", model="{model}", aggregation_strategy="simple")
ner("Put the sentence to tag here.")
```"""
    if has_mean_pooling_head(run_dir / BEST):
        return f"""This classifier reads the encoder's mean-pooled sentence embedding (`model.pooling: mean`), which no
`transformers` class does, so the folder carries its 40-line model class (`mean_pooling.py`) and loads with
`trust_remote_code=True`:

{where}```python
from transformers import pipeline

classify = pipeline("{task_type}", model="{model}", truncation=True, trust_remote_code=True){cut}
classify("Put the text to classify here.")
```"""
    return f"""{where}```python
from transformers import pipeline

classify = pipeline("{task_type}", model="{model}", truncation=True){cut}
classify("Put the text to classify here.")
```"""


def has_mean_pooling_head(folder: Path) -> bool:
    from ssl_text.models.mean_pooling import ARCHITECTURE

    config = folder / "config.json"
    return config.is_file() and ARCHITECTURE in (json.loads(config.read_text()).get("architectures") or [])


def _card_body(
    cfg: RunConfig, metrics: dict, labels: list[str], repo_id: str, task_type: str, run_dir: Path, local: bool = False
) -> str:
    """The card's text; `repo_id` names the model (and is what it loads from, unless `local`: then its best/ folder)."""
    from ssl_text.algorithms import algorithm_class

    algo = cfg.algorithm
    t = cfg.trainer
    base = hub_model_id(cfg.model.name_or_path)
    local_name = Path(cfg.model.name_or_path.rstrip("/\\")).name  # never publish the training machine's paths
    base_text = f"[{base}](https://huggingface.co/{base})" if base else f"`{local_name}` (a local model)"
    hparams = {f.name: getattr(algo, f.name) for f in dataclasses.fields(algo) if f.name != "name"}
    hparam_text = ", ".join(f"`{k}` = {_fmt(v)}" for k, v in hparams.items()) or "none"
    num_labeled, num_unlabeled = metrics.get("num_labeled", "?"), metrics.get("num_unlabeled", 0)
    sampling = cfg.data.sampling
    drawn = (
        f"{sampling.num_per_class} per class drawn with seed {sampling.seed}" if sampling.num_per_class is not None
        else f"{sampling.num_examples} drawn at random with seed {sampling.seed}" if sampling.num_examples is not None
        else f"{100 * sampling.fraction_per_class:g}% of each class drawn with seed {sampling.seed}"
        if sampling.fraction_per_class is not None
        else f"the rows another run drew, listed in its `{LABELED_ROWS_FILE}`" if sampling.rows_from is not None
        else None
    )
    sampled = (
        f" ({drawn}"
        + ("; the rest of the labeled file, labels removed, joined the unlabeled pool" if sampling.rest_as_unlabeled else "")
        + ")"
        if drawn
        else ""
    )
    select_metric = metrics.get("select_metric", t.select_metric)
    selected = (
        f"best validation `{select_metric}`, at step {metrics.get('selected_step')} of {t.max_steps}"
        if metrics.get("selected_on") == "validation"
        else f"the model after the last step ({t.max_steps}); no validation split"
    )

    # Augmentations: only the views the algorithm reads.
    views_used = [VIEW_USE[v] for v in algorithm_class(algo.name).views if v in VIEW_USE]
    if views_used:
        rows = []
        for view in views_used:
            steps = view_steps(getattr(cfg.views, view), f"views.{view}")
            rows.append(f"| {view} | {' then '.join(f'`{s}`' for s in steps) or 'none (the original text)'} |")
        views_text = (
            "Unlabeled text is seen through these views: each applies its augmentation operations in order, with "
            "fresh random draws for every batch (`back_translation` draws one precomputed paraphrase column per "
            "example; ssl_text/augment/registry.py lists every operation).\n\n"
            "| view | augmentation operations |\n|---|---|\n" + "\n".join(rows)
        )
    else:
        views_text = "None: this algorithm trains on the labeled text only, without augmentation."

    # Evaluation table.
    eval_rows = []
    for role in ("validation", "test"):
        values, spec = metrics.get(role), getattr(cfg.data, role)
        if not values or spec is None:
            continue
        name = "validation (used for model selection)" if role == "validation" else "test (held out)"
        cells = " | ".join(_fmt(values[k]) if k in values else "–" for k in METRICS)
        eval_rows.append(f"| {name} | {_data_label(spec)} | {cells} |")
    if eval_rows:
        eval_text = (
            "| split | data | " + " | ".join(readable for _, readable, _ in METRICS.values()) + " |\n"
            "|---|---|" + "---|" * len(METRICS) + "\n" + "\n".join(eval_rows)
        )
        if metrics.get("validation"):
            eval_text += (
                "\n\nThe validation split chose the checkpoint, so its figures are optimistic; the test split "
                "was not seen during training or selection."
            )
    else:
        eval_text = "The run had no validation or test split, so there are no evaluation figures."

    data_rows = [
        f"| {role} | {_data_label(spec)} |"
        for role in ("labeled", "unlabeled", "validation", "test")
        if (spec := getattr(cfg.data, role)) is not None
    ]
    if cfg.data.unlabeled is None and sampling.rest_as_unlabeled and sampling.draws():
        data_rows.insert(1, "| unlabeled | the labeled file's remaining rows, labels removed |")

    plots = run_dir / "plots"
    plot_text = ""
    if plots.is_dir():
        images = [p.name for p in sorted(plots.glob("*.png"))]
        if images:
            plot_text = "\n## Plots\n\n" + "\n\n".join(f"![{Path(n).stem.replace('_', ' ')}](plots/{n})" for n in images) + "\n"

    seconds = metrics.get("train_seconds")
    if not isinstance(seconds, (int, float)):
        time_text = "unknown"
    else:
        time_text = f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"
    ema_row = ""
    if t.ema_decay is not None:
        ema_row = f"| EMA of the weights | decay {t.ema_decay:g}" + ("; the EMA weights were evaluated and saved" if t.evaluate_ema else "") + " |\n"
    layer_decay_text = f", layer-wise learning-rate decay {t.layer_decay:g}" if t.layer_decay is not None else ""
    label_text = ", ".join(f"`{i}`: {name}" for i, name in enumerate(labels))
    return f"""
# {repo_id.split('/')[-1]}

A {task_type.replace('-', ' ')} model fine-tuned from {base_text} with **{algo.name}** semi-supervised learning
by ssl-text on {num_labeled} labeled and {num_unlabeled} unlabeled examples.

Labels: {label_text}.

## Use it

{_usage(task_type, f"{repo_id}/{BEST}" if local else repo_id, run_dir, local, cfg.data.max_length)}

## Training

| | |
|---|---|
| base model | {base_text} |
| task | {cfg.task} (`{task_type}`) |
| algorithm | `{algo.name}`: {algorithm_description(algo.name)} |
| algorithm hyperparameters | {hparam_text} |
| labeled examples | {num_labeled}{sampled} |
| unlabeled examples | {num_unlabeled} |
| steps | {t.max_steps}; labeled batch {t.lb_batch_size}, unlabeled batch {t.lb_batch_size * t.mu} (mu {t.mu}) |
| optimizer | AdamW, learning rate {t.learning_rate:g} ({t.lr_schedule}, warmup ratio {t.warmup_ratio:g}), weight decay {t.weight_decay:g}{layer_decay_text} |
{ema_row}| max sequence length | {cfg.data.max_length} tokens |
| selected model | {selected} |
| seed | {t.seed} |
| training time | {time_text} |
| hardware | {metrics.get('hardware', 'unknown')} |

### Augmentations

{views_text}

### Data

| role | source |
|---|---|
{chr(10).join(data_rows)}

## Evaluation

{eval_text}
{plot_text}
## Files

`training_config.yaml` is the complete resolved ssl-text config of this run (`ssl-text train
training_config.yaml` repeats it where the data paths in it exist); `metrics.json` holds the
validation history, the selected step, the test metrics, the confusion matrix, the numbers of
labeled and unlabeled examples, timings and hardware.
"""


def build_model_card(run_dir: str | Path, repo_id: str | None = None, metrics: dict | None = None) -> ModelCard:
    """The model card of a finished run. With `repo_id` (a push) it names and loads that Hub repo; without it (the
    card in best/, `ssl-text card`) it names the config's `hub.repo_id` when that has a namespace, else the run
    directory, loaded from its best/ folder. `metrics`: the run's, before its metrics file is written."""
    run_dir = Path(run_dir)
    missing = missing_run_files(run_dir, metrics_given=metrics is not None)
    if missing:
        raise RunDirError(
            f"{run_dir} is not a finished ssl-text run (expected {BEST}/, {CONFIG_FILE} and {METRICS_FILE}; missing: "
            f"{missing}); pass the output_dir of a completed run."
        )
    cfg, metrics, labels = load_run_info(run_dir, metrics)
    configured = cfg.hub.repo_id if cfg.hub.repo_id and "/" in cfg.hub.repo_id else None
    local = not (repo_id or configured)
    repo_id = repo_id or configured or run_dir.resolve().name
    data = build_card_data(cfg, metrics, repo_id)
    body = _card_body(cfg, metrics, labels, repo_id, data.pipeline_tag, run_dir, local)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
