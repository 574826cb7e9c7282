"""The algorithm zoo: loss and update math on hand-made inputs, mixup on both model paths,
exact resume of the stateful algorithms, and multi-round self-training."""

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ssl_text.algorithms import ALGORITHMS, TrainState
from ssl_text.algorithms.losses import sharpen, soft_cross_entropy
from ssl_text.algorithms.mixup import concat_inputs, forward_mixed, mix, mixup_lambda, take
from ssl_text.algorithms.thresholds import FlexMatchThresholds, FreeMatchThresholds
from ssl_text.config import ConfigError, from_dict
from ssl_text.config.seeds import derive_seed
from ssl_text.pipelines.self_training import PseudoLabeling
from ssl_text.pipelines.train import train
from ssl_text.tasks.text_classification import select_pseudo_labels
from ssl_text.training.ema import ema_update
from ssl_text.training.run_config import parse_config
from tests.test_algorithms import TABLE, TableModel, batch, lb_loss, make

IDENTITY = lambda t: t  # noqa: E731 - gather with one process


def state(step=50, max_steps=100, **kwargs):
    return TrainState(step=step, max_steps=max_steps, num_classes=2, gather=IDENTITY, **kwargs)


def softmax_rows(*rows):
    return torch.softmax(torch.tensor(TABLE)[list(rows)], dim=-1)


# ---------------------------------------------------------------------------------------
# Pi-model, temporal ensembling, mean teacher
# ---------------------------------------------------------------------------------------


def test_pi_model_is_ramped_squared_error_between_the_two_views():
    model = TableModel(TABLE)
    out = make("pi_model", lambda_u=10.0, rampup_steps=100).compute_loss(model, batch(), state(step=50))
    mse = ((softmax_rows(4, 5) - softmax_rows(2, 3)) ** 2).mean()
    assert out.parts["loss_ulb"].item() == pytest.approx(mse.item())
    weight = 10.0 * math.exp(-5 * 0.5**2)
    assert out.total.item() == pytest.approx(lb_loss().item() + weight * mse.item(), rel=1e-6)
    out.total.backward()
    assert model.table.grad[[2, 3, 4, 5]].abs().sum(dim=1).gt(0).all()  # both passes get gradient


def test_temporal_ensembling_bias_correction_is_per_example():
    algo = make("temporal_ensembling", alpha=0.6)
    p1, p2, q = torch.tensor([[0.9, 0.1]]), torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.8]])
    algo.update(torch.tensor([0]), p1)
    algo.update(torch.tensor([0]), p2)
    algo.update(torch.tensor([3]), q)  # grows the ensemble on demand to 4 examples
    targets, seen = algo.targets(torch.tensor([0, 3, 1, 7]))
    z0 = 0.6 * 0.4 * p1 + 0.4 * p2  # Z after two updates, t = 2
    assert torch.allclose(targets[0], (z0 / (1 - 0.6**2))[0])
    assert torch.allclose(targets[1], q[0])  # one update: the correction recovers the prediction
    assert seen.tolist() == [1.0, 1.0, 0.0, 0.0]  # 1 not updated yet, 7 beyond the ensemble
    assert algo.updates.tolist() == [2, 0, 0, 1]


