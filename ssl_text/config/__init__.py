"""The config layer, a leaf: the typed run config, strict YAML parsing with dotted overrides, and
the names that every layer above shares (`ssl_text.config.keys`). It imports nothing of ssl_text.
The loader that also types the algorithm section lives in `ssl_text.training.run_config`."""

from ssl_text.config.schema import (
    ConfigError,
    DataConfig,
    DatasetSpec,
    HubConfig,
    ModelConfig,
    RecipeConfig,
    RunConfig,
    SamplingConfig,
    TrainerConfig,
    ViewConfig,
    ViewsConfig,
    apply_overrides,
    blame_override,
    from_dict,
    read_yaml,
    save_config,
    to_dict,
    validate,
    validate_trainer,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "DatasetSpec",
    "HubConfig",
    "RecipeConfig",
    "ModelConfig",
    "RunConfig",
    "SamplingConfig",
    "TrainerConfig",
    "ViewConfig",
    "ViewsConfig",
    "apply_overrides",
    "blame_override",
    "from_dict",
    "read_yaml",
    "save_config",
    "to_dict",
    "validate",
    "validate_trainer",
]
