"""NER: CoNLL reading, subword alignment, BIO decoding, token-level masks, and runs on a tiny BERT."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from ssl_text.algorithms import ALGORITHMS, TrainState
from ssl_text.augment.collate import CollatorContext
from ssl_text.config import ConfigError, DataConfig, DatasetSpec, SamplingConfig, ViewConfig, ViewsConfig
from ssl_text.config.keys import ULB_STRONG, ULB_WEAK
from ssl_text.data.loading import DataError
from ssl_text.pipelines.predict import evaluate_run, predict_texts
from ssl_text.pipelines.train import train
from ssl_text.tasks.bio import bio_constraints, decode_bio, repair_bio
from ssl_text.tasks.ner import IGNORE, NamedEntityRecognition, TokenCollator, align_labels, first_subwords
from ssl_text.tasks.ner_data import load_ner_data, read_conll
from ssl_text.training.run_config import parse_config
from tests.toy_ner import make_sentences, write_conll

TAGS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
TOKEN_ALGORITHMS = sorted(name for name, cls in ALGORITHMS.items() if getattr(cls, "token_level", False))


# ---------------------------------------------------------------------------------------
# CoNLL reading
# ---------------------------------------------------------------------------------------


def test_conll_reader_edge_cases(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_bytes(
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\r\n"  # Windows line end
        "rejects\tVBZ\tB-VP\tO\n"  # tab separated
        "\ufeffGerman   JJ  B-NP   B-MISC  \n"  # a BOM inside the word, runs of spaces, trailing space
        "\n\n\n"  # several blank lines between sentences
        "-DOCSTART- -X- -X- O\n"
        "Peter NNP B-NP B-PER\n"
        "Blackburn NNP I-NP I-PER\n"
        "\n\n".encode()  # trailing blank lines
    )
    sentences, tags = read_conll(str(path))
    assert sentences == [["EU", "rejects", "\ufeffGerman"], ["Peter", "Blackburn"]]
    assert tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"]]
    assert read_conll(str(path), tag_field=1)[1][1] == ["NNP", "NNP"]  # the tag column is configurable


def test_conll_reader_names_a_bad_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nlonely\n")
    with pytest.raises(DataError, match=r"bad.txt:2: found one field"):
        read_conll(str(path))
    with pytest.raises(DataError, match="conll_tag_field"):
        read_conll(str(tmp_path / "bad.txt"), tag_field=5)


def test_ner_data_protocol_and_label_set(tmp_path):
    train = write_conll(tmp_path / "train.txt", make_sentences(50, seed=1))
    test = write_conll(tmp_path / "test.txt", make_sentences(10, seed=2))
    cfg = DataConfig(
        labeled=DatasetSpec(path=str(train)), test=DatasetSpec(path=str(test)),
        sampling=SamplingConfig(num_examples=5, seed=3, rest_as_unlabeled=True),
    )
    data = load_ner_data(cfg)
    assert data.label_names == TAGS
    assert len(data.labeled) == 5 and len(data.unlabeled) == 45 and "label" not in data.unlabeled.column_names
    assert load_ner_data(cfg).labeled["tokens"] == data.labeled["tokens"]  # seeded
    cfg.sampling.num_per_class = 2
    cfg.sampling.num_examples = None
    with pytest.raises(DataError, match="num_examples"):
        load_ner_data(cfg)
    cfg.sampling.num_per_class, cfg.sampling.fraction_per_class = None, 0.1
    with pytest.raises(DataError, match="fraction_per_class.*num_examples"):
        load_ner_data(cfg)


def test_ner_data_from_hub_style_rows_with_classlabel_names(tmp_path):
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS))}
    )
    ds = datasets.Dataset.from_dict({"tokens": [["bank", "says"], ["the", "coach"]], "ner_tags": [[3, 0], [0, 5]]}, features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    data = load_ner_data(DataConfig(labeled=DatasetSpec(path=str(tmp_path / "saved")), label_names=TAGS))
    assert data.labeled["label"] == [[3, 0], [0, 5]]
    bad = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "ner_tags": [["O"]]})
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError, match="2 words but 1 tags"):
        load_ner_data(DataConfig(labeled=DatasetSpec(path=str(tmp_path / "bad"))))


def test_non_bio_tags_are_refused(tmp_path):
    path = tmp_path / "bioes.txt"
    path.write_text("EU S-ORG\nrejects O\n")
    with pytest.raises(DataError, match="BIO/IOB2"):
        load_ner_data(DataConfig(labeled=DatasetSpec(path=str(path))))


# ---------------------------------------------------------------------------------------
# Subword alignment
# ---------------------------------------------------------------------------------------


def test_align_labels_by_hand():
    inside_of = {1: 2}  # B-LOC -> I-LOC
    word_ids = [None, 0, 1, 1, 1, 3, None]  # word 1 splits into three pieces; word 2 was dropped
    tags = [0, 1, 2, 0]
    assert align_labels(word_ids, tags, False, inside_of) == [IGNORE, 0, 1, IGNORE, IGNORE, 0, IGNORE]
    assert align_labels(word_ids, tags, True, inside_of) == [IGNORE, 0, 1, 2, 2, 0, IGNORE]


def test_encode_with_a_real_tokenizer(tiny_bert_dir):
    task = NamedEntityRecognition()
    tokenizer = task.load_tokenizer(tiny_bert_dir)
    ds = datasets.Dataset.from_dict({"tokens": [["the", "xkq", "\u200b", "goal"]], "label": [[0, 1, 0, 3]]})
    enc = task.encode(ds, tokenizer, DataConfig(labeled=DatasetSpec(path="x"), max_length=16), TAGS)[0]
    assert tokenizer.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "the", "x", "##k", "##q", "goal", "[SEP]"]
    assert enc["word_index"] == [-1, 0, 1, 1, 1, 3, -1]  # the zero-width space (word 2) has no subword
    assert enc["labels"] == [IGNORE, 0, 1, IGNORE, IGNORE, 3, IGNORE]
    # at evaluation the dropped word is predicted O; every other word by its first subword
    logits = torch.full((7, len(TAGS)), -5.0)
    logits[1, 0] = logits[2, 1] = logits[3, 6] = logits[5, 3] = 5.0
    assert task.word_predictions([logits.numpy()], datasets.Dataset.from_list([enc]), TAGS) == [
        ["O", "B-LOC", "O", "B-ORG"]
    ]


# ---------------------------------------------------------------------------------------
# BIO repair and decoding
# ---------------------------------------------------------------------------------------


def test_repair_bio():
    assert repair_bio(["O", "I-PER", "I-PER", "B-ORG", "I-LOC", "O"]) == ["O", "B-PER", "I-PER", "B-ORG", "B-LOC", "O"]
    assert repair_bio(["B-PER", "I-PER"]) == ["B-PER", "I-PER"]


def _valid(seq: list[str]) -> bool:
    return repair_bio(seq) == seq


def test_decode_bio_is_the_best_valid_sequence():
    """Constrained Viterbi equals brute force over every valid tag sequence, on random probabilities."""
    may_start, may_follow = bio_constraints(TAGS)
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(6, 5, len(TAGS), generator=gen) * 2, dim=-1)  # [B, L, C]
    positions = torch.ones(6, 5, dtype=torch.bool)
    positions[1, 3:] = False  # a shorter sentence
    positions[2, 1] = False  # an inner subword between words
    decoded = decode_bio(probs, positions, may_start, may_follow)
    assert decoded.shape == (int(positions.sum()),)
    offset = 0
    for b in range(6):
        p = probs[b][positions[b]]
        best = max(
            (seq for seq in itertools.product(range(len(TAGS)), repeat=len(p)) if _valid([TAGS[i] for i in seq])),
            key=lambda seq: sum(math.log(p[i, t]) for i, t in enumerate(seq)),
        )
        assert decoded[offset : offset + len(p)].tolist() == list(best)
        offset += len(p)


def test_decode_bio_fixes_an_argmax_that_is_not_valid():
    may_start, may_follow = bio_constraints(TAGS)
    probs = torch.tensor([[[0.3, 0, 0, 0, 0, 0.2, 0.5], [0.1, 0, 0, 0, 0, 0.1, 0.8]]])  # argmax: I-PER I-PER
    assert decode_bio(probs, torch.ones(1, 2, dtype=torch.bool), may_start, may_follow).tolist() == [5, 6]


# ---------------------------------------------------------------------------------------
# Token-level masks in the collator and the algorithms
# ---------------------------------------------------------------------------------------


def _unlabeled_rows():
    # two sentences: [CLS] w0 w1 ##x w2 [SEP] and [CLS] w0 [SEP] (padded)
    return {
        "input_ids": [[2, 20, 21, 80, 22, 3], [2, 23, 3]],
        "word_index": [[-1, 0, 1, 1, 2, -1], [-1, 0, -1]],
        "index": [0, 1],
        "analysis_labels": [[IGNORE, 0, 5, IGNORE, 6, IGNORE], [IGNORE, 1, IGNORE]],
    }


def test_token_mask_excludes_padding_specials_and_inner_subwords(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    views = ViewsConfig(weak=ViewConfig(), strong=ViewConfig(mask_prob=0.9))
    batch = TokenCollator(tokenizer, views, ("lb", ULB_WEAK, ULB_STRONG)).unlabeled(
        _unlabeled_rows(), torch.Generator().manual_seed(0)
    )
    expected = torch.tensor([[0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(batch["ulb_token_mask"], expected)
    assert batch["ulb_analysis_labels"].tolist() == [0, 5, 6, 1]
    weak, strong = batch[ULB_WEAK]["input_ids"], batch[ULB_STRONG]["input_ids"]
    assert weak.shape == strong.shape  # masking only: positions stay aligned
    assert bool((strong[:, 0] == 2).all()) and strong[1, 3:].tolist() == [tokenizer.pad_token_id] * 3
    assert bool((strong[expected] == tokenizer.mask_token_id).any())
    assert torch.equal(first_subwords(torch.tensor([[-1, 0, 0, 1, -1]])), torch.tensor([[False, True, False, True, False]]))


class FixedLogits(torch.nn.Module):
    """A stand-in model: returns given logits for any input, with one trainable scale."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"logits": self.logits[: len(input_ids)] * self.scale})()