def test_temporal_ensembling_counts_an_example_twice_in_one_batch_once():
    algo = make("temporal_ensembling", alpha=0.5)
    algo.update(torch.tensor([2, 2]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert algo.updates.tolist() == [0, 0, 1]
    assert algo.ensemble[2].tolist() == [0.0, 0.5]  # the later prediction wins


def test_temporal_ensembling_loss_uses_targets_before_the_update_and_survives_state_dict():
    algo = make("temporal_ensembling", alpha=0.6, lambda_u=2.0, rampup_steps=0)
    b = {**batch(), "ulb_index": torch.tensor([0, 1])}
    model = TableModel(TABLE)
    first = algo.compute_loss(model, b, state())
    assert first.mask.tolist() == [0.0, 0.0] and first.parts["loss_ulb"].item() == 0.0
    second = algo.compute_loss(model, b, state())  # target = the first prediction (bias-corrected)
    assert second.mask.tolist() == [1.0, 1.0]
    assert second.parts["loss_ulb"].item() == pytest.approx(0.0, abs=1e-12)
    saved = algo.state_dict()
    fresh = make("temporal_ensembling", alpha=0.6)
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.ensemble, algo.ensemble) and torch.equal(fresh.updates, algo.updates)


def test_ema_update_with_a_known_decay():
    model, ema = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0), model.bias.fill_(1.0), ema.weight.fill_(0.0), ema.bias.fill_(2.0)
    ema_update(ema, model, 0.9)
    assert torch.allclose(ema.weight, torch.full((1, 2), 0.1)) and torch.allclose(ema.bias, torch.tensor([1.9]))
    ema_update(ema, model, 0.9)
    assert torch.allclose(ema.weight, torch.full((1, 2), 0.19))


def test_mean_teacher_student_strong_view_follows_teacher_weak_view():
    teacher_table = [row[:] for row in TABLE]
    teacher_table[2], teacher_table[3] = [0.0, 2.0], [1.0, 0.0]
    student, teacher = TableModel(TABLE), TableModel(teacher_table)
    algo = make("mean_teacher", lambda_u=4.0, rampup_steps=0)
    assert ALGORITHMS["mean_teacher"].requires_ema
    out = algo.compute_loss(student, batch(), state(ema_model=teacher))
    target = torch.softmax(torch.tensor(teacher_table)[[2, 3]], dim=-1)
    mse = ((softmax_rows(4, 5) - target) ** 2).mean()
    assert out.total.item() == pytest.approx(lb_loss().item() + 4.0 * mse.item(), rel=1e-6)
    assert out.pseudo_labels.tolist() == [1, 0]
    out.total.backward()
    assert teacher.table.grad is None and student.table.grad[[2, 3]].abs().sum() == 0
    with pytest.raises(ValueError, match="trainer.ema_decay"):
        algo.compute_loss(student, batch(), state())


# ---------------------------------------------------------------------------------------
# Mixup and MixMatch
# ---------------------------------------------------------------------------------------


