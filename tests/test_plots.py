"""RUN_DIR/plots/: training curves from the TensorBoard logs and the confusion matrix, after every run."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ssl_text.pipelines.train import train
from ssl_text.training.plots import confusion_matrix, read_scalars, write_run_plots
from ssl_text.training.run_config import parse_config


def check_png(path: Path, min_size=(300, 300)) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        assert len(set(image.convert("L").getdata())) > 10, "an empty image"


def test_a_run_writes_curves_and_confusion_matrix(toy_config, tmp_path):
    raw = toy_config("fixmatch", tau=0.3)
    metrics = train(parse_config(raw))
    run_dir = Path(raw["output_dir"])
    check_png(run_dir / "plots" / "training_curves.png")
    check_png(run_dir / "plots" / "confusion_matrix.png")
    cm = metrics["confusion_matrix"]
    assert cm["split"] == "test" and cm["labels"] == metrics["label_names"]
    assert sum(map(sum, cm["matrix"])) == 80  # every test text counted once
    correct = sum(cm["matrix"][i][i] for i in range(len(cm["matrix"])))
    assert correct / 80 == pytest.approx(metrics["test"]["accuracy"])
    assert json.loads((run_dir / "metrics.json").read_text())["confusion_matrix"] == cm

    scalars = read_scalars(run_dir / "logs")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4]
    assert {"train/mask_rate", "train/pseudo_label_accuracy", "train/lr", "validation/accuracy"} <= set(scalars)

    # Without TensorBoard logs the curves come from metrics.json's validation history.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "best", "plots"))
    shutil.rmtree(copy / "logs")
    written = write_run_plots(copy)
    assert [p.name for p in written] == ["training_curves.png", "confusion_matrix.png"]
    check_png(copy / "plots" / "training_curves.png", min_size=(300, 200))


def test_without_a_test_split_the_confusion_matrix_uses_validation(toy_config):
    raw = toy_config("supervised")
    del raw["data"]["test"]
    raw["trainer"].update(max_steps=2)
    metrics = train(parse_config(raw))
    assert "test" not in metrics
    assert metrics["confusion_matrix"]["split"] == "validation"
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 40
    check_png(Path(raw["output_dir"]) / "plots" / "confusion_matrix.png")


def test_resumed_logs_keep_the_latest_value_per_step(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for values in ([1.0, 2.0, 3.0], [20.0, 30.0]):  # a second session re-logs steps 2 and 3
        writer = SummaryWriter(str(tmp_path))
        for step, value in zip(range(4 - len(values), 4), values):
            writer.add_scalar("train/loss", value, step)
        writer.close()
    assert read_scalars(tmp_path)["train/loss"] == [(1, 1.0), (2, 20.0), (3, 30.0)]


def test_confusion_matrix_counts_true_rows_and_predicted_columns_of_every_class():
    """scikit-learn's matrix, with a row and a column for a class that neither side ever names."""
    matrix = confusion_matrix(predictions=[0, 1, 2, 2, 0], references=[0, 2, 2, 2, 1], num_classes=4)
    assert matrix == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    assert all(type(count) is int for row in matrix for count in row)  # JSON-ready for metrics.json