@pytest.mark.parametrize("name", ["fixmatch", "pseudo_label"])
def test_token_level_pseudo_labels_are_valid_bio_and_count_only_words(name):
    task = NamedEntityRecognition()
    algo = ALGORITHMS[name](ALGORITHMS[name].Config(tau=0.5), len(TAGS))
    positions = torch.tensor([[0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    logits = torch.full((2, 6, len(TAGS)), -4.0)
    logits[:, :, 5] = -3.0  # B-PER is the best tag that may start an entity
    logits[:, :, 6] = 4.0  # argmax I-PER everywhere: not a valid sequence
    logits[0, 3] = 0.0  # an inner subword: uncertain, but never counted
    inputs = {"input_ids": torch.zeros(2, 6, dtype=torch.long), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    batch = {
        "lb": inputs, "lb_labels": torch.full((2, 6), IGNORE), ULB_WEAK: inputs, ULB_STRONG: inputs,
        "ulb_token_mask": positions,
    }
    batch["lb_labels"][0, 1] = 0
    state = TrainState(step=50, max_steps=100, num_classes=len(TAGS), token_decoder=task.token_decoder(TAGS))
    out = algo.compute_loss(FixedLogits(logits), batch, state)
    assert out.pseudo_labels.tolist() == [5, 6, 6, 5]  # B-PER I-PER I-PER | B-PER
    assert out.mask.shape == (4,) and out.mask.tolist() == [0.0, 1.0, 1.0, 0.0]  # B-PER has p < tau: masked
    assert torch.isfinite(out.total)


# ---------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner")
    return {
        "train": str(write_conll(root / "train.txt", make_sentences(120, seed=1))),
        "validation": str(write_conll(root / "valid.txt", make_sentences(30, seed=2))),
        "test": str(write_conll(root / "test.txt", make_sentences(40, seed=3))),
    }


def ner_config(tmp_path, tiny_bert_dir, ner_files, algorithm: str, steps: int = 4) -> dict:
    return {
        "output_dir": str(tmp_path / f"ner_{algorithm}"),
        "task": "ner",
        "model": {"name_or_path": tiny_bert_dir},
        "data": {
            "labeled": {"path": ner_files["train"]},
            "sampling": {"num_examples": 16, "seed": 0, "rest_as_unlabeled": True},
            "validation": {"path": ner_files["validation"]},
            "test": {"path": ner_files["test"]},
            "max_length": 32,
        },
        "algorithm": {"name": algorithm, **({"tau": 0.3} if algorithm in ("fixmatch", "pseudo_label") else {})},
        "views": {"strong": {"mask_prob": 0.2, "delete_prob": 0.0}},
        "trainer": {
            "max_steps": steps, "lb_batch_size": 4, "mu": 2, "learning_rate": 3e-3, "warmup_ratio": 0.0,
            "eval_every": 2, "save_every": 2, "log_every": 1, "progress_bar": False,
            **({"ema_decay": 0.9} if algorithm == "mean_teacher" else {}),
        },
    }


def teacher_tagged_pool(path: Path) -> str:
    """Toy sentences with one-hot targets per word, as `ssl-text self-train` writes an NER pool."""
    sentences = make_sentences(30, seed=9)
    targets = [[[1.0 if TAGS[j] == tag else 0.0 for j in range(len(TAGS))] for _, tag in s] for s in sentences]
    truth = [[TAGS.index(tag) for _, tag in s] for s in sentences]
    datasets.Dataset.from_dict(
        {"tokens": [[w for w, _ in s] for s in sentences], "pseudo_target": targets, "analysis_label": truth}
    ).save_to_disk(str(path))
    return str(path)


def classifier_weight(folder) -> torch.Tensor:
    return AutoModelForTokenClassification.from_pretrained(folder).bert.encoder.layer[0].attention.self.query.weight


@pytest.mark.slow
@pytest.mark.parametrize("name", TOKEN_ALGORITHMS)
def test_every_token_level_algorithm_trains_a_few_steps(tmp_path, tiny_bert_dir, ner_files, name):
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, name)
    if name in ("noisy_student", "distill"):  # a student learns from a pool its teacher tagged ...
        raw["data"]["unlabeled"] = {"path": teacher_tagged_pool(tmp_path / "pool")}
        raw["data"]["sampling"]["rest_as_unlabeled"] = False
    if name == "noisy_student":  # ... under NER-safe word noise
        raw["views"]["strong"].update(mention_swap_prob=0.5, o_word_prob=0.2)
    metrics = train(parse_config(raw))
    logs = metrics["last_train_logs"]
    assert logs["step"] == 4 and math.isfinite(logs["loss"])
    if name not in ("supervised", "noisy_student"):  # word noise changes the words: no truth to compare with
        assert "pseudo_label_accuracy" in logs  # and the accuracy of the masked-in words exactly when there are some
        assert ("masked_pseudo_label_accuracy" in logs) == (logs["mask_rate"] > 0)
    assert metrics["selected_on"] == "validation" and {"f1", "precision", "recall", "PER_f1"} <= set(metrics["test"])
    initial = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=len(TAGS))
    assert not torch.equal(classifier_weight(Path(raw["output_dir"]) / "best"), initial.bert.encoder.layer[0].attention.self.query.weight)


def test_token_level_fixmatch_logs_the_mask_rate_per_entity_type(tmp_path, tiny_bert_dir, ner_files):
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, "fixmatch")
    raw["algorithm"]["tau"] = 0.05  # everything passes, so every predicted type shows up
    logs = train(parse_config(raw))["last_train_logs"]
    assert "mask_rate_O" in logs and logs["mask_rate"] > 0


@pytest.mark.slow
def test_ner_run_learns_predicts_spans_and_loads_in_a_pipeline(tmp_path, tiny_bert_dir, ner_files):
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, "supervised", steps=80)
    raw["data"]["sampling"]["num_examples"] = 60
    raw["trainer"].update(eval_every=40, save_every=40)
    metrics = train(parse_config(raw))
    assert metrics["test"]["f1"] > 0.5, metrics["test"]  # the toy entities are learnable
    run_dir = raw["output_dir"]
    assert evaluate_run(run_dir, DatasetSpec(path=ner_files["test"]))["f1"] == pytest.approx(metrics["test"]["f1"])
    records = predict_texts(run_dir, ["the president says the bank", ""])
    entities = records[0]["entities"]
    assert records[1] == {"text": "", "entities": []}
    for e in entities:
        assert records[0]["text"][e["start"] : e["end"]] == e["text"] and e["type"] in {"PER", "ORG", "LOC"}
    assert {e["type"] for e in entities} == {"PER", "ORG"}
    tagger = pipeline("token-classification", model=str(Path(run_dir) / "best"), aggregation_strategy="simple")
    groups = [g["entity_group"] for g in tagger("the president says the bank")]
    assert groups == [e["type"] for e in entities]
    assert json.loads((Path(run_dir) / "metrics.json").read_text())["test"]["f1"] == metrics["test"]["f1"]
    assert (Path(run_dir) / "plots" / "entity_f1.png").stat().st_size > 0