class PointModel(torch.nn.Module):
    """A float-input model (as the two-moons MLP): logits = x @ W."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))

    def forward(self, x):
        return SimpleNamespace(logits=x @ self.weight)


def test_mix_and_mixup_lambda_are_deterministic():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert mix(a, b, 0.7).tolist() == pytest.approx([0.7, 0.3])
    draws = [mixup_lambda(0.75, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert draws[0] == draws[1] != mixup_lambda(0.75, torch.Generator().manual_seed(4))  # the seed decides the draw
    g = torch.Generator().manual_seed(0)
    assert np.mean([mixup_lambda(2.0, g) for _ in range(400)]) == pytest.approx(0.5, abs=0.05)  # Beta(a, a) mean


def test_input_level_mixup_for_float_models():
    model = PointModel()
    a, b = {"x": torch.tensor([[1.0, 2.0]])}, {"x": torch.tensor([[3.0, -1.0]])}
    expected = model(x=mix(a["x"], b["x"], 0.3)).logits
    assert torch.allclose(forward_mixed(model, a, b, 0.3, 0), expected)
    with pytest.raises(ValueError, match="mix_layer=0"):
        forward_mixed(model, a, b, 0.3, 1)


@pytest.fixture(scope="module")
def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval()


def test_hidden_state_mixup_matches_a_layer_by_layer_reference(tiny_classifier):
    from transformers.masking_utils import create_bidirectional_mask

    model = tiny_classifier
    a = {
        "input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }
    b = {"input_ids": torch.tensor([[2, 9, 3], [2, 10, 11]]), "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}

    def reference(lam, k):  # embeddings + layers [0, k), mix, layers [k, L) under the OR mask, pooler, head
        both = concat_inputs([a, b])
        h = model.bert.embeddings(input_ids=both["input_ids"])
        mask = create_bidirectional_mask(config=model.config, inputs_embeds=h, attention_mask=both["attention_mask"])
        for layer in model.bert.encoder.layer[:k]:
            h = layer(h, mask)
        h = mix(h[:2], h[2:], lam)
        joint = both["attention_mask"][:2] | both["attention_mask"][2:]
        mask = create_bidirectional_mask(config=model.config, inputs_embeds=h, attention_mask=joint)
        for layer in model.bert.encoder.layer[k:]:
            h = layer(h, mask)
        return model.classifier(model.dropout(model.bert.pooler(h)))

    with torch.no_grad():
        plain = model(**a).logits
        for k in (0, 1, 2):
            assert torch.allclose(forward_mixed(model, a, b, 0.4, k), reference(0.4, k), atol=1e-5)
            assert torch.allclose(forward_mixed(model, a, a, 0.3, k), plain, atol=1e-5)  # mixing with itself
    with pytest.raises(ValueError, match="between 0 .* and 2"):
        forward_mixed(model, a, b, 0.4, 3)


def test_mixmatch_loss_with_the_drawn_lambda_and_shuffle():
    cfg = {"T": 0.5, "alpha": 0.75, "lambda_u": 8.0, "rampup_steps": 0}
    algo = make("mixmatch", **cfg)
    model = PointModel()
    b = {
        "lb": {"x": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
        "lb_labels": torch.tensor([0, 1]),
        "ulb_weak": {"x": torch.tensor([[0.5, 0.5], [2.0, -1.0]])},
        "ulb_strong": {"x": torch.tensor([[0.4, 0.7], [1.5, -0.5]])},
    }
    out = algo.compute_loss(model, b, state(step=7, seed=5))

    g = torch.Generator().manual_seed(derive_seed(5, 7))  # the run's seed and the step
    lam = mixup_lambda(0.75, g)
    lam = max(lam, 1 - lam)
    perm = torch.randperm(6, generator=g)
    with torch.no_grad():
        probs = [torch.softmax(model(**b[v]).logits, -1) for v in ("ulb_weak", "ulb_strong")]
        guess = sharpen((probs[0] + probs[1]) / 2, 0.5)
        x = torch.cat([b["lb"]["x"], b["ulb_weak"]["x"], b["ulb_strong"]["x"]])
        targets = torch.cat([F.one_hot(b["lb_labels"], 2).float(), guess, guess])
        logits = model(x=mix(x, x[perm], lam)).logits
        mixed = mix(targets, targets[perm], lam)
        loss_lb = soft_cross_entropy(logits[:2], mixed[:2]).mean()
        loss_ulb = ((torch.softmax(logits[2:], -1) - mixed[2:]) ** 2).mean()
    assert out.parts["mixup_lambda"] == pytest.approx(lam) and lam >= 0.5
    assert out.total.item() == pytest.approx((loss_lb + 8.0 * loss_ulb).item(), rel=1e-5)
    again = make("mixmatch", **cfg).compute_loss(model, b, state(step=7, seed=5))
    assert again.total.item() == out.total.item()  # same seed and step: same mixing (exact resume)


def test_take_and_concat_pad_token_batches():
    a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.tensor([[1, 1, 1]])}
    b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.tensor([[1]])}
    both = concat_inputs([a, b], pad_token_id=0)
    assert both["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert both["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert take(both, torch.tensor([1]))["input_ids"].tolist() == [[8, 0, 0]]


# ---------------------------------------------------------------------------------------
# FlexMatch and FreeMatch thresholds
# ---------------------------------------------------------------------------------------


def test_flexmatch_thresholds_after_known_predictions():
    est = FlexMatchThresholds(num_classes=2, tau=0.9, warmup=True)
    assert est.thresholds().tolist() == [0.0, 0.0]  # nothing learned yet: every prediction counts
    probs = torch.tensor([[0.95, 0.05]] * 4 + [[0.02, 0.98]] + [[0.6, 0.4]] * 5)  # examples 0..9
    est.update(torch.arange(10), probs)
    # sigma = [4, 1], 5 unused; warm-up normaliser max(4, 5) = 5 -> beta = [0.8, 0.2]
    beta = torch.tensor([0.8, 0.2])
    assert torch.allclose(est.learning_effect(), beta)
    assert torch.allclose(est.thresholds(), 0.9 * beta / (2 - beta))
    no_warmup = FlexMatchThresholds(2, 0.9, warmup=False)
    no_warmup.update(torch.arange(10), probs)
    assert torch.allclose(no_warmup.learning_effect(), torch.tensor([1.0, 0.25]))
    # example 4 becomes unsure: it stays remembered as class 1; example 5 turns confident class 1
    est.update(torch.tensor([4, 5]), torch.tensor([[0.5, 0.5], [0.01, 0.99]]))
    assert est.selected.tolist()[:6] == [0, 0, 0, 0, 1, 1]
    mask = est.mask(torch.tensor([[0.7, 0.3], [0.3, 0.7]]))
    thresholds = est.thresholds()  # beta = [1, 0.5] with 4 unused
    assert torch.allclose(thresholds, torch.tensor([0.9, 0.9 * 0.5 / 1.5]))
    assert mask.tolist() == [0.0, 1.0]


def test_flexmatch_masks_with_the_status_before_the_batch():
    algo = make("flexmatch", tau=0.9)
    b = {**batch(), "ulb_index": torch.tensor([0, 1])}
    out = algo.compute_loss(TableModel(TABLE), b, state())
    assert out.mask.tolist() == [1.0, 1.0]  # thresholds start at 0
    assert algo.thresholds.selected.tolist() == [0, -1]  # example 0 (p=0.993) is now learned as class 0
    restored = make("flexmatch", tau=0.9)
    restored.load_state_dict(algo.state_dict())
    assert torch.equal(restored.thresholds.selected, algo.thresholds.selected)


def test_freematch_thresholds_after_known_updates():
    est = FreeMatchThresholds(num_classes=2, momentum=0.5)
    assert est.thresholds().tolist() == [0.5, 0.5]
    est.update(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
    # tau = 0.5*0.5 + 0.5*0.75; p = 0.5*[.5,.5] + 0.5*[.75,.25]; hist = 0.5*[.5,.5] + 0.5*[1, 0]
    assert est.global_threshold.item() == pytest.approx(0.625)
    assert est.class_probs.tolist() == pytest.approx([0.625, 0.375])
    assert est.label_hist.tolist() == pytest.approx([0.75, 0.25])
    assert est.thresholds().tolist() == pytest.approx([0.625, 0.625 * 0.375 / 0.625])
    assert est.mask(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])).tolist() == [1.0, 0.0, 1.0]


def test_freematch_loss_and_fairness_term():
    from ssl_text.algorithms.freematch import fairness_loss

    algo = make("freematch", momentum=0.5, lambda_u=1.0, lambda_f=0.1)
    out = algo.compute_loss(TableModel(TABLE), batch(), state())
    # weak probs 0.993 and 0.622 for class 0: tau = 0.25 + 0.5 * 0.808 = 0.654, both predicted class 0
    assert out.mask.tolist() == [1.0, 0.0]
    unsup = F.cross_entropy(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item() / 2
    assert out.parts["loss_ulb"].item() == pytest.approx(unsup)
    # fairness by hand: one masked strong view [1, 1] -> pbar = [.5, .5], hist = [1, 0]
    p_t, h_t = algo.thresholds.class_probs, algo.thresholds.label_hist
    running = p_t / h_t / (p_t / h_t).sum()
    batch_mean = torch.tensor([0.5, 0.0]) / 0.5  # pbar / hist (1/0 -> 0), normalised
    expected = (running * torch.log(batch_mean + 1e-12)).sum()
    assert out.parts["loss_fairness"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.total.item() == pytest.approx(lb_loss().item() + unsup + 0.1 * expected.item(), rel=1e-5)
    assert fairness_loss(torch.zeros(2, 2), torch.zeros(2), p_t, h_t).item() == 0.0


# ---------------------------------------------------------------------------------------
# Noisy student and pseudo-labeling
# ---------------------------------------------------------------------------------------


def test_noisy_student_soft_cross_entropy_against_teacher_targets():
    algo = make("noisy_student", lambda_u=0.5)
    targets = torch.tensor([[0.8, 0.2], [0.0, 1.0]])
    out = algo.compute_loss(TableModel(TABLE), {**batch(), "ulb_targets": targets}, state())
    unsup = soft_cross_entropy(torch.tensor(TABLE)[[4, 5]], targets).mean()
    assert out.total.item() == pytest.approx(lb_loss().item() + 0.5 * unsup.item(), rel=1e-6)
    assert out.pseudo_labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="self-train"):
        algo.compute_loss(TableModel(TABLE), batch(), state())


def test_select_pseudo_labels_filters_hardens_and_balances():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.55, 0.45], [0.3, 0.7], [0.95, 0.05]])
    rows, targets = select_pseudo_labels(probs, PseudoLabeling(tau=0.6))
    assert rows.tolist() == [0, 1, 3, 4] and np.allclose(targets, probs[rows])
    rows, targets = select_pseudo_labels(probs, PseudoLabeling(tau=0.6, hard_labels=True))
    assert targets.tolist() == [[1, 0], [1, 0], [0, 1], [1, 0]]
    # balanced to a 50/50 prior over 4 kept: the 2 most confident of class 0, class 1's one example twice
    rows, _ = select_pseudo_labels(probs, PseudoLabeling(tau=0.6, balance=True), prior=np.array([0.5, 0.5]))
    assert rows.tolist() == [0, 3, 3, 4]


@pytest.mark.parametrize(
    "name,args,key",
    [
        ("temporal_ensembling", {"alpha": 1.0}, "algorithm.alpha"),
        ("mixmatch", {"T": 0.0}, "algorithm.T"),
        ("mixmatch", {"alpha": 0.0}, "algorithm.alpha"),
        ("mixmatch", {"mix_layer": -1}, "algorithm.mix_layer"),
        ("freematch", {"momentum": 1.0}, "algorithm.momentum"),
        ("pi_model", {"rampup_steps": -1}, "algorithm.rampup_steps"),
        ("flexmatch", {"tau": 1.0}, "algorithm.tau"),
    ],
)
def test_bad_zoo_settings_are_refused(name, args, key):
    cfg = from_dict(ALGORITHMS[name].Config, {"name": name, **args})
    with pytest.raises(ConfigError, match=key):
        cfg.validate("x.yaml")


# ---------------------------------------------------------------------------------------
# End to end on the tiny BERT: exact resume, self-training
# ---------------------------------------------------------------------------------------


STATEFUL = {
    "temporal_ensembling": {"rampup_steps": 0},
    "mean_teacher": {"rampup_steps": 0},
    "flexmatch": {"tau": 0.3},
    "freematch": {"momentum": 0.9},
    "fixmatch": {"tau": 0.3, "dist_align_momentum": 0.5},  # distribution alignment keeps running priors
    "uda": {"tau": 0.3, "dist_align_momentum": 0.5},
    "mixmatch": {"dist_align_momentum": 0.5},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_resume_of_stateful_algorithms_reproduces_the_uninterrupted_run(toy_config, tmp_path, name):
    raw = toy_config(name, **STATEFUL[name])
    raw["trainer"].update(max_steps=6, eval_every=3, save_every=3, keep_checkpoints=3)
    if getattr(ALGORITHMS[name], "requires_ema", False):
        raw["trainer"].update(ema_decay=0.9, evaluate_ema=True)
    full = train(parse_config(raw))
    full_dir = Path(raw["output_dir"])

    stopped = tmp_path / "stopped"
    shutil.copytree(full_dir, stopped)
    shutil.rmtree(stopped / "checkpoints" / "step_0000006")
    (stopped / "metrics.json").unlink()
    raw["output_dir"] = str(stopped)
    resumed = train(parse_config(raw), resume=True)

    a = load_file(str(full_dir / "checkpoints/step_0000006/model.safetensors"))
    b = load_file(str(stopped / "checkpoints/step_0000006/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a), f"{name}: resumed weights differ from the uninterrupted run"
    for path in sorted((full_dir / "checkpoints/step_0000006").glob("custom_checkpoint_*.pkl")):
        x = torch.load(path, weights_only=False)
        y = torch.load(stopped / path.relative_to(full_dir), weights_only=False)
        if "last_logs" in x:  # the loop counters hold timings
            continue
        assert json.dumps(_plain(x)) == json.dumps(_plain(y)), f"{name}: {path.name} (algorithm/EMA state) differs"
    assert resumed["test"] == full["test"]
    assert resumed["last_train_logs"]["loss"] == full["last_train_logs"]["loss"]


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj if isinstance(obj, (int, float, str, bool, type(None))) else repr(obj)


@pytest.mark.slow
def test_self_training_two_rounds_writes_rounds_json_and_resume_skips_finished_rounds(
    toy_config, tmp_path, monkeypatch
):
    import yaml

    import ssl_text.pipelines.self_training as st
    from ssl_text.cli.main import main

    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2, eval_every=2, save_every=2)
    raw["output_dir"] = str(tmp_path / "self_train")
    config = tmp_path / "teacher.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["self-train", str(config), "--rounds", "2", "--tau", "0.0", "--hard-labels"]) == 0

    out = Path(raw["output_dir"])
    summary = json.loads((out / "rounds.json").read_text())
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert [r["algorithm"] for r in rounds] == ["supervised", "noisy_student", "noisy_student"]
    assert summary["pseudo_labeling"] == {"tau": 0.0, "hard_labels": True, "balance": False, "lambda_u": 1.0,
                                          "agreement": False}
    for r in rounds[1:]:
        stats = r["pseudo_labels"]
        assert stats["kept"] == stats["pool_size"] == 184  # 200 rows - 4 x 4 labeled; tau 0 keeps all
        assert sum(stats["class_distribution"].values()) == 184
        # the accuracy is that of the saved pool's one-hot targets against its true labels, all kept at tau 0
        pool = datasets.load_from_disk(str(out / "pools" / f"round_{r['round']}"))
        correct = np.argmax(pool["pseudo_target"], axis=1) == np.asarray(pool["analysis_label"])
        assert stats["pseudo_label_accuracy"] == pytest.approx(correct.mean()) == stats["pool_accuracy"]
        assert "test" in r
    for r in range(3):
        assert (out / f"round_{r}" / "best").is_dir() and (out / f"round_{r}" / "metrics.json").exists()
    student = yaml.safe_load((out / "round_2" / "config.yaml").read_text())
    assert student["algorithm"]["name"] == "noisy_student"
    assert student["data"]["unlabeled"]["path"] == str(out / "pools" / "round_2")

    # Resume: finished rounds are skipped; an unfinished round 2 (no record, no metrics) is trained again.
    calls = []
    real_train = st.train
    def spy(cfg, resume):
        calls.append((cfg.output_dir, resume))
        return real_train(cfg, resume=resume)

    monkeypatch.setattr(st, "train", spy)
    assert main(["self-train", str(config), "--rounds", "2", "--tau", "0.0", "--hard-labels", "--resume"]) == 0
    assert calls == []
    summary["rounds"] = summary["rounds"][:2]
    (out / "rounds.json").write_text(json.dumps(summary))
    (out / "round_2" / "metrics.json").unlink()
    assert main(["self-train", str(config), "--rounds", "2", "--tau", "0.0", "--hard-labels", "--resume"]) == 0
    assert calls == [(str(out / "round_2"), True)]
    assert [r["round"] for r in json.loads((out / "rounds.json").read_text())["rounds"]] == [0, 1, 2]

    # Resuming with other pseudo-labeling options, or starting over without --resume, is refused.
    assert main(["self-train", str(config), "--rounds", "2", "--tau", "0.5", "--resume"]) == 2
    assert main(["self-train", str(config), "--rounds", "2"]) == 2
