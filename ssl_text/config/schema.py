"""Typed run configuration, loaded strictly from YAML with dotted command-line overrides.

A config file maps onto the `RunConfig` dataclass tree. Every key must exist in the
dataclass, every value must have the declared type, and every field without a default
must be given; otherwise `ConfigError` names the key and the file. The `algorithm`
section is parsed by the chosen algorithm's own config dataclass, so `algorithm.tau`
is only valid for algorithms that have a threshold.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from ssl_text.config.keys import LABELED_ROWS_FILE


class ConfigError(ValueError):
    """A config value is unknown, missing or of the wrong type."""


# ---------------------------------------------------------------------------------------
# The config tree
# ---------------------------------------------------------------------------------------


# How a data spec is read (`DatasetSpec.format`; ssl_text/data/loading.py). `text`: one row per line;
# `conll`: `word ... tag` lines (task: ner); `save_to_disk`: a folder written by `Dataset.save_to_disk`; `hub`: a Hub id.
DataFormat = Literal["csv", "tsv", "json", "jsonl", "parquet", "text", "arrow", "conll", "fasta", "save_to_disk", "hub"]


@dataclass
class DatasetSpec:
    """Where one data slot comes from: a Hub dataset or local files, plus column mapping.

    `path` is a Hub dataset id (`ag_news`), a local file, a glob, a folder written by
    `Dataset.save_to_disk`, or a `datasets` builder name (`csv`, `json`, `parquet`) used
    together with `data_files`. `format` says how to read it; by default the file suffix
    tells (`.csv`, `.tsv`, `.json`, `.jsonl`, `.parquet`, `.txt`, `.arrow`, FASTA's `.fa`...,
    CoNLL's `.conll`... for `task: ner`), a save_to_disk folder or else a Hub id.
    """

    path: str
    format: DataFormat | None = None  # None: inferred as above; set it for a file named otherwise (`x.annotated`)
    name: str | None = None
    split: str = "train"
    revision: str | None = None
    data_files: list[str] | None = None
    column_names: list[str] | None = None  # for header-less CSV/TSV files
    text_columns: list[str] = field(default_factory=lambda: ["text"])
    label_column: str | None = "label"
    text_separator: str = " "
    clean_text: bool = False  # unescape HTML entities, literal backslashes become spaces
    streaming: bool = False  # data.unlabeled only: read lazily, never whole (ssl_text/data/streamed.py)
    shuffle_buffer: int = 10_000  # streaming: rows held to shuffle the stream (memory vs. shuffle quality)
    limit: int | None = None  # keep only the first `limit` rows
    # FASTA files (.fa/.fasta/.faa, see ssl_text/data/fasta.py): the class comes from the header or the file
    fasta_label_regex: str | None = None  # e.g. DeepLoc '^\S+ (?P<label>\S+)-[MSU]\b'
    file_labels: dict[str, str] | None = None  # file path, name or glob -> class, e.g. {AMP.tr.fa: AMP}
    exclude_labels: list[str] | None = None  # drop rows with these raw labels (e.g. [Cytoplasm-Nucleus])
    # Token classification (`task: ner`, tasks/ner_data.py): word lists and their tags
    tokens_column: str = "tokens"  # Hub/JSON/Parquet rows: one list of words per sentence
    tags_column: str = "ner_tags"  # one tag per word (class names, or ids of a ClassLabel feature)
    conll_tag_field: int = -1  # CoNLL files (.txt/.conll/.iob): the whitespace field that holds the tag


@dataclass
class SamplingConfig:
    """Benchmark protocol: draw a few labels per class from the labeled spec."""

    num_per_class: int | None = None  # None keeps every labeled row
    num_examples: int | None = None  # instead: this many labeled rows drawn at random (NER sentences)
    fraction_per_class: float | None = None  # instead: this share of each class (stratified, >= 1 row each)
    seed: int = 0
    rest_as_unlabeled: bool = False  # the rows not drawn join the unlabeled pool, labels dropped
    rows_from: str | None = None  # instead: exactly the rows listed in a run's labeled_rows.jsonl (a run dir or the file)

    WAYS: ClassVar[tuple[str, ...]] = ("num_per_class", "num_examples", "fraction_per_class", "rows_from")  # set one

    def draws(self) -> bool:
        """Whether a subset of the labeled rows is drawn (otherwise every row is kept)."""
        return any(getattr(self, way) is not None for way in self.WAYS)


@dataclass
class DataConfig:
    labeled: DatasetSpec
    unlabeled: DatasetSpec | None = None
    validation: DatasetSpec | None = None
    test: DatasetSpec | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    label_names: list[str] | None = None  # class names in id order; default: sorted labels seen
    label_map: dict[str, str] | None = None  # raw label value -> class name (e.g. AG News 1 -> World)
    max_length: int = 128
    label_all_subwords: bool = False  # NER: label every subword of a word (B- becomes I- after the first), not only the first


@dataclass
class ViewConfig:
    """How one view of an unlabeled text is made.

    `pipeline` lists registered operations applied in order, e.g. `[back_translation, word_swap(0.1),
    token_dropout(0.1)]` (ssl_text/augment/registry.py). Without it, the simple form below applies:
    `aug_columns` names precomputed augmentation columns (e.g. back-translations `aug_0`,
    `aug_1`); one is drawn per example, and a named column the unlabeled data lacks stops the
    run. Crop and BLOSUM substitution, then token dropout (mask and/or
    delete) follow on the fly. A view uses one form, not both.
    """

    pipeline: list[str | dict[str, Any]] = field(default_factory=list)
    aug_columns: list[str] = field(default_factory=list)
    mask_prob: float = 0.0
    delete_prob: float = 0.0
    # Residue views for protein tokenizers (ssl_text/augment/residue_views.py); 0 leaves the view unchanged.
    blosum_prob: float = 0.0  # share of residues replaced by a BLOSUM62 neighbour
    blosum_temperature: float = 1.0  # P(b | a) proportional to exp(BLOSUM62[a, b] / temperature)
    crop_prob: float = 0.0  # share of sequences cut to a random contiguous window
    crop_min_fraction: float = 0.5  # the window keeps at least this share of the residues
    # NER-safe word operations (tasks/ner_augment.py), on sentences whose tags are known (a self-training pool)
    o_word_prob: float = 0.0  # share of words tagged O replaced by other O words of the labeled data
    mention_swap_prob: float = 0.0  # share of entity mentions replaced by a labeled mention of the same type


@dataclass
class ViewsConfig:
    weak: ViewConfig = field(default_factory=ViewConfig)
    strong: ViewConfig = field(default_factory=lambda: ViewConfig(mask_prob=0.2, delete_prob=0.1))


@dataclass
class ModelConfig:
    name_or_path: str = "packaged:all-MiniLM-L6-v2"
    revision: str | None = None
    # SimCLRv2: fine-tune from this layer of the projection head saved by a contrastive `ssl-text pretrain`
    # (0 = the encoder output, the ordinary classifier; k > 0 see ssl_text/models/projection.py)
    projection_head_layers: int = 0
    # text classification: how a new head reads the encoder. "cls": the [CLS] pooler (AutoModelForSequenceClassification);
    # "mean": the normalised mean-pooled embedding (ssl_text/models/mean_pooling.py), the head started as the logistic
    # regression of the labels; "auto": "mean" when the folder is a mean-pooling sentence-transformers model, else
    # "cls". `ssl-text recipe` trains its student with "auto"; plain fine-tuning from a few-label head lost 6.7
    # points with "mean" on the quickstart sample (71.7 vs 78.4, docs/benchmarks.md), so "cls" stays the default.
    pooling: Literal["auto", "mean", "cls"] = "cls"


@dataclass
class TrainerConfig:
    max_steps: int = 300
    lb_batch_size: int = 8
    mu: int = 4  # unlabeled batch = mu * lb_batch_size
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    layer_decay: float | None = None  # layer-wise lr decay: encoder layer i of L trains at lr * layer_decay ** (L - i)
    warmup_ratio: float = 0.1
    lr_schedule: Literal["linear", "constant"] = "linear"
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    eval_every: int = 100
    save_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    progress_bar: bool = True
    select_metric: str | None = None  # validation metric that picks the best model; null: the task's (accuracy; ner: f1)
    max_nonfinite_steps: int = 10  # consecutive non-finite losses before the run stops
    num_threads: int | Literal["auto"] = "auto"  # torch CPU threads per process; `auto`: see README, "Threads"
    # warn when pseudo-labels drift this far from the labeled prior: total variation, as a share of the largest the
    # prior allows (1 - its smallest class share: 0.5 for two balanced classes, 0.75 for four)
    collapse_tv_bound: float = 0.5
    # stop the run (checkpoint, exit status 5) once the pseudo-labels stay collapsed for this many steps after
    # the warmup: over `collapse_tv_bound` and concentrated on one class (`Trainer.check_collapse`); null or 0: warn
    collapse_patience: int | None = 50
    ema_decay: float | None = None  # keep an EMA of the weights (mean teacher needs one)
    evaluate_ema: bool = False  # evaluate and save the EMA weights instead of the raw ones
    # Accelerate trackers the run logs to (tensorboard, wandb, mlflow, comet_ml, aim, clearml, dvclive, ...);
    # each must be installed. The plots read the TensorBoard logs when there are any.
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])


@dataclass
class HubConfig:
    """Publishing the selected model to the Hugging Face Hub at the end of a run (see `ssl_text/hub/push.py`)."""

    push_to_hub: bool = False
    repo_id: str | None = None  # `user/name` or `org/name`; a bare `name` goes to the token owner's namespace
    private: bool = False
    revision: str | None = None  # a branch; created from `main` when missing


@dataclass
class RecipeConfig:
    """`ssl-text recipe`, the recommended semi-supervised recipe (ssl_text/pipelines/recipe.py); `ssl-text train`
    ignores it. The student stage trains with `trainer`, `views` and `model` like any run."""

    warm_start_iterations: int = 20  # contrastive pairs drawn per labeled text (SetFit's `num_iterations` default)
    warm_start_batch_size: int = 16  # SetFit's default
    # a cap on the batches of pairs; None: SetFit's own count, 2 x iterations x labels / batch size (40 labels: 100,
    # 385 labels: 963), as the SetFit peer trains: a smaller cap left the recipe's encoder behind SetFit's at 64 labels
    warm_start_max_steps: int | None = None
    keep: float = 0.5  # share of the pool pseudo-labeled: the rows where the classifier and the kNN vote agree
    student_steps: int = 150  # the student's optimizer steps (its other settings are the config's `trainer`)
    lambda_u: float = 1.0  # the student's weight of the pseudo-labeled loss


@dataclass
class RunConfig:
    data: DataConfig
    output_dir: str
    task: str = "text_classification"
    model: ModelConfig = field(default_factory=ModelConfig)
    algorithm: Any = None  # parsed by the algorithm's own config class, see `load_config`
    views: ViewsConfig = field(default_factory=ViewsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)


# ---------------------------------------------------------------------------------------
# Strict parsing
# ---------------------------------------------------------------------------------------


_IN_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}


def _in_words(tp: Any) -> str:
    """What a value of the annotation `tp` is, as an error message says it: `int | Literal['auto']` is
    "an integer or 'auto'", `DatasetSpec | None` "a mapping of DatasetSpec fields or null"."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_in_words(arg) for arg in typing.get_args(tp))
    if origin is Literal:
        choices = typing.get_args(tp)
        return repr(choices[0]) if len(choices) == 1 else f"one of {list(choices)}"
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return _IN_WORDS.get(tp) or getattr(tp, "__name__", str(tp))


def _coerce_union(value: Any, tp: Any, key: str, source: str) -> Any:
    """The first member of the union `tp` that takes `value`; when none does, the error of the member of the
    value's own type (it names the key inside a section, an item of a list, a NaN), else what `tp` expects in words."""
    if value is None and type(None) in typing.get_args(tp):
        return None
    members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    inner = None
    for arg in members:
        try:
            return _coerce(value, arg, key, source)
        except ConfigError as err:
            if inner is None and _has_type(value, arg):
                inner = err
    if inner is not None:
        raise inner
    found = "" if all(typing.get_origin(arg) is Literal for arg in members) else f" ({type(value).__name__})"
    raise ConfigError(f"{source}: `{key}` is {value!r}{found}; expected {_in_words(tp)}.")


def _has_type(value: Any, tp: Any) -> bool:
    """Whether `value` has the type that `tp` asks for (a mapping for a section or a dict, a list for a list, a
    float for a float), so that what `tp` refuses in it (a key inside, an item, NaN) is the precise error."""
    if isinstance(value, dict):
        return dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict
    if isinstance(value, list):
        return typing.get_origin(tp) is list
    return type(value) is tp


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check `value` against the annotation `tp`, converting dataclasses recursively."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, key, source)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            quoted = " (YAML reads an unquoted no as false: write 'no' in quotes)" if value is False and "no" in choices else ""
            raise ConfigError(f"{source}: `{key}` is {value!r}; expected one of {list(choices)}{quoted}.")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}: `{key}` is {value!r}; expected a mapping of {tp.__name__} fields."
            )
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: `{key}` is {value!r}; expected a list.")
        return [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: `{key}` is {value!r}; expected a mapping.")
        if key_tp is str:
            return {str(k): _coerce(v, val_tp, f"{key}.{k}", source) for k, v in value.items()}
        return {k: _coerce(v, val_tp, f"{key}.{k}", source) for k, v in value.items()}
    if tp is float:
        return _finite_float(value, key, source)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{source}: `{key}` is {value!r} (bool); expected int.")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(
            f"{source}: `{key}` is {value!r} ({type(value).__name__}); expected {tp.__name__}."
        )
    return value