def test_ner_refuses_sentence_level_algorithms_and_deleting_views(tmp_path, tiny_bert_dir, ner_files):
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, "uda")
    with pytest.raises(ConfigError, match=r"token-level algorithms \[.*fixmatch"):
        train(parse_config(raw))
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, "fixmatch")
    raw["views"]["strong"]["delete_prob"] = 0.1
    with pytest.raises(ConfigError, match=r"views.strong.delete_prob.*mask_prob"):
        train(parse_config(raw))
    assert not Path(raw["output_dir"]).exists()  # refused before anything was written


def test_model_card_usage_matches_the_saved_model(tmp_path):
    from ssl_text.hub.model_card import _usage
    from ssl_text.models.projection import CLASSIFIER_CONFIG

    (tmp_path / "best").mkdir()
    assert 'pipeline("token-classification", model="me/ner", aggregation_strategy="simple")' in _usage(
        "token-classification", "me/ner", tmp_path
    )
    assert 'pipeline("text-classification", model="me/clf", truncation=True)' in _usage("text-classification", "me/clf", tmp_path)
    (tmp_path / "best" / CLASSIFIER_CONFIG).write_text("{}")  # a SimCLRv2 projection-head classifier
    usage = _usage("text-classification", "me/clf", tmp_path)
    assert "load_projection_classifier" in usage and "pipeline(" not in usage


