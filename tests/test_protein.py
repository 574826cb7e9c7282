"""Protein sequences: FASTA reading, the ESM tokenizer, residue views, MLM pretraining and SSL runs."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.utils import set_seed
from safetensors.torch import load_file

from ssl_text.augment.pipeline import ViewContext, ViewPipeline
from ssl_text.augment.registry import view_steps
from ssl_text.augment.residue_views import (
    BLOSUM62_ORDER,
    blosum62,
    blosum_substitute,
    random_crop,
    substitution_table,
)
from ssl_text.config import ConfigError, DatasetSpec, ViewConfig
from ssl_text.data.fasta import FastaError, load_fasta, normalize_sequence, parse_fasta, read_fasta
from ssl_text.data.loading import DataError, load_spec
from ssl_text.pipelines.pretrain import mlm_mask, parse_pretrain_config, pretrain
from ssl_text.pipelines.train import train
from ssl_text.tasks import build_task
from ssl_text.tasks.protein import ESM_VOCAB, ProteinClassification, build_protein_tokenizer, new_esm_model
from ssl_text.training.run_config import parse_config
from tests.conftest import assert_scores_match_confusion_matrix

DEEPLOC_REGEX = r"^\S+ (?P<label>\S+)-[MSU]\b"

# ---------------------------------------------------------------------------------------
# Toy data: cationic (K/R-rich) "amp" peptides vs acidic (D/E-rich) "decoy" peptides
# ---------------------------------------------------------------------------------------

_POS, _NEG, _ANY = "KKRRLLKAW", "DDEELLSAG", "ACDEFGHIKLMNPQRSTVWY"


def make_peptides(n: int, kind: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = _POS if kind == "amp" else _NEG
    return ["".join(rng.choice(pool if rng.random() < 0.7 else _ANY) for _ in range(rng.randint(12, 40))) for _ in range(n)]


def write_fasta(path: Path, seqs: list[str], prefix: str, wrap: int = 0, header_suffix: str = "") -> str:
    lines = []
    for i, s in enumerate(seqs):
        lines.append(f">{prefix}{i}{header_suffix}")
        chunks = [s[j : j + wrap] for j in range(0, len(s), wrap)] if wrap else [s]
        lines.extend(chunks)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def amp_files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("amp")
    files = {}
    for split, n, seed in (("tr", 40, 1), ("eval", 12, 2), ("te", 16, 3)):
        files[f"AMP.{split}"] = write_fasta(root / f"AMP.{split}.fa", make_peptides(n, "amp", seed), "AP", wrap=10)
        files[f"DECOY.{split}"] = write_fasta(root / f"DECOY.{split}.fa", make_peptides(n, "decoy", seed + 10), "UR")
    return files


FILE_LABELS = {"AMP.*.fa": "AMP", "DECOY.*.fa": "non-AMP"}


def protein_config(amp_files, tmp_path, algorithm: str = "supervised", model: str = "new:tiny", **algo) -> dict:
    return {
        "output_dir": str(tmp_path / f"run_{algorithm}"),
        "task": "protein",
        "model": {"name_or_path": model},
        "data": {
            "labeled": {"path": "fasta", "data_files": [amp_files["AMP.tr"], amp_files["DECOY.tr"]], "file_labels": FILE_LABELS},
            "validation": {"path": "fasta", "data_files": [amp_files["AMP.eval"], amp_files["DECOY.eval"]], "file_labels": FILE_LABELS},
            "test": {"path": "fasta", "data_files": [amp_files["AMP.te"], amp_files["DECOY.te"]], "file_labels": FILE_LABELS},
            "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": True},
            "max_length": 32,
        },
        "algorithm": {"name": algorithm, **algo},
        "views": {
            "weak": {"blosum_prob": 0.05},
            "strong": {"mask_prob": 0.15, "blosum_prob": 0.2, "crop_prob": 0.5, "crop_min_fraction": 0.6},
        },
        "trainer": {
            "max_steps": 4, "lb_batch_size": 4, "mu": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0,
            "eval_every": 2, "save_every": 2, "log_every": 1, "progress_bar": False,
        },
    }  # fmt: skip


# ---------------------------------------------------------------------------------------
# FASTA
# ---------------------------------------------------------------------------------------


def test_parse_fasta_wrapped_lines_comments_and_empty_records(tmp_path):
    text = ">a first\nMKT\nAYI\n\n;comment\n>b empty\n>c\r\nacd\n>d\n"
    assert list(parse_fasta(text.splitlines(True))) == [("a first", "MKTAYI"), ("b empty", ""), ("c", "acd"), ("d", "")]
    path = tmp_path / "x.fasta"
    path.write_text(text)
    ds, summary = load_fasta([str(path)])
    assert ds["id"] == ["a", "c"] and ds["sequence"] == ["MKTAYI", "ACD"] and ds["text"] == ds["sequence"]
    assert ds["description"] == ["first", ""] and "label" not in ds.column_names
    assert summary.empty_records == 2 and summary.lowercase_sequences == 1 and summary.records == 2
    with pytest.raises(FastaError, match="before the first '>'"):
        list(parse_fasta(["MKT\n", ">a\n"]))


def test_normalisation_maps_unknown_letters_to_x_and_counts_them():
    from ssl_text.data.fasta import FastaSummary

    summary = FastaSummary()
    assert normalize_sequence(" mk tA\nJ-B.z*", summary) == "MKTAXBZ"
    assert summary.unknown_residues == 1 and summary.unknown_symbols == {"J": 1} and summary.gaps_removed == 2
    assert summary.sequences_with_unknown == 1 and "1 unknown letters mapped to X" in str(summary)
    assert normalize_sequence("ACDUO") == "ACDUO"  # selenocysteine, pyrrolysine are residues


def test_deeploc_header_regex_keeps_compound_labels(tmp_path):
    path = tmp_path / "deeploc.fasta"
    path.write_text(
        ">Q1 Cell.membrane-M test\nMKT\nAAA\n>Q2 Cytoplasm-Nucleus-U\nMKV\n>Q3 Lysosome/Vacuole-S test\nMKL\n"
    )
    rows = read_fasta(str(path), DEEPLOC_REGEX)
    assert [r["label"] for r in rows] == ["Cell.membrane", "Cytoplasm-Nucleus", "Lysosome/Vacuole"]
    assert rows[0]["sequence"] == "MKTAAA"
    spec = DatasetSpec(path=str(path), fasta_label_regex=DEEPLOC_REGEX, exclude_labels=["Cytoplasm-Nucleus"])
    assert load_spec(spec)["label"] == ["Cell.membrane", "Lysosome/Vacuole"]
    with pytest.raises(DataError, match="does not match `fasta_label_regex`"):
        load_spec(DatasetSpec(path=str(path), fasta_label_regex=r"-(?P<label>[MS]) test"))


def test_file_labels_and_missing_fasta(amp_files):
    spec = DatasetSpec(path="fasta", data_files=[amp_files["AMP.te"], amp_files["DECOY.te"]], file_labels=FILE_LABELS)
    ds = load_spec(spec)
    assert ds["label"].count("AMP") == 16 and ds["label"].count("non-AMP") == 16
    assert all(len(s) >= 12 for s in ds["sequence"])  # wrapped lines were joined
    with pytest.raises(DataError, match="no key of `file_labels` matches"):
        load_spec(DatasetSpec(path=amp_files["AMP.te"], file_labels={"DECOY.*": "non-AMP"}))
    with pytest.raises(DataError, match="does not exist"):
        load_spec(DatasetSpec(path="nowhere/missing.fasta"))


# ---------------------------------------------------------------------------------------
# Tokenizer and models
# ---------------------------------------------------------------------------------------


def test_esm_tokenizer_round_trip_and_reload(tmp_path):
    from transformers import AutoTokenizer
    from transformers.models.esm.configuration_esm import get_default_vocab_list

    assert ESM_VOCAB == tuple(get_default_vocab_list()) and len(ESM_VOCAB) == 33
    tokenizer = build_protein_tokenizer(str(tmp_path / "tok"))
    task = ProteinClassification()
    seq = "MKTAYIAKQRQISFVKSHFSRQXBZUO"
    ids = task.tokenize(tokenizer, [seq], 512)["input_ids"][0]
    assert ids == tokenizer(seq)["input_ids"]  # fast path == the tokenizer itself
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "<cls>" and tokens[-1] == "<eos>" and "".join(tokens[1:-1]) == seq
    assert tokenizer.unk_token_id not in ids
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert type(reloaded).__name__ == "EsmTokenizer" and reloaded(seq)["input_ids"] == ids
    # lower case and junk are normalised; long sequences are cut to max_length tokens
    assert task.tokenize(tokenizer, ["mkt\nay"], 512)["input_ids"][0] == tokenizer("MKTAY")["input_ids"]
    short = task.tokenize(tokenizer, [seq], 10)["input_ids"][0]
    assert len(short) == 10 and tokenizer.convert_ids_to_tokens(short)[1:-1] == list(seq[:8])
    window = ProteinClassification(crop="random").tokenize(tokenizer, [seq], 10)["input_ids"][0]
    assert len(window) == 10 and "".join(tokenizer.convert_ids_to_tokens(window)[1:-1]) in seq


def test_model_folder_without_tokenizer_gets_the_esm_alphabet(tmp_path):
    model = new_esm_model("tiny")
    model.save_pretrained(tmp_path / "m")
    task = build_task("protein")
    tokenizer = task.load_tokenizer(str(tmp_path / "m"))
    assert len(tokenizer) == 33 and tokenizer.convert_tokens_to_ids("W") == ESM_VOCAB.index("W")
    clf = task.load_model(str(tmp_path / "m"), ["a", "b", "c"])
    assert type(clf).__name__ == "EsmForSequenceClassification" and clf.config.num_labels == 3
    assert model.config.position_embedding_type == "rotary" and model.config.hidden_size == 32


# ---------------------------------------------------------------------------------------
# Residue views
# ---------------------------------------------------------------------------------------


def test_blosum62_table_is_a_distribution_over_amino_acids():
    scores = blosum62()
    assert torch.equal(scores, scores.T) and scores[BLOSUM62_ORDER.index("W"), BLOSUM62_ORDER.index("W")] == 11
    vocab = list(ESM_VOCAB)
    table = substitution_table(vocab)
    assert torch.allclose(table.sum(dim=1), torch.ones(len(vocab)))
    aa = [vocab.index(a) for a in BLOSUM62_ORDER]
    others = [i for i in range(len(vocab)) if i not in aa]
    assert torch.equal(table[others], torch.eye(len(vocab))[others])  # specials, X, B, Z... never change
    assert float(table[aa][:, others].sum()) == 0.0 and float(table[aa, aa].sum()) == 0.0
    # high-scoring neighbours are preferred: I -> V (3) over I -> L (2) over I -> G (-4)
    row = table[vocab.index("I")]
    assert row[vocab.index("V")] > row[vocab.index("L")] > row[vocab.index("M")] > row[vocab.index("G")]
    # the expected BLOSUM score of a substitution is far above that of a uniformly random one
    sub = table[aa][:, aa]
    off = ~torch.eye(20, dtype=torch.bool)
    assert float((sub * scores).sum() / 20) > float(scores[off].mean()) + 1.5
    assert float((substitution_table(vocab, 0.5)[aa][:, aa] * scores).sum()) > float((sub * scores).sum())


def test_blosum_substitution_stays_in_the_alphabet_and_spares_specials():
    tokenizer = build_protein_tokenizer()
    vocab = list(ESM_VOCAB)
    seqs = ["".join(random.Random(i).choice(BLOSUM62_ORDER) for _ in range(60)) + "XX" for i in range(50)]
    from ssl_text.data.batching import pad_ids

    ids, mask = pad_ids([tokenizer(s)["input_ids"] for s in seqs], tokenizer.pad_token_id)
    editable = ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids)) & (mask > 0)
    out = blosum_substitute(ids, editable, substitution_table(vocab), 0.5, torch.Generator().manual_seed(0))
    changed = out != ids
    assert 0.4 < float(changed.sum() / (editable & (ids != vocab.index("X"))).sum()) < 0.6
    aa_ids = torch.tensor([vocab.index(a) for a in BLOSUM62_ORDER])
    assert bool(torch.isin(out[changed], aa_ids).all())  # stays within the 20 amino acids
    assert torch.equal(out[~editable], ids[~editable]) and bool((out[ids == vocab.index("X")] == vocab.index("X")).all())
    scores = blosum62()
    index = {t: i for i, t in enumerate(BLOSUM62_ORDER)}
    drawn = [scores[index[vocab[a]], index[vocab[b]]] for a, b in zip(ids[changed].tolist(), out[changed].tolist())]
    assert sum(drawn) / len(drawn) > 0.0  # mostly conservative substitutions (a random one averages -1.1)


def test_random_crop_keeps_specials_and_a_contiguous_window():
    tokenizer = build_protein_tokenizer()
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "ACDEFGHIK", "MW"]
    from ssl_text.data.batching import pad_ids

    ids, mask = pad_ids([tokenizer(s)["input_ids"] for s in seqs], tokenizer.pad_token_id)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids)) | (mask == 0)
    out, new_mask = random_crop(
        ids, mask, special, prob=1.0, min_fraction=0.5, pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    for row, seq in enumerate(seqs):
        tokens = tokenizer.convert_ids_to_tokens(out[row][new_mask[row] > 0].tolist())
        assert tokens[0] == "<cls>" and tokens[-1] == "<eos>"
        window = "".join(tokens[1:-1])
        assert window in seq and len(window) >= math.ceil(0.5 * len(seq))
    assert bool((out[new_mask == 0] == tokenizer.pad_token_id).all())
    # with every probability at 0 nothing changes and no random number is drawn
    g = torch.Generator().manual_seed(3)
    same = ViewPipeline(view_steps(ViewConfig(), "views.weak"), ViewContext(tokenizer)).apply_ids(ids, mask, g)
    assert torch.equal(same[0], ids) and torch.rand(1, generator=g) == torch.rand(1, generator=torch.Generator().manual_seed(3))


def test_views_config_checks_residue_fields(amp_files, tmp_path):
    raw = protein_config(amp_files, tmp_path)
    raw["views"]["strong"]["blosum_prob"] = 1.5
    with pytest.raises(ConfigError, match="views.strong.blosum_prob"):
        parse_config(raw)


def test_mlm_mask_chooses_at_least_one_token_per_row():
    ids = torch.tensor([[0, 5, 6, 7, 2, 1], [0, 5, 2, 1, 1, 1]])
    maskable = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    inputs, labels = mlm_mask(
        ids, maskable, mask_token_id=32, replacement_ids=torch.tensor([4, 5]), probability=0.01,
        mask_replace_prob=1.0, random_replace_prob=0.0, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert ((labels != -100).sum(dim=1) >= 1).all() and ((labels != -100) <= maskable).all()
    assert bool((inputs[labels != -100] == 32).all()) and torch.equal(inputs[labels == -100], ids[labels == -100])


# ---------------------------------------------------------------------------------------
# End to end: MLM pretraining, FixMatch with residue views, fine-tuning from the encoder
# ---------------------------------------------------------------------------------------


def pretrain_raw(amp_files, out: Path) -> dict:
    return {
        "output_dir": str(out),
        "task": "protein",
        "model": {"name_or_path": "new:tiny"},
        "data": {
            "unlabeled": [{"path": "fasta", "data_files": [amp_files["AMP.tr"], amp_files["DECOY.tr"]], "label_column": None}],
            "exclude": [{"path": "fasta", "data_files": [amp_files["AMP.te"], amp_files["DECOY.te"]], "label_column": None}],
            "validation_fraction": 0.1,
            "max_length": 24,
            "crop": "random",
        },
        "pretrain": {"objective": "mlm", "mlm_probability": 0.15},
        "trainer": {
            "max_steps": 6, "lb_batch_size": 8, "learning_rate": 3e-3, "warmup_ratio": 0.0,
            "eval_every": 3, "save_every": 3, "log_every": 1, "progress_bar": False,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(amp_files, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pretrain") / "run"
    return out, pretrain(parse_pretrain_config(pretrain_raw(amp_files, out)))


def test_mlm_pretraining_from_scratch(pretrained):
    out, metrics = pretrained
    logs = metrics["last_train_logs"]
    assert logs["step"] == 6 and logs["loss"] == pytest.approx(logs["loss_mlm"])  # the MLM loss alone
    assert metrics["corpus"]["train_sequences"] + metrics["corpus"]["held_out_sequences"] == 80
    # The reported model is the held-out evaluation with the best masked-token accuracy (steps 3 and 6).
    history = metrics["held_out_history"]
    assert [h["step"] for h in history] == [3, 6]
    assert metrics["held_out"] == max(history, key=lambda h: h["accuracy"])
    assert metrics["selected_step"] == metrics["held_out"]["step"]
    assert metrics["held_out"]["perplexity"] == pytest.approx(math.exp(metrics["held_out"]["loss"]))
    encoder = out / "encoder"
    assert (encoder / "config.json").exists() and (encoder / "vocab.txt").exists()
    set_seed(0)  # the run's seed: rebuild the initial weights and check that training moved them
    initial = new_esm_model("tiny").state_dict()
    trained = load_file(str(encoder / "model.safetensors"))
    key = "esm.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained[key], initial[key])
    step3, step6 = (load_file(str(out / "checkpoints" / f"step_000000{k}" / "model.safetensors")) for k in (3, 6))
    assert not torch.equal(step3[key], step6[key])  # and kept moving between checkpoints
    assert json.loads((out / "metrics.json").read_text())["encoder"] == str(encoder)


def test_pretrain_config_is_typed(amp_files, tmp_path):
    raw = pretrain_raw(amp_files, tmp_path / "x")
    raw["pretrain"]["objective"] = "simclr"
    with pytest.raises(ConfigError, match="pretrain.objective"):
        parse_pretrain_config(raw)
    raw = pretrain_raw(amp_files, tmp_path / "x")
    raw["data"]["unlabeled"][0]["colour"] = "red"
    with pytest.raises(ConfigError, match="colour"):
        parse_pretrain_config(raw)


@pytest.mark.slow
def test_fixmatch_with_residue_views_on_a_tiny_esm(amp_files, tmp_path):
    raw = protein_config(amp_files, tmp_path, "fixmatch", tau=0.5)
    metrics = train(parse_config(raw))
    logs = metrics["last_train_logs"]
    assert logs["step"] == 4 and math.isfinite(logs["loss"]) and "pseudo_label_accuracy" in logs
    assert metrics["num_unlabeled"] == 72 and metrics["label_names"] == ["AMP", "non-AMP"]
    assert {"accuracy", "macro_f1", "mcc"} <= set(metrics["test"])
    best = Path(raw["output_dir"]) / "best"
    assert (best / "vocab.txt").exists()
    assert type(build_task("protein").load_model(str(best), ["AMP", "non-AMP"])).__name__ == "EsmForSequenceClassification"


def test_classifier_starts_from_the_pretrained_encoder(pretrained, amp_files, tmp_path):
    out, _ = pretrained
    encoder = out / "encoder"
    clf = build_task("protein").load_model(str(encoder), ["AMP", "non-AMP"])
    mlm = load_file(str(encoder / "model.safetensors"))
    key = "esm.encoder.layer.1.attention.self.query.weight"
    assert torch.equal(clf.state_dict()[key], mlm[key])

    raw = protein_config(amp_files, tmp_path, "supervised", model=str(encoder))
    raw["trainer"]["max_steps"] = 2
    metrics = train(parse_config(raw))
    assert math.isfinite(metrics["last_train_logs"]["loss"])
    assert_scores_match_confusion_matrix(metrics, num_rows=32)
    (tp, fn), (fp, tn) = metrics["confusion_matrix"]["matrix"]  # AMP is class 0
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics["test"]["mcc"] == pytest.approx((tp * tn - fp * fn) / denominator if denominator else 0.0)


@pytest.mark.slow
def test_cli_pretrain(amp_files, tmp_path):
    raw = pretrain_raw(amp_files, tmp_path / "cli_run")
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_text", "pretrain", str(path), "trainer.max_steps=2", "data.validation_fraction=0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["selected_step"] == 2 and Path(summary["encoder"], "model.safetensors").exists()


@pytest.mark.slow
def test_pretraining_resumes_exactly(amp_files, tmp_path):
    import shutil

    raw = pretrain_raw(amp_files, tmp_path / "full")
    raw["trainer"].update(max_steps=4, eval_every=2, save_every=2, keep_checkpoints=2)
    full = pretrain(parse_pretrain_config(raw))
    stopped = tmp_path / "stopped"
    shutil.copytree(tmp_path / "full", stopped)
    shutil.rmtree(stopped / "checkpoints" / "step_0000004")
    (stopped / "encoder").rename(stopped / "best")  # mid-run, the selected model is still in best/
    (stopped / "metrics.json").unlink()  # written when a run ends: a stopped run has none
    raw["output_dir"] = str(stopped)
    resumed = pretrain(parse_pretrain_config(raw), resume=True)
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000004" / "model.safetensors"))
    b = load_file(str(stopped / "checkpoints" / "step_0000004" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["last_train_logs"]["loss"] == full["last_train_logs"]["loss"]
    assert (stopped / "encoder" / "model.safetensors").exists()


def test_held_out_mlm_evaluation_scores_every_batch_once_with_fixed_masks():
    """`evaluate_mlm` deals the held-out batches out through Accelerate (`gather_for_metrics`): with one process
    its figures are those of a plain loop over every batch, each masked from its own seed."""
    import datasets
    import torch.nn.functional as F
    from accelerate import Accelerator

    from ssl_text.config.seeds import derive_seed
    from ssl_text.pipelines.pretrain import EVAL_MASK_SALT, MLMCollator, PretrainConfig, evaluate_mlm

    torch.manual_seed(0)
    task, tokenizer = build_task("protein"), build_protein_tokenizer()
    model = task.new_masked_lm("new:tiny").eval()
    peptides = make_peptides(13, "amp", 1) + make_peptides(10, "decoy", 2)  # 23 rows: batches of 5, the last of 3
    held_out = datasets.Dataset.from_dict({"input_ids": task.tokenize(tokenizer, peptides, 24)["input_ids"]})
    collate = MLMCollator(tokenizer, PretrainConfig(), 24, "truncate")
    loss_sum = predicted = correct = 0.0
    with torch.no_grad():
        for k, start in enumerate(range(0, len(held_out), 5)):
            batch = collate(held_out[start : start + 5], torch.Generator().manual_seed(derive_seed(7, EVAL_MASK_SALT, k)))
            logits, labels = model(**batch["lb"]).logits.float(), batch["lb_labels"]
            chosen = labels != -100
            loss_sum += float(F.cross_entropy(logits[chosen], labels[chosen], reduction="sum"))
            predicted += int(chosen.sum())
            correct += int((logits.argmax(-1)[chosen] == labels[chosen]).sum())
    scores = evaluate_mlm(Accelerator(cpu=True), model, held_out, collate, batch_size=5, seed=7)
    assert scores["loss"] == pytest.approx(loss_sum / predicted, abs=1e-6)
    assert scores["accuracy"] == pytest.approx(correct / predicted, abs=1e-6)
    assert scores == evaluate_mlm(Accelerator(cpu=True), model, held_out, collate, batch_size=5, seed=7)