def _finite_float(value: Any, key: str, source: str) -> float:
    """A finite float from a number or a float literal: YAML 1.1 reads `1e-3` (no dot) as a string."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{source}: `{key}` is {value!r} (str); expected float.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: `{key}` is {value!r} ({type(value).__name__}); expected float.")
    if not math.isfinite(value):
        raise ConfigError(f"{source}: `{key}` is {value}; expected a finite number.")
    return float(value)


def from_dict(cls: type, raw: dict, source: str = "<config>", prefix: str = "") -> Any:
    """Build dataclass `cls` from `raw`, refusing unknown keys, wrong types and missing values."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key `{prefix}{unknown[0]}`; valid keys under "
            f"`{prefix.rstrip('.') or 'top level'}` are {sorted(fields)}."
        )
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _coerce(raw[name], hints[name], prefix + name, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key `{prefix}{name}`.")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------------------------
# Overrides and loading
# ---------------------------------------------------------------------------------------


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (`0.9`, `true`, `[a, b]`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override `{item}` has no `=`; write it as key.path=value.")
        dotted, text = item.split("=", 1)
        value = yaml.safe_load(text) if text != "" else ""
        node = raw
        parts = dotted.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override `{item}`: `{part}` is not a section.")
        node[parts[-1]] = value
    return raw


def blame_override(err: ConfigError, source: str, overrides: list[str]) -> ConfigError | None:
    """`err`, raised on the file `source` merged with `overrides`, restated with the override it is about as its source.

    An error names its keys in backticks: when one of them was set on the command line (or lies under a key that
    was), or the first one is a section an override created, the override is to blame, not the file. None: the file.
    """
    message = str(err)
    keys = re.findall(r"`([^`=\s]+)`", message)
    set_by = [(item.split("=", 1)[0], item) for item in reversed(overrides)]  # the last one given wins
    for key in keys:
        for dotted, item in set_by:
            if key == dotted or key.startswith((f"{dotted}.", f"{dotted}[")):
                return _restated(message, source, item)
    for dotted, item in set_by:
        if keys and dotted.startswith(f"{keys[0]}."):
            return _restated(message, source, item)
    return None


def _restated(message: str, source: str, item: str) -> ConfigError:
    prefix = f"{source}: "
    rest = message[len(prefix):] if message.startswith(prefix) else message
    return ConfigError(f"command-line override `{item}`: {rest}")


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        example = f", e.g. {found[0]}" if found else " (this folder holds none)"
        raise ConfigError(f"config file {path} is a directory; pass the path to a YAML file{example}.")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass the path to a YAML file.")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(raw).__name__}.")
    return raw


def validate(cfg: RunConfig, source: str) -> None:
    """Every check the config's own values allow (ranges, intervals, trackers, Hub ids), before any data or model loads."""
    validate_trainer(cfg.trainer, source)
    sampling = cfg.data.sampling
    ways = [k for k in sampling.WAYS if getattr(sampling, k) is not None]
    if len(ways) > 1:
        raise ConfigError(
            f"{source}: {' and '.join(f'`data.sampling.{k}`' for k in ways)} are set together; keep one (num_per_class "
            "draws that many per class, num_examples that many at random, fraction_per_class that share of each class, "
            f"rows_from takes the rows another run drew) and set the others to null, e.g. `data.sampling.{ways[0]}=null`."
        )
    if sampling.rows_from is not None and not sampling.rows_from.strip():
        raise ConfigError(
            f"{source}: `data.sampling.rows_from` is empty; give a run directory or its {LABELED_ROWS_FILE}, or null."
        )
    if sampling.seed < 0:
        raise ConfigError(f"{source}: `data.sampling.seed` is {sampling.seed}; expected an integer >= 0 (numpy refuses negative seeds).")
    for key in ("num_per_class", "num_examples"):
        if getattr(sampling, key) is not None and getattr(sampling, key) <= 0:
            raise ConfigError(f"{source}: `data.sampling.{key}` is {getattr(sampling, key)}; expected a positive integer.")
    if sampling.fraction_per_class is not None and not 0.0 < sampling.fraction_per_class < 1.0:
        raise ConfigError(
            f"{source}: `data.sampling.fraction_per_class` is {sampling.fraction_per_class}; expected a share in (0, 1), "
            "e.g. 0.1 for 10% of each class."
        )
    if cfg.data.max_length <= 2:
        raise ConfigError(f"{source}: `data.max_length` is {cfg.data.max_length}; expected > 2.")
    unlabeled = cfg.data.unlabeled
    if unlabeled is not None and unlabeled.shuffle_buffer <= 0:
        raise ConfigError(
            f"{source}: `data.unlabeled.shuffle_buffer` is {unlabeled.shuffle_buffer}; expected a positive number of rows, e.g. 10000."
        )
    _validate_hub(cfg.hub, source)
    _validate_recipe(cfg.recipe, source)
    check = getattr(cfg.algorithm, "validate", None)
    if check is not None:
        check(source)


def _validate_recipe(r: RecipeConfig, source: str) -> None:
    if r.warm_start_iterations < 1:
        raise ConfigError(
            f"{source}: `recipe.warm_start_iterations` is {r.warm_start_iterations}; expected pairs per labeled text >= 1, e.g. 20."
        )
    if r.warm_start_max_steps is not None and r.warm_start_max_steps < 1:
        raise ConfigError(
            f"{source}: `recipe.warm_start_max_steps` is {r.warm_start_max_steps}; expected batches >= 1, e.g. 100, "
            "or null for SetFit's own count."
        )
    if r.warm_start_batch_size < 2:
        raise ConfigError(
            f"{source}: `recipe.warm_start_batch_size` is {r.warm_start_batch_size}; expected >= 2 pairs a batch, e.g. 16."
        )
    if r.student_steps < 1:
        raise ConfigError(f"{source}: `recipe.student_steps` is {r.student_steps}; expected optimizer steps >= 1, e.g. 150.")
    if not 0.0 < r.keep <= 1.0:
        raise ConfigError(f"{source}: `recipe.keep` is {r.keep}; expected a share of the pool in (0, 1], e.g. 0.5.")
    if r.lambda_u < 0:
        raise ConfigError(f"{source}: `recipe.lambda_u` is {r.lambda_u}; expected a weight >= 0, e.g. 1.")


# trainer counts and intervals (in optimizer steps): each must be a positive integer; the text says what it counts
_POSITIVE_TRAINER_INTS = {
    "max_steps": "optimizer steps",
    "lb_batch_size": "labeled examples per batch",
    "mu": "unlabeled examples per labeled one",
    "eval_batch_size": "examples per evaluation batch",
    "gradient_accumulation_steps": "batches per optimizer step",
    "eval_every": "steps between evaluations",
    "save_every": "steps between checkpoints",
    "log_every": "steps between log lines",
    "keep_checkpoints": "checkpoints kept",
    "max_nonfinite_steps": "non-finite losses in a row before the run stops",
}


def validate_trainer(t: TrainerConfig, source: str) -> None:
    """The ranges of the `trainer` section (its floats are finite already: `_coerce` refuses NaN and inf)."""
    defaults = TrainerConfig()
    for key, counts in _POSITIVE_TRAINER_INTS.items():
        if getattr(t, key) <= 0:
            raise ConfigError(
                f"{source}: `trainer.{key}` is {getattr(t, key)}; expected a positive integer ({counts}), "
                f"e.g. {getattr(defaults, key)}."
            )
    if t.seed < 0:
        raise ConfigError(f"{source}: `trainer.seed` is {t.seed}; expected an integer >= 0 (numpy refuses negative seeds).")
    if t.learning_rate <= 0:
        raise ConfigError(
            f"{source}: `trainer.learning_rate` is {t.learning_rate}; expected a positive value, e.g. {defaults.learning_rate}."
        )
    if t.weight_decay < 0:
        raise ConfigError(f"{source}: `trainer.weight_decay` is {t.weight_decay}; expected a value >= 0, e.g. {defaults.weight_decay}.")
    if not 0.0 <= t.warmup_ratio < 1.0:
        raise ConfigError(
            f"{source}: `trainer.warmup_ratio` is {t.warmup_ratio}; expected the share of `trainer.max_steps` spent "
            f"warming up, in [0, 1), e.g. {defaults.warmup_ratio}."
        )
    if t.max_grad_norm is not None and t.max_grad_norm <= 0:
        raise ConfigError(
            f"{source}: `trainer.max_grad_norm` is {t.max_grad_norm}; expected a positive value (e.g. "
            f"{defaults.max_grad_norm}), or null to turn gradient clipping off."
        )
    if not 0.0 < t.collapse_tv_bound <= 1.0:
        raise ConfigError(
            f"{source}: `trainer.collapse_tv_bound` is {t.collapse_tv_bound}; expected a total variation distance "
            f"in (0, 1], e.g. {defaults.collapse_tv_bound} (1 never warns)."
        )
    if t.collapse_patience is not None and t.collapse_patience < 0:
        raise ConfigError(
            f"{source}: `trainer.collapse_patience` is {t.collapse_patience}; expected the steps a pseudo-label "
            f"collapse may last before the run stops, an integer >= 0 (e.g. {defaults.collapse_patience}), or null "
            "(or 0) to only warn."
        )
    if t.num_threads != "auto" and t.num_threads <= 0:
        raise ConfigError(f"{source}: `trainer.num_threads` is {t.num_threads}; expected a positive integer or 'auto'.")
    if t.layer_decay is not None and not 0.0 < t.layer_decay <= 1.0:
        raise ConfigError(f"{source}: `trainer.layer_decay` is {t.layer_decay}; expected a value in (0, 1], e.g. 0.65.")
    if t.ema_decay is not None and not 0.0 < t.ema_decay < 1.0:
        raise ConfigError(f"{source}: `trainer.ema_decay` is {t.ema_decay}; expected a value in (0, 1), e.g. 0.999.")
    if t.evaluate_ema and t.ema_decay is None:
        raise ConfigError(f"{source}: `trainer.evaluate_ema` is true but `trainer.ema_decay` is not set; set it, e.g. 0.999.")
    _validate_trackers(t.report_to, source)


def _validate_trackers(names: list[str], source: str) -> None:
    """Every tracker of `trainer.report_to` is one Accelerate knows and is installed."""
    import accelerate.tracking as tracking

    for name in names:
        check = getattr(tracking, f"is_{name}_available", None)
        if check is None:
            known = sorted(k[3:-10] for k in dir(tracking) if k.startswith("is_") and k.endswith("_available"))
            raise ConfigError(f"{source}: `trainer.report_to` names {name!r}; expected some of {known}.")
        if not check():
            raise ConfigError(
                f"{source}: `trainer.report_to` names {name!r}, which is not installed; `pip install {name}` "
                "or remove it from `trainer.report_to`."
            )


def _validate_hub(hub: HubConfig, source: str) -> None:
    if hub.push_to_hub and not hub.repo_id:
        raise ConfigError(
            f"{source}: `hub.push_to_hub` is true but `hub.repo_id` is not set; set it, e.g. hub.repo_id=your-name/my-model."
        )
    if hub.repo_id is not None:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(hub.repo_id)
        except HFValidationError as err:
            raise ConfigError(f"{source}: `hub.repo_id` is {hub.repo_id!r}, not a valid Hub repo id: {err}") from None


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config through a temporary file and a rename: a kill never leaves half a config."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    os.replace(tmp, path)
