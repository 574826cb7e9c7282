"""Loading a run's config with every check that needs the registries above the config layer.

`ssl_text.config` is a leaf: it knows the schema and the checks its own values allow. The
algorithm section is typed by the chosen algorithm's `Config`, view pipelines name operations
of the augmentation registry, the selection metric must be one the task reports, and
`data.max_length` must fit the model's position table (read from its config.json, no weights);
these registries and the model sit above the config layer, so the loader that brings them
together lives here. Everything runs before any data or model loads.
"""

from __future__ import annotations

from pathlib import Path

from ssl_text.algorithms import ALGORITHMS, algorithm_class, algorithm_config_class
from ssl_text.augment.registry import check_view
from ssl_text.config import (
    ConfigError,
    ModelConfig,
    RunConfig,
    apply_overrides,
    blame_override,
    from_dict,
    read_yaml,
    validate,
)
from ssl_text.tasks import TASKS, build_task

# Model types whose position ids start after the padding index (transformers' RoBERTa-style
# `create_position_ids_from_input_ids`): `max_position_embeddings - (pad_token_id + 1)` positions are usable.
PADDING_OFFSET_MODEL_TYPES = frozenset({
    "camembert", "data2vec-text", "esm", "ibert", "layoutlmv3", "lilt", "longformer", "luke", "markuplm",
    "mpnet", "roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "xmod",
})


def parse_config(raw: dict, source: str = "<config>") -> RunConfig:
    """Parse a raw mapping into a `RunConfig`, with the algorithm section typed by its class.

    `trainer.select_metric: null` becomes the task's own metric, so the saved config names the one used.
    """
    raw = dict(raw)
    algo_raw = dict(raw.pop("algorithm", None) or {"name": "supervised"})
    if "name" not in algo_raw:
        raise ConfigError(f"{source}: missing required key `algorithm.name`.")
    algo_cls = algorithm_config_class(algo_raw["name"], source)
    cfg = from_dict(RunConfig, raw, source)
    cfg.algorithm = from_dict(algo_cls, algo_raw, source, prefix="algorithm.")
    validate(cfg, source)
    for view in ("weak", "strong"):
        check_view(getattr(cfg.views, view), f"views.{view}", source)
    check_task(cfg, source)
    cfg.trainer.select_metric = select_metric_for(cfg.task, cfg.trainer.select_metric, source)
    check_max_length(cfg.model, cfg.data.max_length, source)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    overrides = list(overrides or [])
    raw = apply_overrides(read_yaml(path), overrides)
    try:
        return parse_config(raw, str(path))
    except ConfigError as err:
        blamed = blame_override(err, str(path), overrides)
        if blamed is None:
            raise
        raise blamed from None


def check_task(cfg: RunConfig, source: str) -> None:
    """The task exists, takes the views (NER: none that move words) and the algorithm (NER: a token-level one)."""
    if cfg.task not in TASKS:
        raise ConfigError(f"{source}: `task` is {cfg.task!r}; expected one of {sorted(TASKS)}.")
    task = build_task(cfg.task)
    try:
        task.check_views(cfg.views)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    if task.token_level and not getattr(algorithm_class(cfg.algorithm.name), "token_level", False):
        supported = sorted(name for name, cls in ALGORITHMS.items() if getattr(cls, "token_level", False))
        raise ConfigError(
            f"{source}: `algorithm.name` is {cfg.algorithm.name!r}, which works on one label per text, but task "
            f"`{cfg.task}` labels every token; choose one of the token-level algorithms {supported}."
        )
    if task.token_level and getattr(cfg.algorithm, "knn_agreement", False):
        raise ConfigError(
            f"{source}: `algorithm.knn_agreement` is true, but its kNN vote gives one label per text and task "
            f"`{cfg.task}` labels every token; set `algorithm.knn_agreement: false`."
        )


def select_metric_for(task_name: str, select_metric: str | None, source: str) -> str:
    """The validation metric that picks the best model: `select_metric` if the task reports it, else the task's own."""
    task = build_task(task_name)
    if select_metric is None:
        return task.select_metric
    if select_metric not in task.metrics:
        raise ConfigError(
            f"{source}: `trainer.select_metric` is {select_metric!r}, which task `{task_name}` does not report; "
            f"choose one of {list(task.metrics)}, or null for the task's own ({task.select_metric!r})."
        )
    return select_metric


def check_max_length(model: ModelConfig, max_length: int, source: str, key: str = "data.max_length") -> None:
    """Refuse a `max_length` beyond the model's position table, from its config alone.

    A model whose config cannot be read offline (a Hub id not in the cache, `new:<size>`, a package not
    installed) is not checked here: loading the model reports it, still before anything is written.
    """
    from transformers import AutoConfig

    from ssl_text.models.resolve import resolve_model_path

    try:
        config = AutoConfig.from_pretrained(
            resolve_model_path(model.name_or_path), revision=model.revision, local_files_only=True
        )
    except (OSError, ValueError):
        return
    limit, how = position_limit(config)
    if limit is not None and max_length > limit:
        raise ConfigError(
            f"{source}: `{key}` is {max_length}, but the model {model.name_or_path!r} has {limit} positions "
            f"({how}); set `{key}` to at most {limit}."
        )


def position_limit(config) -> tuple[int | None, str]:
    """(tokens the model can embed, how that follows from its config); None: no absolute position table."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None, "no max_position_embeddings"
    if getattr(config, "position_embedding_type", "absolute") == "rotary":
        return None, "rotary positions"
    if getattr(config, "position_biased_input", True) is False:  # DeBERTa: relative positions only
        return None, "relative positions only"
    how = f"{config.model_type}: max_position_embeddings {positions}"
    if config.model_type in PADDING_OFFSET_MODEL_TYPES and config.pad_token_id is not None:
        offset = config.pad_token_id + 1
        return positions - offset, f"{how}, of which the first {offset} precede the positions of tokens"
    return positions, how
