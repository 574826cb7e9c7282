"""The algorithm registry: every algorithm is registered here, by name, and nowhere else."""

from __future__ import annotations

from ssl_text.algorithms.base import LossOutput, TrainState
from ssl_text.algorithms.distill import Distill
from ssl_text.algorithms.fixmatch import FixMatch
from ssl_text.algorithms.flexmatch import FlexMatch
from ssl_text.algorithms.freematch import FreeMatch
from ssl_text.algorithms.mean_teacher import MeanTeacher
from ssl_text.algorithms.mixmatch import MixMatch
from ssl_text.algorithms.noisy_student import NoisyStudent
from ssl_text.algorithms.pi_model import PiModel
from ssl_text.algorithms.pseudo_label import PseudoLabel
from ssl_text.algorithms.supervised import Supervised
from ssl_text.algorithms.temporal_ensembling import TemporalEnsembling
from ssl_text.algorithms.uda import UDA
from ssl_text.config.keys import KNOWN_VIEWS

ALGORITHMS = {
    "supervised": Supervised,
    "pseudo_label": PseudoLabel,
    "fixmatch": FixMatch,
    "uda": UDA,
    "pi_model": PiModel,
    "temporal_ensembling": TemporalEnsembling,
    "mean_teacher": MeanTeacher,
    "mixmatch": MixMatch,
    "flexmatch": FlexMatch,
    "freematch": FreeMatch,
    "noisy_student": NoisyStudent,
    "distill": Distill,
}


def algorithm_class(name: str, source: str = "<config>"):
    from ssl_text.config import ConfigError

    if name not in ALGORITHMS:
        raise ConfigError(
            f"{source}: unknown algorithm `{name}` in `algorithm.name`; "
            f"choose one of {sorted(ALGORITHMS)}."
        )
    return ALGORITHMS[name]


def algorithm_config_class(name: str, source: str = "<config>"):
    return algorithm_class(name, source).Config


def build_algorithm(config, num_classes: int):
    return algorithm_class(config.name)(config, num_classes)


__all__ = ["ALGORITHMS", "KNOWN_VIEWS", "LossOutput", "TrainState", "algorithm_class", "build_algorithm"]