@pytest.mark.slow
def test_noisy_student_self_training_on_ner_uses_word_targets(tmp_path, tiny_bert_dir, ner_files):
    from ssl_text.pipelines.self_training import PseudoLabeling, self_train

    teacher = ner_config(tmp_path, tiny_bert_dir, ner_files, "supervised", steps=30)
    teacher["trainer"].update(eval_every=30, save_every=30)
    teacher_metrics = train(parse_config(teacher))  # an earlier run becomes round 0 (`--teacher`)
    raw = {**teacher, "output_dir": str(tmp_path / "self_train")}
    records = self_train(parse_config(raw), rounds=1, labeling=PseudoLabeling(tau=0.5, hard_labels=True),
                         teacher=teacher["output_dir"])
    assert records[0]["run_dir"] == Path(teacher["output_dir"]).name and records[0]["test"] == teacher_metrics["test"]
    assert not (tmp_path / "self_train" / "round_0").exists()
    stats = records[1]["pseudo_labels"]
    assert records[1]["algorithm"] == "noisy_student" and "f1" in records[1]["test"]
    assert stats["pool_size"] == 104 and 0 < stats["kept"] <= 104 and 0 < stats["words_kept"] <= stats["words"]
    assert sum(stats["kept_words_per_type"].values()) == stats["words_kept"]
    pool = datasets.load_from_disk(str(Path(raw["output_dir"]) / "pools" / "round_1"))
    judged = [(max(range(len(t)), key=t.__getitem__), truth)  # (kept tag, true tag) of every kept word
              for targets, truths in zip(pool["pseudo_target"], pool["analysis_label"])
              for t, truth in zip(targets, truths) if sum(t) > 0]
    assert len(judged) == stats["words_kept"]
    assert stats["pseudo_label_accuracy"] == pytest.approx(sum(tag == truth for tag, truth in judged) / len(judged))
    for words, targets in zip(pool["tokens"], pool["pseudo_target"]):
        assert len(targets) == len(words)
        kept = [TAGS[max(range(len(t)), key=t.__getitem__)] for t in targets if sum(t) > 0]
        assert all(sum(t) in (0.0, 1.0) for t in targets)  # hard one-hot targets, or skipped words
        assert kept  # only sentences with at least one confident word are kept
    with pytest.raises(ConfigError, match="balance"):
        self_train(parse_config({**raw, "output_dir": str(tmp_path / "balanced")}), rounds=1,
                   labeling=PseudoLabeling(tau=0.5, balance=True))


