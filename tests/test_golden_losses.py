"""Golden losses: every algorithm, run a few steps through the real `train` pipeline, gives these exact numbers.

Each case trains a tiny random BERT (the conftest's, initialised wider so that its predictions are confident
enough for confidence masks to keep some examples and drop others) on the first 40 toy texts (16 drawn as
labeled, 24 as the unlabeled pool) for 6 optimizer steps of 2 accumulated micro-batches: warm-up then linear
decay, weight decay, gradient clipping that bites on about half the steps (so that scaling the loss
shows), and, where the algorithm has one, an EMA teacher (decay 0.7, not the symmetric 0.5). One CPU
thread, float32. Every logged training quantity of every step is pinned (losses, mask rates, pseudo-label
accuracies, the learning rate), and so is where the saved weights ended up. A change to a loss's math, a
default, the schedule, clipping, accumulation, the EMA, the batching or the sampling moves these numbers;
a refactor that keeps training the same does not.

The values were recorded at commit 60a8082 (the layout step of issue #17). When a change is meant to
alter training, the failure message prints the new trace as a Python literal: paste it into GOLDEN and
say in the commit which figures in docs/benchmarks.md it changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from transformers import BertConfig, BertModel, BertTokenizer

from ssl_text.algorithms import ALGORITHMS
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from tests.conftest import FIXTURES
from tests.toy_data import TOPICS, make_texts
from tests.toy_ner import make_sentences, write_conll

REL = 1e-5  # float32 on one CPU thread is deterministic; this leaves room for another CPU's kernels only
STEPS = 6
LOGGED_NOT_PINNED = {"examples_per_second"}  # wall-clock, not math

# name -> (algorithm section, trainer overrides). The variants take the other code paths of an algorithm.
# Thresholds sit low and ramp-ups short so that the unlabeled terms of a random model count within 6 steps.
CASES = {
    "supervised": ({"name": "supervised"}, {"layer_decay": 0.8}),
    "pseudo_label": ({"name": "pseudo_label", "tau": 0.5, "rampup_steps": 2}, {}),
    "fixmatch": ({"name": "fixmatch", "tau": 0.5}, {}),
    "fixmatch_dist_align": ({"name": "fixmatch", "tau": 0.5, "dist_align_momentum": 0.9}, {}),
    "fixmatch_ema_teacher": ({"name": "fixmatch", "tau": 0.5, "teacher": "ema"}, {"ema_decay": 0.7}),
    "uda": ({"name": "uda", "tau": 0.5}, {}),
    "uda_ema_teacher_tsa": ({"name": "uda", "tau": 0.5, "teacher": "ema", "tsa": "linear"}, {"ema_decay": 0.7}),
    "pi_model": ({"name": "pi_model", "rampup_steps": 2}, {}),
    "temporal_ensembling": ({"name": "temporal_ensembling", "rampup_steps": 2}, {}),
    "mean_teacher": ({"name": "mean_teacher", "rampup_steps": 2}, {"ema_decay": 0.7, "evaluate_ema": True}),
    "mixmatch": ({"name": "mixmatch", "rampup_steps": 2}, {}),
    "mixmatch_mix_layer": ({"name": "mixmatch", "rampup_steps": 2, "mix_layer": 1}, {}),
    "flexmatch": ({"name": "flexmatch", "tau": 0.7}, {}),
    "freematch": ({"name": "freematch", "momentum": 0.9}, {}),
    "noisy_student": ({"name": "noisy_student"}, {}),
    "distill": ({"name": "distill"}, {}),
    "distill_alpha_temperature": ({"name": "distill", "alpha": 0.5, "temperature": 2.0}, {}),
    "fixmatch_ner": ({"name": "fixmatch", "tau": 0.5}, {}),  # per word, pseudo-tags decoded as valid BIO
}
NER_CASES = {"fixmatch_ner"}  # task ner on toy CoNLL sentences: the token-level paths
TEACHER_LABELED = {"noisy_student", "distill"}  # students of a teacher: the pool carries its targets


def test_every_algorithm_has_a_golden_case():
    assert {args["name"] for args, _ in CASES.values()} == set(ALGORITHMS)
    assert NER_CASES <= set(CASES)
    assert set(GOLDEN) == set(CASES)


@pytest.fixture(scope="module")
def confident_bert_dir(tmp_path_factory) -> str:
    """The conftest's tiny BERT with a wider initialisation (std 0.2, not 0.02): its random predictions are
    confident enough (max probability 0.34 to 0.78) that confidence masks keep some examples and drop others."""
    path = tmp_path_factory.mktemp("confident_bert")
    tokenizer = BertTokenizer(vocab=str(FIXTURES / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.2,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def teacher_labeled_pool(path: Path) -> str:
    """Unlabeled toy texts with a teacher's soft targets, as `ssl-text self-train` and `ssl-text distill` write them."""
    names = sorted(TOPICS)
    with open(path, "w") as f:
        for topic, text in make_texts(40, seed=7):
            target = [0.7 if n == topic else 0.1 for n in names]
            f.write(json.dumps({"text": text, "pseudo_target": target, "analysis_label": names.index(topic)}) + "\n")
    return str(path)


