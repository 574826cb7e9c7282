"""The settings the benchmark scripts fix in advance parse into valid configs (no CPU hour spent to find a typo)."""

import importlib
from pathlib import Path

import pytest

from ssl_text.training.run_config import load_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# Rows that vary the data or views of an algorithm (noisy_student_swap: the config's base algorithm;
# `self_train` sets noisy_student for the student rounds).
VARIANT_OF = {"fixmatch_bt": "fixmatch", "uda_bt": "uda", "fixmatch_da": "fixmatch", "uda_da": "uda", "mixmatch_da": "mixmatch", "noisy_student_swap": "supervised",
              "supervised_all_labels": "supervised", "fixmatch_ema": "fixmatch", "uda_ema": "uda", "pi_model_ema": "pi_model",
              "uda_tsa": "uda", "fixmatch_ema_teacher": "fixmatch", "uda_ema_teacher": "uda",
              "fixmatch_mu7": "fixmatch", "uda_mu7": "uda", "pi_model_mu7": "pi_model",
              "supervised_ld": "supervised", "fixmatch_ld": "fixmatch", "uda_ld": "uda", "fixmatch_knn": "fixmatch"}


@pytest.mark.parametrize("script", ["benchmark", "benchmark_ner"])
def test_every_algorithm_setting_of_a_benchmark_is_a_valid_config(script, tmp_path):
    bench = importlib.import_module(script)
    for name, args in bench.ALGORITHM_ARGS.items():
        cfg = load_config(bench.CONFIG, [f"output_dir={tmp_path / name}", *args])
        assert cfg.algorithm.name == VARIANT_OF.get(name, name)


def test_the_agnews_zoo_covers_every_registered_algorithm():
    from ssl_text.algorithms import ALGORITHMS

    bench = importlib.import_module("benchmark")
    assert set(ALGORITHMS) - {"distill"} <= set(bench.ALGORITHM_ARGS) | set(bench.SELF_TRAINING)


def test_protein_ssl_settings_are_valid_configs(tmp_path):
    bench = importlib.import_module("benchmark_protein")
    for name, args in bench.ALGORITHM_ARGS.items():
        for spec in bench.BENCHMARKS.values():
            cfg = load_config(SCRIPTS.parent / "configs" / spec["config"], [f"output_dir={tmp_path / name}", args])
            assert cfg.algorithm.name == name


def test_self_training_rows_name_a_teacher_row_and_valid_pseudo_labeling():
    from ssl_text.pipelines.self_training import PseudoLabeling

    bench = importlib.import_module("benchmark")
    for name, options in bench.SELF_TRAINING.items():
        options = dict(options)
        teacher, rounds = options.pop("teacher"), options.pop("rounds")
        assert teacher in bench.ALGORITHM_ARGS, f"{name}: round 0 is {teacher!r}, not a row of the benchmark"
        assert rounds >= 1
        PseudoLabeling(**options).validate()


def test_the_simclrv2_ssl_arm_fine_tunes_with_the_zoo_row_of_its_algorithm(tmp_path):
    import yaml

    bench = importlib.import_module("benchmark")
    simclr = importlib.import_module("benchmark_simclrv2")
    name = simclr.SSL_FINETUNE["name"]
    arm = load_config(bench.CONFIG, [f"output_dir={tmp_path}", f"algorithm={yaml.safe_dump(simclr.SSL_FINETUNE, default_flow_style=True).strip()}"])
    row = load_config(bench.CONFIG, [f"output_dir={tmp_path}", *bench.ALGORITHM_ARGS[name]])
    assert arm.algorithm == row.algorithm
    assert set(simclr.TEACHERS.values()) <= set(simclr.ARMS.values())
