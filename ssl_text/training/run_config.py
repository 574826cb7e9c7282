"""Loading a run's config with every check that needs the registries above the config layer.

`ssl_text.config` is a leaf: it knows the schema and the checks its own values allow. The
algorithm section is typed by the chosen algorithm's `Config`, and view pipelines name
operations of the augmentation registry; both registries sit above the config layer, so the
loader that brings them together lives here.
"""

from __future__ import annotations

from pathlib import Path

from ssl_text.algorithms import algorithm_config_class
from ssl_text.augment.registry import check_view
from ssl_text.config import ConfigError, RunConfig, apply_overrides, from_dict, read_yaml, validate


def parse_config(raw: dict, source: str = "<config>") -> RunConfig:
    """Parse a raw mapping into a `RunConfig`, with the algorithm section typed by its class."""
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
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    return parse_config(raw, str(path))