def weight_movement(run_best: Path, initial: Path) -> dict[str, float]:
    """Squared L2 distance of the saved encoder from the initial one, and the L1 norm of the new head.

    (No L1 distance: weight decay moves every unused embedding by a few float32 ulps, which sums to noise.)"""
    final = load_file(str(run_best / "model.safetensors"))
    start = load_file(str(initial / "model.safetensors"))
    moved = head = 0.0
    for key, value in final.items():
        value = value.double()
        origin = next((start[k] for k in (key, key.split(".", 1)[-1]) if k in start), None)
        if origin is None:  # the classification head: initialised by the run's seed
            head += float(value.abs().sum())
        else:
            moved += float(((value - origin.double()) ** 2).sum())
    return {"delta_l2_squared": moved, "head_l1": head}


def trace(case: str, toy_files, confident_bert_dir, tmp_path, monkeypatch) -> dict:
    """Train one case; return every logged training quantity per step and the weight movement."""
    algorithm, trainer = CASES[case]
    data = {
        "labeled": {"path": toy_files["train"], "limit": 40},
        "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": algorithm["name"] not in TEACHER_LABELED},
        "max_length": 32,
    }
    if algorithm["name"] in TEACHER_LABELED:
        data["unlabeled"] = {"path": teacher_labeled_pool(tmp_path / "pool.jsonl")}
    task = {}
    if case in NER_CASES:  # 16 tagged sentences drawn, 24 as the pool; no word deletion (it would drop tags)
        data["labeled"] = {"path": str(write_conll(tmp_path / "ner.txt", make_sentences(40, seed=1)))}
        data["sampling"] = {"num_examples": 16, "seed": 0, "rest_as_unlabeled": True}
        task = {"task": "ner", "views": {"strong": {"mask_prob": 0.2, "delete_prob": 0.0}}}
    raw = {
        "output_dir": str(tmp_path / "run"),
        **task,
        "model": {"name_or_path": confident_bert_dir},
        "data": data,
        "algorithm": algorithm,
        "trainer": {
            "max_steps": STEPS,
            "lb_batch_size": 4,
            "mu": 2,
            "gradient_accumulation_steps": 2,
            "learning_rate": 5e-3,
            "warmup_ratio": 0.5,
            "max_grad_norm": 3.5,
            "weight_decay": 0.01,
            "mixed_precision": "no",
            "seed": 3,
            "log_every": 1,
            "save_every": STEPS,
            "eval_every": STEPS,
            "progress_bar": False,
            "report_to": [],
            **trainer,
        },
    }
    steps: dict[int, dict] = {}
    log = Accelerator.log

    def record(self, values, step=None, **kwargs):
        for key, value in values.items():
            if key.startswith("train/") and key.removeprefix("train/") not in LOGGED_NOT_PINNED:
                steps.setdefault(step, {})[key.removeprefix("train/")] = float(value)
        return log(self, values, step=step, **kwargs)

    monkeypatch.setattr(Accelerator, "log", record)
    train(parse_config(raw, "<golden>"))
    return {
        "steps": [steps[step] for step in sorted(steps)],
        **weight_movement(tmp_path / "run" / "best", Path(confident_bert_dir)),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_losses(case, toy_files, confident_bert_dir, tmp_path, monkeypatch, one_thread):
    got = trace(case, toy_files, confident_bert_dir, tmp_path, monkeypatch)
    expected = GOLDEN[case]
    message = f"training of `{case}` changed; if that is meant, the new golden values are:\n{case!r}: {got!r},"
    assert len(got["steps"]) == len(expected["steps"]) == STEPS, message
    for step, (have, want) in enumerate(zip(got["steps"], expected["steps"]), start=1):
        assert set(want) <= set(have), f"step {step}: not logged {sorted(set(want) - set(have))}; {message}"
        assert {k: have[k] for k in want} == pytest.approx(want, rel=REL, abs=1e-7), f"step {step}: {message}"
    for key in ("delta_l2_squared", "head_l1"):
        assert got[key] == pytest.approx(expected[key], rel=REL), f"{key}: {message}"


GOLDEN: dict[str, dict] = {  # recorded at commit 60a8082 on one CPU thread
    "distill": {
        "steps": [
            {"loss": 1.449493646621704, "loss_kd": 1.449493646621704, "mask_rate": 1.0, "teacher_agreement": 0.1875, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.1875},
            {"loss": 1.482438087463379, "loss_kd": 1.482438087463379, "mask_rate": 1.0, "teacher_agreement": 0.25, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.125},
            {"loss": 1.4837017059326172, "loss_kd": 1.4837017059326172, "mask_rate": 1.0, "teacher_agreement": 0.25, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.25},
            {"loss": 1.4238531589508057, "loss_kd": 1.4238531589508057, "mask_rate": 1.0, "teacher_agreement": 0.5, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.125},
            {"loss": 1.5072088241577148, "loss_kd": 1.5072088241577148, "mask_rate": 1.0, "teacher_agreement": 0.1875, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.125},
            {"loss": 1.3555028438568115, "loss_kd": 1.3555028438568115, "mask_rate": 1.0, "teacher_agreement": 0.4375, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0, "pseudo_label_prior_distance": 0.125},
        ],
        "delta_l2_squared": 1.7760000462836034,
        "head_l1": 18.193910684727598,
    },
    "distill_alpha_temperature": {
        "steps": [
            {"loss": 3.5173587799072266, "loss_kd": 5.449472904205322, "mask_rate": 1.0, "loss_lb": 1.5852447748184204, "teacher_agreement": 0.375, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.1875},
            {"loss": 3.6336581707000732, "loss_kd": 5.711952209472656, "mask_rate": 1.0, "loss_lb": 1.5553638935089111, "teacher_agreement": 0.125, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.125},
            {"loss": 3.413591146469116, "loss_kd": 5.581687927246094, "mask_rate": 1.0, "loss_lb": 1.2454943656921387, "teacher_agreement": 0.25, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.25},
            {"loss": 3.50834321975708, "loss_kd": 5.638049602508545, "mask_rate": 1.0, "loss_lb": 1.3786365985870361, "teacher_agreement": 0.3125, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.125},
            {"loss": 3.7866697311401367, "loss_kd": 5.767678260803223, "mask_rate": 1.0, "loss_lb": 1.8056614398956299, "teacher_agreement": 0.125, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.125},
            {"loss": 3.3936142921447754, "loss_kd": 5.582657337188721, "mask_rate": 1.0, "loss_lb": 1.20457124710083, "teacher_agreement": 0.25, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0, "pseudo_label_prior_distance": 0.125},
        ],
        "delta_l2_squared": 1.7678632741686287,
        "head_l1": 18.2000592071563,
    },
    "fixmatch": {
        "steps": [
            {"loss": 2.0772132873535156, "loss_lb": 1.6306960582733154, "loss_ulb": 0.4465171694755554, "mask_rate": 0.375, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1666666716337204, "lr": 0.003333333333333333},
            {"loss": 2.179154872894287, "loss_lb": 1.6715872287750244, "loss_ulb": 0.5075675845146179, "mask_rate": 0.625, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.30000001192092896, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.45731258392334, "loss_lb": 1.8067877292633057, "loss_ulb": 0.6505247354507446, "mask_rate": 0.9375, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.20000000298023224, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.275514602661133, "loss_lb": 1.8270035982131958, "loss_ulb": 0.44851115345954895, "mask_rate": 0.875, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1428571492433548, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.8223596811294556, "loss_lb": 1.3552464246749878, "loss_ulb": 0.46711331605911255, "mask_rate": 0.875, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1428571492433548, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.2630553245544434, "loss_lb": 1.9343644380569458, "loss_ulb": 0.3286910057067871, "mask_rate": 0.6875, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.1818181872367859, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 2.200332536526457,
        "head_l1": 18.300675655831583,
    },
    "fixmatch_dist_align": {
        "steps": [
            {"loss": 1.7867680788040161, "loss_lb": 1.6306960582733154, "loss_ulb": 0.15607194602489471, "mask_rate": 0.125, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.0, "lr": 0.003333333333333333},
            {"loss": 1.871788501739502, "loss_lb": 1.6316008567810059, "loss_ulb": 0.24018758535385132, "mask_rate": 0.25, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.5, "lr": 0.005},
            {"loss": 1.6226787567138672, "loss_lb": 1.6226787567138672, "loss_ulb": 0.0, "mask_rate": 0.0, "pseudo_label_accuracy": 0.5, "lr": 0.005},
            {"loss": 1.7490029335021973, "loss_lb": 1.5315802097320557, "loss_ulb": 0.2174226939678192, "mask_rate": 0.125, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.5, "lr": 0.003333333333333333},
            {"loss": 1.6791489124298096, "loss_lb": 1.3793306350708008, "loss_ulb": 0.299818217754364, "mask_rate": 0.25, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.0016666666666666666},
            {"loss": 1.792070984840393, "loss_lb": 1.6145391464233398, "loss_ulb": 0.17753177881240845, "mask_rate": 0.1875, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3333333432674408, "lr": 0.0},
        ],
        "delta_l2_squared": 1.9023814707523838,
        "head_l1": 18.2237794167595,
    },
    "fixmatch_ema_teacher": {
        "steps": [
            {"loss": 2.0772132873535156, "loss_lb": 1.6306960582733154, "loss_ulb": 0.4465171694755554, "mask_rate": 0.375, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1666666716337204, "lr": 0.003333333333333333},
            {"loss": 1.9359359741210938, "loss_lb": 1.6715872287750244, "loss_ulb": 0.26434874534606934, "mask_rate": 0.375, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.5, "lr": 0.005},
            {"loss": 2.098787307739258, "loss_lb": 1.7369766235351562, "loss_ulb": 0.3618108332157135, "mask_rate": 0.5, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.0908308029174805, "loss_lb": 1.6081167459487915, "loss_ulb": 0.4827141761779785, "mask_rate": 0.6875, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1818181872367859, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.7640187740325928, "loss_lb": 1.3058311939239502, "loss_ulb": 0.4581875205039978, "mask_rate": 0.5625, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1111111119389534, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.1410112380981445, "loss_lb": 1.780936360359192, "loss_ulb": 0.3600749373435974, "mask_rate": 0.5625, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1111111119389534, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 1.9927944986638724,
        "head_l1": 18.255577223026194,
    },
    "fixmatch_ner": {
        "steps": [
            {"loss": 3.111891984939575, "loss_lb": 2.9212141036987305, "loss_ulb": 0.19067786633968353, "mask_rate": 0.16853609681129456, "mask_rate_O": 0.0, "mask_rate_LOC": 0.11764705926179886, "mask_rate_ORG": 0.1599999964237213, "mask_rate_PER": 0.21052631735801697, "pseudo_label_accuracy": 0.06779661029577255, "masked_pseudo_label_accuracy": 0.05000000074505806, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.830733949797006},
            {"loss": 2.582878589630127, "loss_lb": 2.3637328147888184, "loss_ulb": 0.219145730137825, "mask_rate": 0.12159329652786255, "mask_rate_O": 0.20000000298023224, "mask_rate_LOC": 0.10810811072587967, "mask_rate_ORG": 0.095238097012043, "mask_rate_PER": 0.12820513546466827, "pseudo_label_accuracy": 0.09345794469118118, "masked_pseudo_label_accuracy": 0.07692307978868484, "lr": 0.005},
            {"loss": 1.5436460971832275, "loss_lb": 1.2841613292694092, "loss_ulb": 0.2594847083091736, "mask_rate": 0.30825525522232056, "mask_rate_O": 0.3777777850627899, "mask_rate_LOC": 0.20000000298023224, "mask_rate_ORG": 0.0, "mask_rate_PER": 0.0, "pseudo_label_accuracy": 0.5982906222343445, "masked_pseudo_label_accuracy": 0.7777777910232544, "lr": 0.005, "pseudo_label_prior_distance": 0.18348622549359406},
            {"loss": 1.2759742736816406, "loss_lb": 1.0152007341384888, "loss_ulb": 0.2607734501361847, "mask_rate": 0.9377394914627075, "mask_rate_O": 0.9459459185600281, "mask_rate_LOC": 0.0, "pseudo_label_accuracy": 0.7589285969734192, "masked_pseudo_label_accuracy": 0.761904776096344, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.23853211009174313},
            {"loss": 1.125736951828003, "loss_lb": 0.9936648011207581, "loss_ulb": 0.13207218050956726, "mask_rate": 1.0, "mask_rate_O": 1.0, "pseudo_label_accuracy": 0.7454545497894287, "masked_pseudo_label_accuracy": 0.7454545497894287, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.23853211009174313},
            {"loss": 1.161062479019165, "loss_lb": 1.0725772380828857, "loss_ulb": 0.0884852334856987, "mask_rate": 0.9925373196601868, "mask_rate_O": 0.9916666746139526, "pseudo_label_accuracy": 0.7666666507720947, "masked_pseudo_label_accuracy": 0.7647058963775635, "lr": 0.0, "pseudo_label_prior_distance": 0.23853211009174313},
        ],
        "delta_l2_squared": 3.1129166319539596,
        "head_l1": 34.84892841678811,
    },
    "flexmatch": {
        "steps": [
            {"loss": 2.910367488861084, "loss_lb": 1.6306960582733154, "loss_ulb": 1.2796714305877686, "mask_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.5625},
            {"loss": 2.444378614425659, "loss_lb": 1.6715071201324463, "loss_ulb": 0.7728714346885681, "mask_rate": 1.0, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.4023056030273438, "loss_lb": 1.909481406211853, "loss_ulb": 0.4928242564201355, "mask_rate": 1.0, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.2498788833618164, "loss_lb": 1.9115487337112427, "loss_ulb": 0.33833014965057373, "mask_rate": 0.8125, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.07692307978868484, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.4754219055175781, "loss_lb": 1.337538480758667, "loss_ulb": 0.13788345456123352, "mask_rate": 0.25, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.25, "lr": 0.0016666666666666666},
            {"loss": 1.7447373867034912, "loss_lb": 1.7447373867034912, "loss_ulb": 0.0, "mask_rate": 0.0, "pseudo_label_accuracy": 0.3125, "lr": 0.0},
        ],
        "delta_l2_squared": 2.297147403484976,
        "head_l1": 18.254099280340597,
    },
    "freematch": {
        "steps": [
            {"loss": 2.82924747467041, "loss_lb": 1.6306960582733154, "loss_ulb": 1.2796714305877686, "loss_fairness": -8.11199951171875, "mask_rate": 1.0, "global_threshold": 0.2830204963684082, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.5625},
            {"loss": 2.290426731109619, "loss_lb": 1.671828269958496, "loss_ulb": 0.773134171962738, "loss_fairness": -15.453569412231445, "mask_rate": 1.0, "global_threshold": 0.3323131203651428, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.2060794830322266, "loss_lb": 1.909402847290039, "loss_ulb": 0.4929676651954651, "loss_fairness": -19.629108428955078, "mask_rate": 1.0, "global_threshold": 0.3979957103729248, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.073185682296753, "loss_lb": 1.9121841192245483, "loss_ulb": 0.40041375160217285, "loss_fairness": -23.941234588623047, "mask_rate": 0.9375, "global_threshold": 0.45498961210250854, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.13333334028720856, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.5250463485717773, "loss_lb": 1.34978187084198, "loss_ulb": 0.41975486278533936, "loss_fairness": -24.449045181274414, "mask_rate": 0.8125, "global_threshold": 0.48967745900154114, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1538461595773697, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.9821066856384277, "loss_lb": 1.842909812927246, "loss_ulb": 0.3896172046661377, "loss_fairness": -25.042028427124023, "mask_rate": 0.6875, "global_threshold": 0.5028863549232483, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.1818181872367859, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 2.285299946451508,
        "head_l1": 18.281660653301515,
    },
    "mean_teacher": {
        "steps": [
            {"loss": 1.6323686838150024, "loss_lb": 1.6306960582733154, "loss_ulb": 0.024822883307933807, "mask_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.5625},
            {"loss": 1.6808394193649292, "loss_lb": 1.6184868812561035, "loss_ulb": 0.021763179451227188, "mask_rate": 1.0, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.005, "pseudo_label_prior_distance": 0.625},
            {"loss": 1.798563003540039, "loss_lb": 1.5399043560028076, "loss_ulb": 0.025865864008665085, "mask_rate": 1.0, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.005, "pseudo_label_prior_distance": 0.3125},
            {"loss": 1.7201873064041138, "loss_lb": 1.5408353805541992, "loss_ulb": 0.01793520152568817, "mask_rate": 1.0, "pseudo_label_accuracy": 0.0625, "masked_pseudo_label_accuracy": 0.0625, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.375},
            {"loss": 1.4163142442703247, "loss_lb": 1.205834984779358, "loss_ulb": 0.021047931164503098, "mask_rate": 1.0, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.25},
            {"loss": 1.6825904846191406, "loss_lb": 1.4844670295715332, "loss_ulb": 0.019812339916825294, "mask_rate": 1.0, "pseudo_label_accuracy": 0.0625, "masked_pseudo_label_accuracy": 0.0625, "lr": 0.0, "pseudo_label_prior_distance": 0.25},
        ],
        "delta_l2_squared": 0.9475076408864889,
        "head_l1": 18.227803251415025,
    },
    "mixmatch": {
        "steps": [
            {"loss": 1.3082244396209717, "loss_lb": 1.3082244396209717, "loss_ulb": 0.030141258612275124, "mask_rate": 1.0, "mixup_lambda": 0.9759533405303955, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.3125},
            {"loss": 2.7647624015808105, "loss_lb": 1.6105210781097412, "loss_ulb": 0.023084821179509163, "mask_rate": 1.0, "mixup_lambda": 0.8669650554656982, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.005, "pseudo_label_prior_distance": 0.3125},
            {"loss": 3.7012810707092285, "loss_lb": 1.3287068605422974, "loss_ulb": 0.02372574247419834, "mask_rate": 1.0, "mixup_lambda": 0.8260442614555359, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005, "pseudo_label_prior_distance": 0.125},
            {"loss": 3.537013530731201, "loss_lb": 1.4641541242599487, "loss_ulb": 0.020728595554828644, "mask_rate": 1.0, "mixup_lambda": 0.5362699031829834, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.5},
            {"loss": 3.493257761001587, "loss_lb": 1.2469151020050049, "loss_ulb": 0.022463425993919373, "mask_rate": 1.0, "mixup_lambda": 0.6545677781105042, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.6875},
            {"loss": 3.4381885528564453, "loss_lb": 1.6748337745666504, "loss_ulb": 0.017633546143770218, "mask_rate": 1.0, "mixup_lambda": 0.6814712882041931, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 1.9977674748264167,
        "head_l1": 18.304047440295108,
    },
    "mixmatch_mix_layer": {
        "steps": [
            {"loss": 1.545788049697876, "loss_lb": 1.545788049697876, "loss_ulb": 0.03389202058315277, "mask_rate": 1.0, "mixup_lambda": 0.9759533405303955, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.4375},
            {"loss": 3.0045337677001953, "loss_lb": 1.516160249710083, "loss_ulb": 0.0297674722969532, "mask_rate": 1.0, "mixup_lambda": 0.8669650554656982, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005, "pseudo_label_prior_distance": 0.375},
            {"loss": 4.729159355163574, "loss_lb": 1.5517278909683228, "loss_ulb": 0.031774312257766724, "mask_rate": 1.0, "mixup_lambda": 0.8260442614555359, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.005, "pseudo_label_prior_distance": 0.5},
            {"loss": 4.618242263793945, "loss_lb": 1.3548896312713623, "loss_ulb": 0.03263352811336517, "mask_rate": 1.0, "mixup_lambda": 0.5362699031829834, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.9234519004821777, "loss_lb": 1.4564294815063477, "loss_ulb": 0.014670224860310555, "mask_rate": 1.0, "mixup_lambda": 0.6545677781105042, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.75},
            {"loss": 3.1750693321228027, "loss_lb": 2.038909435272217, "loss_ulb": 0.011361600831151009, "mask_rate": 1.0, "mixup_lambda": 0.6814712882041931, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.3125, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 1.9989620432509707,
        "head_l1": 18.389744385960512,
    },
    "noisy_student": {
        "steps": [
            {"loss": 3.1335020065307617, "loss_lb": 1.7370920181274414, "loss_ulb": 1.3964097499847412, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.1875},
            {"loss": 3.203295946121216, "loss_lb": 1.6838406324386597, "loss_ulb": 1.5194551944732666, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.125},
            {"loss": 2.6746811866760254, "loss_lb": 1.2767829895019531, "loss_ulb": 1.3978984355926514, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.005, "pseudo_label_prior_distance": 0.25},
            {"loss": 3.021646738052368, "loss_lb": 1.6347099542617798, "loss_ulb": 1.3869366645812988, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.125},
            {"loss": 3.194249153137207, "loss_lb": 1.5948569774627686, "loss_ulb": 1.599392056465149, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.125},
            {"loss": 2.6063501834869385, "loss_lb": 1.2152409553527832, "loss_ulb": 1.3911092281341553, "mask_rate": 1.0, "pseudo_label_accuracy": 1.0, "masked_pseudo_label_accuracy": 1.0, "lr": 0.0, "pseudo_label_prior_distance": 0.125},
        ],
        "delta_l2_squared": 1.815369773224814,
        "head_l1": 18.129329260467784,
    },
    "pi_model": {
        "steps": [
            {"loss": 1.6323686838150024, "loss_lb": 1.6306960582733154, "loss_ulb": 0.024822883307933807, "mask_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.5625},
            {"loss": 1.6778569221496582, "loss_lb": 1.618577480316162, "loss_ulb": 0.020690549165010452, "mask_rate": 1.0, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.1875, "lr": 0.005, "pseudo_label_prior_distance": 0.4375},
            {"loss": 1.7419929504394531, "loss_lb": 1.5347349643707275, "loss_ulb": 0.020725805312395096, "mask_rate": 1.0, "pseudo_label_accuracy": 0.5, "masked_pseudo_label_accuracy": 0.5, "lr": 0.005, "pseudo_label_prior_distance": 0.4375},
            {"loss": 1.6714287996292114, "loss_lb": 1.5546048879623413, "loss_ulb": 0.011682389304041862, "mask_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.1875},
            {"loss": 1.4473223686218262, "loss_lb": 1.2775757312774658, "loss_ulb": 0.0169746745377779, "mask_rate": 1.0, "pseudo_label_accuracy": 0.375, "masked_pseudo_label_accuracy": 0.375, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.4375},
            {"loss": 1.56236732006073, "loss_lb": 1.4095828533172607, "loss_ulb": 0.015278449282050133, "mask_rate": 1.0, "pseudo_label_accuracy": 0.375, "masked_pseudo_label_accuracy": 0.375, "lr": 0.0, "pseudo_label_prior_distance": 0.25},
        ],
        "delta_l2_squared": 1.9738020727043113,
        "head_l1": 18.163920069811866,
    },
    "pseudo_label": {
        "steps": [
            {"loss": 1.7370920181274414, "loss_lb": 1.7370920181274414, "loss_ulb": 0.20117884874343872, "mask_rate": 0.375, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.0, "lr": 0.003333333333333333},
            {"loss": 1.744156837463379, "loss_lb": 1.6740872859954834, "loss_ulb": 0.14013902842998505, "mask_rate": 0.25, "pseudo_label_accuracy": 0.375, "masked_pseudo_label_accuracy": 0.0, "lr": 0.005},
            {"loss": 1.4575480222702026, "loss_lb": 1.3459749221801758, "loss_ulb": 0.11157308518886566, "mask_rate": 0.1875, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.0, "lr": 0.005},
            {"loss": 1.7209608554840088, "loss_lb": 1.6317367553710938, "loss_ulb": 0.0892242044210434, "mask_rate": 0.1875, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.3333333432674408, "lr": 0.003333333333333333},
            {"loss": 1.7753944396972656, "loss_lb": 1.5901107788085938, "loss_ulb": 0.18528366088867188, "mask_rate": 0.3125, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.4000000059604645, "lr": 0.0016666666666666666},
            {"loss": 1.3763200044631958, "loss_lb": 1.3423892259597778, "loss_ulb": 0.03393076732754707, "mask_rate": 0.0625, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.0, "lr": 0.0},
        ],
        "delta_l2_squared": 1.7532073031610718,
        "head_l1": 18.2649104190059,
    },
    "supervised": {
        "steps": [
            {"loss": 1.597618579864502, "loss_lb": 1.597618579864502, "lr": 0.003333333333333333},
            {"loss": 1.5420490503311157, "loss_lb": 1.5420490503311157, "lr": 0.005},
            {"loss": 1.4088129997253418, "loss_lb": 1.4088129997253418, "lr": 0.005},
            {"loss": 1.6280438899993896, "loss_lb": 1.6280438899993896, "lr": 0.003333333333333333},
            {"loss": 1.451291561126709, "loss_lb": 1.451291561126709, "lr": 0.0016666666666666666},
            {"loss": 1.1024653911590576, "loss_lb": 1.1024653911590576, "lr": 0.0},
        ],
        "delta_l2_squared": 1.0350137557260757,
        "head_l1": 18.29756939021172,
    },
    "temporal_ensembling": {
        "steps": [
            {"loss": 1.7370920181274414, "loss_lb": 1.7370920181274414, "loss_ulb": 0.0, "mask_rate": 0.0, "pseudo_label_accuracy": 0.125, "lr": 0.003333333333333333},
            {"loss": 1.7103111743927002, "loss_lb": 1.6740872859954834, "loss_ulb": 0.012643350288271904, "mask_rate": 0.5, "pseudo_label_accuracy": 0.375, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005, "pseudo_label_prior_distance": 0.625},
            {"loss": 1.6120281219482422, "loss_lb": 1.3317954540252686, "loss_ulb": 0.02802327647805214, "mask_rate": 1.0, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005, "pseudo_label_prior_distance": 0.4375},
            {"loss": 1.8227486610412598, "loss_lb": 1.6457464694976807, "loss_ulb": 0.01770022138953209, "mask_rate": 1.0, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.375},
            {"loss": 1.6403083801269531, "loss_lb": 1.4823601245880127, "loss_ulb": 0.015794813632965088, "mask_rate": 1.0, "pseudo_label_accuracy": 0.0625, "masked_pseudo_label_accuracy": 0.0625, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.375},
            {"loss": 1.6302399635314941, "loss_lb": 1.461273431777954, "loss_ulb": 0.016896653920412064, "mask_rate": 1.0, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.0, "pseudo_label_prior_distance": 0.3125},
        ],
        "delta_l2_squared": 1.7673226095561887,
        "head_l1": 18.093053552118363,
    },
    "uda": {
        "steps": [
            {"loss": 1.920422077178955, "loss_lb": 1.630696177482605, "loss_ulb": 0.2897258698940277, "mask_rate": 0.375, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1666666716337204, "lr": 0.003333333333333333},
            {"loss": 2.032723903656006, "loss_lb": 1.6562323570251465, "loss_ulb": 0.37649163603782654, "mask_rate": 0.625, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.3125, "masked_pseudo_label_accuracy": 0.30000001192092896, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.261993408203125, "loss_lb": 1.7729078531265259, "loss_ulb": 0.4890856146812439, "mask_rate": 0.9375, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.20000000298023224, "lr": 0.005, "pseudo_label_prior_distance": 0.75},
            {"loss": 2.0969271659851074, "loss_lb": 1.73960542678833, "loss_ulb": 0.3573217988014221, "mask_rate": 0.875, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1428571492433548, "lr": 0.003333333333333333, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.5306012630462646, "loss_lb": 1.3256065845489502, "loss_ulb": 0.20499472320079803, "mask_rate": 0.5, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.0016666666666666666, "pseudo_label_prior_distance": 0.75},
            {"loss": 1.9744172096252441, "loss_lb": 1.7903226613998413, "loss_ulb": 0.18409457802772522, "mask_rate": 0.5, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.125, "lr": 0.0, "pseudo_label_prior_distance": 0.75},
        ],
        "delta_l2_squared": 2.1733012043358237,
        "head_l1": 18.275092083902564,
    },
    "uda_ema_teacher_tsa": {
        "steps": [
            {"loss": 2.0621564388275146, "loss_lb": 1.7724305391311646, "loss_ulb": 0.2897258698940277, "mask_rate": 0.375, "tsa_keep_rate": 0.75, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.1666666716337204, "lr": 0.003333333333333333},
            {"loss": 2.0057780742645264, "loss_lb": 1.75384521484375, "loss_ulb": 0.2519327998161316, "mask_rate": 0.3125, "tsa_keep_rate": 0.875, "pseudo_label_accuracy": 0.375, "masked_pseudo_label_accuracy": 0.6000000238418579, "lr": 0.005},
            {"loss": 1.7271630764007568, "loss_lb": 1.5732935667037964, "loss_ulb": 0.15386953949928284, "mask_rate": 0.25, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.25, "masked_pseudo_label_accuracy": 0.25, "lr": 0.005},
            {"loss": 1.7384233474731445, "loss_lb": 1.5445448160171509, "loss_ulb": 0.19387850165367126, "mask_rate": 0.375, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "masked_pseudo_label_accuracy": 0.0, "lr": 0.003333333333333333},
            {"loss": 1.1845989227294922, "loss_lb": 1.1062064170837402, "loss_ulb": 0.07839249074459076, "mask_rate": 0.125, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.1875, "masked_pseudo_label_accuracy": 0.5, "lr": 0.0016666666666666666},
            {"loss": 1.5618128776550293, "loss_lb": 1.5618128776550293, "loss_ulb": 0.0, "mask_rate": 0.0, "tsa_keep_rate": 1.0, "pseudo_label_accuracy": 0.125, "lr": 0.0},
        ],
        "delta_l2_squared": 1.9559610336302238,
        "head_l1": 18.209581021219492,
    },
}
