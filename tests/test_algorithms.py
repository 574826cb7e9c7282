"""Algorithm losses on hand-made logits, and the registry contract."""

from dataclasses import fields
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ssl_text.algorithms import ALGORITHMS, KNOWN_VIEWS, TrainState, build_algorithm
from ssl_text.config import ConfigError, from_dict


class TableModel(torch.nn.Module):
    """logits = table[input_ids[:, 0]]: each 'text' is one row id with fixed logits."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(table, dtype=torch.float))

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids[:, 0]])


def view(*rows):
    ids = torch.tensor(rows)[:, None]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


STATE = TrainState(step=50, max_steps=100, num_classes=2)
TABLE = [
    [2.0, 0.0],  # 0: labeled, class 0
    [0.0, 0.0],  # 1: labeled, class 1
    [5.0, 0.0],  # 2: weak view, confident class 0 (p = 0.9933)
    [0.5, 0.0],  # 3: weak view, unsure (p = 0.62)
    [1.0, 1.0],  # 4: strong view of 2
    [0.0, 3.0],  # 5: strong view of 3
]


def batch():
    return {
        "lb": view(0, 1),
        "lb_labels": torch.tensor([0, 1]),
        "ulb_weak": view(2, 3),
        "ulb_strong": view(4, 5),
    }


def make(name, **args):
    cfg = from_dict(ALGORITHMS[name].Config, {"name": name, **args})
    return build_algorithm(cfg, num_classes=2)


def lb_loss():
    table = torch.tensor(TABLE)
    return F.cross_entropy(table[[0, 1]], torch.tensor([0, 1]))


def test_registry_contract():
    for name, cls in ALGORITHMS.items():
        assert cls.Config().name == name, f"{name}: Config.name must equal its registry key"
        assert set(cls.views) <= set(KNOWN_VIEWS), f"{name} asks for unknown views {cls.views}"
        assert "lb" in cls.views
        assert callable(getattr(cls, "compute_loss"))
        assert {f.name for f in fields(cls.Config)} >= {"name"}


def test_supervised_is_cross_entropy():
    out = make("supervised").compute_loss(TableModel(TABLE), batch(), STATE)
    assert out.total.item() == pytest.approx(lb_loss().item())


def test_fixmatch_uses_only_confident_weak_views_as_targets():
    out = make("fixmatch", tau=0.95, lambda_u=2.0).compute_loss(TableModel(TABLE), batch(), STATE)
    # Only example 2 is confident (p=0.9933): its strong view [1, 1] is trained towards class 0.
    unsup = F.cross_entropy(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item() / 2  # mean over mu*B=2
    assert out.mask.tolist() == [1.0, 0.0]
    assert out.pseudo_labels.tolist() == [0, 0]
    assert out.parts["loss_ulb"].item() == pytest.approx(unsup)
    assert out.total.item() == pytest.approx(lb_loss().item() + 2.0 * unsup)


def test_fixmatch_gradient_flows_only_through_strong_and_labeled_views():
    model = TableModel(TABLE)
    make("fixmatch", tau=0.5).compute_loss(model, batch(), STATE).total.backward()
    assert model.table.grad[[2, 3]].abs().sum() == 0  # weak views are targets, not trained
    assert model.table.grad[[0, 1, 4, 5]].abs().sum(dim=1).gt(0).all()


def test_pseudo_label_ramps_its_weight():
    algo = make("pseudo_label", tau=0.95, rampup_steps=100)
    model = TableModel(TABLE)
    early = algo.compute_loss(model, batch(), TrainState(0, 100, 2))
    late = algo.compute_loss(model, batch(), TrainState(100, 100, 2))
    assert early.total.item() == pytest.approx(lb_loss().item())  # weight 0 at step 0
    unsup = F.cross_entropy(torch.tensor([[5.0, 0.0]]), torch.tensor([0])).item() / 2
    assert late.total.item() == pytest.approx(lb_loss().item() + unsup)


def test_uda_kl_to_sharpened_target_with_confidence_mask():
    out = make("uda", tau=0.6, T=0.4, lambda_u=1.0).compute_loss(TableModel(TABLE), batch(), STATE)
    weak = torch.softmax(torch.tensor([[5.0, 0.0], [0.5, 0.0]]), -1)
    target = weak ** 2.5 / (weak ** 2.5).sum(-1, keepdim=True)
    strong = torch.log_softmax(torch.tensor([[1.0, 1.0], [0.0, 3.0]]), -1)
    kl = (target * (target.log() - strong)).sum(-1)
    assert out.mask.tolist() == [1.0, 1.0]  # 0.62 >= 0.6
    assert out.parts["loss_ulb"].item() == pytest.approx(kl.mean().item(), rel=1e-5)


def test_uda_tsa_drops_labeled_examples_above_threshold():
    algo = make("uda", tsa="linear")
    # At step 0 the threshold is 1/C = 0.5: example 0 (p=0.88) is dropped, example 1 (p=0.5) kept.
    out = algo.compute_loss(TableModel(TABLE), batch(), TrainState(0, 100, 2))
    assert out.parts["tsa_keep_rate"].item() == pytest.approx(0.5)
    assert out.parts["loss_lb"].item() == pytest.approx(F.cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item())


@pytest.mark.parametrize("tau", [0.0, 1.0, 1.5, -0.1])
def test_threshold_outside_unit_interval_is_refused(tau):
    cfg = from_dict(ALGORITHMS["fixmatch"].Config, {"name": "fixmatch", "tau": tau})
    with pytest.raises(ConfigError, match="algorithm.tau"):
        cfg.validate("x.yaml")


def test_align_distribution_rescales_by_the_prior_ratio():
    from ssl_text.algorithms.distribution_alignment import align_distribution

    aligned = align_distribution(torch.tensor([[0.6, 0.4]]), torch.tensor([0.5, 0.5]), torch.tensor([0.75, 0.25]))
    # [0.6 / 0.75, 0.4 / 0.25] * 0.5 = [0.4, 0.8] -> [1/3, 2/3]
    assert aligned.tolist()[0] == pytest.approx([1 / 3, 2 / 3])


def test_distribution_alignment_priors_after_known_updates_pool_processes():
    from ssl_text.algorithms.distribution_alignment import DistributionAlignment

    align = DistributionAlignment(num_classes=2, momentum=0.5)
    align.update(torch.tensor([0, 0, 1, -100]), torch.tensor([[0.9, 0.1], [0.7, 0.3]]))
    assert align.lb_prior.tolist() == pytest.approx([7 / 12, 5 / 12])  # 0.5 * 1/2 + 0.5 * [2/3, 1/3]
    assert align.ulb_prior.tolist() == pytest.approx([0.65, 0.35])  # 0.5 * 1/2 + 0.5 * [0.8, 0.2]

    # Two processes with different numbers of rows: the sums are pooled, not the per-process means.
    other = {"hist": torch.tensor([0.0, 3.0]), "rows": torch.tensor([[0.1, 0.9]])}
    two = DistributionAlignment(num_classes=2, momentum=0.0)
    two.update(torch.tensor([0]), torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]),
               gather=lambda stats: torch.cat([stats, torch.cat([other["hist"], other["rows"].sum(0), torch.ones(1)])[None]]))
    assert two.lb_prior.tolist() == pytest.approx([0.25, 0.75])
    assert two.ulb_prior.tolist() == pytest.approx([(1.5 + 0.1) / 4, (1.5 + 0.9) / 4])

    before = align.state_dict()
    align.update(torch.tensor([1]), torch.tensor([[float("nan"), 0.5]]))  # a skipped non-finite step
    assert torch.equal(align.ulb_prior, before["ulb_prior"]) and torch.equal(align.lb_prior, before["lb_prior"])

    restored = DistributionAlignment(num_classes=2, momentum=0.5)
    restored.load_state_dict(align.state_dict())
    assert torch.equal(restored.ulb_prior, align.ulb_prior) and torch.equal(restored.lb_prior, align.lb_prior)


def test_fixmatch_with_distribution_alignment_raises_an_under_predicted_class():
    # Weak views: two texts with p = [0.62, 0.38]. Without alignment both go to class 0. With the
    # labeled prior balanced and the pool's running prior at [0.9, 0.1] (momentum ~1 keeps it there),
    # the aligned probabilities are [0.15, 0.85]: class 1 wins and passes tau = 0.8.
    table = [[2.0, 0.0], [0.0, 2.0], [0.5, 0.0], [0.5, 0.0], [1.0, 1.0], [1.0, 1.0]]
    plain = make("fixmatch", tau=0.8).compute_loss(TableModel(table), batch(), STATE)
    assert plain.pseudo_labels.tolist() == [0, 0] and plain.mask.tolist() == [0.0, 0.0]
    algo = make("fixmatch", tau=0.8, dist_align_momentum=0.999999)
    algo.align.ulb_prior = torch.tensor([0.9, 0.1])
    out = algo.compute_loss(TableModel(table), batch(), STATE)
    assert out.pseudo_labels.tolist() == [1, 1] and out.mask.tolist() == [1.0, 1.0]
    assert algo.state_dict()["ulb_prior"][0] < 0.9  # the running prior moved towards this batch


@pytest.mark.parametrize("name", ["fixmatch", "uda", "mixmatch"])
@pytest.mark.parametrize("momentum", [0.0, 1.0, 2.0])
def test_dist_align_momentum_outside_unit_interval_is_refused(name, momentum):
    cfg = from_dict(ALGORITHMS[name].Config, {"name": name, "dist_align_momentum": momentum})
    with pytest.raises(ConfigError, match="algorithm.dist_align_momentum"):
        cfg.validate("x.yaml")


@pytest.mark.parametrize("name", ["fixmatch", "uda"])
def test_ema_teacher_labels_the_weak_view_and_the_model_trains_the_strong_view(name):
    # The EMA copy disagrees with the model on the weak views: it is confident in class 1 for
    # row 2 and in class 0 for row 3; the model itself is confident only in class 0 for row 2.
    ema_table = [row[:] for row in TABLE]
    ema_table[2], ema_table[3] = [0.0, 5.0], [5.0, 0.0]
    model, ema = TableModel(TABLE), TableModel(ema_table)
    algo = make(name, tau=0.95, teacher="ema")
    assert algo.requires_ema and not make(name).requires_ema
    out = algo.compute_loss(model, batch(), TrainState(50, 100, 2, ema_model=ema))
    assert out.pseudo_labels.tolist() == [1, 0] and out.mask.tolist() == [1.0, 1.0]
    own = make(name, tau=0.95).compute_loss(model, batch(), STATE)
    assert own.pseudo_labels.tolist() == [0, 0] and own.mask.tolist() == [1.0, 0.0]
    out.total.backward()
    assert ema.table.grad is None
    assert model.table.grad[[2, 3]].abs().sum() == 0 and model.table.grad[[4, 5]].abs().sum(dim=1).gt(0).all()


@pytest.mark.parametrize("name", ["fixmatch", "uda"])
def test_ema_teacher_without_an_ema_copy_says_to_set_the_decay(name):
    with pytest.raises(ValueError, match="trainer.ema_decay"):
        make(name, teacher="ema").compute_loss(TableModel(TABLE), batch(), STATE)


def test_an_unknown_teacher_is_refused_with_the_key_named():
    with pytest.raises(ConfigError, match="teacher"):
        make("fixmatch", teacher="student")