def test_token_level_noisy_student_skips_words_without_a_target():
    algo = ALGORITHMS["noisy_student"](ALGORITHMS["noisy_student"].Config(), len(TAGS))
    positions = torch.tensor([[0, 1, 1, 0]], dtype=torch.bool)
    logits = torch.zeros(1, 4, len(TAGS))
    inputs = {"input_ids": torch.zeros(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    targets = torch.zeros(2, len(TAGS))
    targets[0, 5] = 1.0  # word 0: B-PER; word 1: no target
    batch = {"lb": inputs, "lb_labels": torch.full((1, 4), IGNORE), ULB_STRONG: inputs, "ulb_token_mask": positions,
             "ulb_targets": targets}
    batch["lb_labels"][0, 1] = 0
    out = algo.compute_loss(FixedLogits(logits), batch, TrainState(step=0, max_steps=1, num_classes=len(TAGS)))
    assert out.mask.tolist() == [1.0, 0.0]
    assert out.parts["loss_ulb"].item() == pytest.approx(math.log(len(TAGS)))  # uniform logits, one counted word


def test_every_registered_task_builds_and_declares_its_hooks():
    from ssl_text.tasks import TASKS, build_task

    for name in TASKS:
        task = build_task(name)
        assert task.name == name and task.select_metric and isinstance(task.token_level, bool)
        for hook in ("check_views", "load_data", "load_tokenizer", "load_model", "encode", "collator", "label_counts", "score"):
            assert callable(getattr(task, hook)), f"{name} lacks {hook}"
    with pytest.raises(ValueError, match="unknown task 'pos'"):
        build_task("pos")


# ---------------------------------------------------------------------------------------
# NER-safe word operations
# ---------------------------------------------------------------------------------------


def test_mentions_bank_and_swaps_keep_valid_bio():
    import random

    from ssl_text.tasks.ner_augment import mention_bank, mentions, o_vocabulary, substitute_o_words, swap_mentions

    words = ["a", "John", "Smith", "in", "Paris", "EU", "UN", "Council"]
    tags = ["O", "B-PER", "I-PER", "O", "I-LOC", "B-ORG", "B-ORG", "I-ORG"]
    assert mentions(tags) == [(1, 3, "PER"), (4, 5, "LOC"), (5, 6, "ORG"), (6, 8, "ORG")]
    assert mention_bank([words], [tags]) == {"PER": [("John", "Smith")], "LOC": [("Paris",)], "ORG": [("EU",), ("UN", "Council")]}
    assert o_vocabulary([words], [tags]) == ["a", "in"]
    bank = {"PER": [("Ann",)], "LOC": [("New", "York", "City")]}
    new_words, new_tags, origin = swap_mentions(words, tags, bank, 1.0, random.Random(0))
    assert new_words == ["a", "Ann", "in", "New", "York", "City", "EU", "UN", "Council"]
    assert new_tags == ["O", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-ORG"]
    assert origin == [0, None, 3, None, None, None, 5, 6, 7]
    assert repair_bio(new_tags) == new_tags
    assert swap_mentions(words, tags, bank, 0.0, random.Random(0))[0] == words
    replaced, same_tags = substitute_o_words(words, tags, ["the"], 1.0, random.Random(0))
    assert replaced == ["the", "John", "Smith", "the", "Paris", "EU", "UN", "Council"] and same_tags == tags


def test_strong_view_word_operations_move_the_targets_along(tiny_bert_dir):
    task = NamedEntityRecognition()
    tokenizer = task.load_tokenizer(tiny_bert_dir)
    data = DataConfig(labeled=DatasetSpec(path="x"), max_length=32)
    labeled = datasets.Dataset.from_dict({"tokens": [["the", "xkq", "bank", "says"]], "label": [[0, 5, 3, 0]]})
    views = ViewsConfig(strong=ViewConfig(mention_swap_prob=1.0, o_word_prob=1.0))
    collator = task.collator(tokenizer, views, ("lb", ULB_STRONG), context=CollatorContext(data, None, labeled, TAGS))
    one_hot = [[1.0 if j == t else 0.0 for j in range(len(TAGS))] for t in range(len(TAGS))]
    pool = datasets.Dataset.from_dict({"tokens": [["a", "coach", "on", "today"]], "index": [0],
                                       "pseudo_target": [[one_hot[0], one_hot[5], [0.0] * len(TAGS), one_hot[0]]]})
    pool = task.encode(pool, tokenizer, data, TAGS)
    batch = collator.unlabeled(pool[:1], torch.Generator().manual_seed(0))
    ids = batch[ULB_STRONG]["input_ids"][0]
    # `coach` (PER) became the labeled PER mention `xkq` (three subwords); `a`, `today` (O) became labeled O
    # words; `on` had no target (the teacher was unsure), so it stays and is skipped by the loss
    words = tokenizer.convert_ids_to_tokens(ids[batch["ulb_token_mask"][0]])
    assert words[1] == "x" and words[2] == "on" and words[0] in ("the", "says") and words[3] in ("the", "says")
    assert batch["ulb_targets"].argmax(-1).tolist() == [0, 5, 0, 0] and batch["ulb_targets"][2].sum() == 0
    with pytest.raises(ConfigError, match="lines up word for word"):
        task.collator(tokenizer, views, ("lb", ULB_WEAK, ULB_STRONG), context=CollatorContext(data, None, labeled, TAGS))
    with pytest.raises(ConfigError, match="strong view only"):
        task.check_views(ViewsConfig(weak=ViewConfig(o_word_prob=0.1)))
    from ssl_text.tasks.text_classification import TextClassification

    with pytest.raises(ConfigError, match="needs tags per word"):
        TextClassification().check_views(views)


@pytest.mark.slow
def test_token_level_distillation_into_a_one_layer_student(tmp_path, tiny_bert_dir, ner_files):
    from ssl_text.pipelines.distill import distill, parse_distill_config

    teacher = ner_config(tmp_path, tiny_bert_dir, ner_files, "supervised", steps=40)
    teacher["trainer"].update(eval_every=40, save_every=40)
    train(parse_config(teacher))
    raw = ner_config(tmp_path, tiny_bert_dir, ner_files, "supervised", steps=6)
    raw["output_dir"] = str(tmp_path / "student")
    raw["distill"] = {"teacher": teacher["output_dir"], "temperature": 2.0, "alpha": 0.5, "shard_size": 40,
                      "student": {"init": "alternate_layers", "num_layers": 1}}
    cfg, dcfg = parse_distill_config(raw)
    metrics = distill(cfg, dcfg, overwrite=True)
    assert metrics["algorithm"] == "distill" and "f1" in metrics["test"]
    assert math.isfinite(metrics["last_train_logs"]["loss_kd"]) and 0 < metrics["last_train_logs"]["mask_rate"] <= 1
    targets_dir = next(p for p in Path(raw["output_dir"]).iterdir() if (p / "manifest.json").is_file())
    manifest = json.loads((targets_dir / "manifest.json").read_text())
    assert [s["rows"] for s in manifest["shards"]] == [40, 40, 24]
    pool = datasets.load_from_disk(str(targets_dir))
    judged = [(max(range(len(t)), key=t.__getitem__), truth)  # (teacher's top tag, true tag) of every word with a target
              for targets, truths in zip(pool["pseudo_target"], pool["analysis_label"])
              for t, truth in zip(targets, truths) if sum(t) > 0]
    assert manifest["teacher_pool_accuracy"] == pytest.approx(sum(tag == truth for tag, truth in judged) / len(judged))
    for words, targets in zip(pool["tokens"], pool["pseudo_target"]):
        assert len(targets) == len(words) and all(abs(sum(t) - 1) < 1e-4 for t in targets)  # soft targets per word
    student = AutoModelForTokenClassification.from_pretrained(Path(raw["output_dir"]) / "best")
    assert student.config.num_hidden_layers == 1 and student.config.id2label[5] == "B-PER"
