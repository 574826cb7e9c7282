"""Text classification on any `AutoModelForSequenceClassification` encoder."""

from __future__ import annotations

import os

import numpy as np
import transformers
from scipy.special import softmax
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import ssl_text.metrics
from ssl_text.config.keys import ANALYSIS_LABEL
from ssl_text.data.loading import valid_unicode
from ssl_text.models.mean_pooling import ARCHITECTURE as MEAN_POOLING
from ssl_text.models.mean_pooling import MeanPoolingForSequenceClassification
from ssl_text.models.resolve import ModelMismatchError, check_tokenizer, sentence_pooling

METRIC_PATH = os.path.join(os.path.dirname(ssl_text.metrics.__file__), "classification")


class TextClassification:
    name = "text_classification"
    pipeline_tag = "text-classification"
    select_metric = "accuracy"
    metrics = ("accuracy", "macro_f1", "mcc")  # ssl_text/metrics/classification
    token_level = False

    def check_views(self, views) -> None:
        """Refuse the NER-only word operations, which need tags per word."""
        for name in ("weak", "strong"):
            for key in ("o_word_prob", "mention_swap_prob"):
                if getattr(getattr(views, name), key):
                    from ssl_text.config import ConfigError

                    raise ConfigError(
                        f"`views.{name}.{key}` needs tags per word (task `ner`); task `{self.name}` has one label "
                        f"per text. Set it to 0, or use the word operations of `views.{name}.pipeline`."
                    )

    def load_data(self, cfg):
        from ssl_text.data.text_data import load_text_data

        return load_text_data(cfg)

    def encode(self, ds, tokenizer, data, label_names: list[str], extra_columns=()):
        """Token ids of `text` (into `input_ids`) and of each augmentation column (cached `datasets.map`)."""
        from ssl_text.augment.collate import aug_ids_column
        from ssl_text.data.loading import tokenize_column

        for column in ("text", *extra_columns):
            out = "input_ids" if column == "text" else aug_ids_column(column)
            ds = tokenize_column(ds, self, tokenizer, data.max_length, column, out, missing_as_empty=column != "text")
        return ds

    def load_eval_split(self, spec, data, label_names: list[str], where: str):
        """An evaluation set (`text`, `label` ids) outside the training config, e.g. `ssl-text evaluate --data`."""
        from ssl_text.data.loading import add_label_ids, add_text_column, load_spec

        ds = add_text_column(load_spec(spec), spec, where)
        return add_label_ids(ds, spec, data, label_names, where)

    def collator(self, tokenizer, views, requested: tuple[str, ...], context=None):
        """Views with text-level steps (word operations, paraphrase columns) tokenize the augmented text as
        `tokenize` does, with `context.data.max_length`, and fit on `context.unlabeled` (a `CollatorContext`)."""
        from ssl_text.augment.collate import TextCollator, views_need_text

        if context is None or not views_need_text(views, requested):
            return TextCollator(tokenizer, views, requested)

        def encode(texts: list[str]) -> list[list[int]]:
            return self.tokenize(tokenizer, texts, context.data.max_length)["input_ids"]

        return TextCollator(tokenizer, views, requested, encode=encode, corpus=context.unlabeled)

    def label_counts(self, labeled, num_labels: int) -> np.ndarray:
        return np.bincount(labeled["label"], minlength=num_labels)

    def score(self, logits: np.ndarray, dataset, label_names: list[str]):
        """(metrics, predictions, references) of one evaluation split."""
        predictions, references = logits.argmax(-1), np.asarray(dataset["label"])
        return self.compute_metrics(predictions, references), predictions, references

    def token_decoder(self, label_names: list[str]) -> None:
        """One label per text: hard pseudo-labels are the argmax, no sequence to decode."""
        return None

    def mask_groups(self, label_names: list[str]) -> None:
        """One label per text: the mask rate is logged per class by the algorithms, no groups of classes."""
        return None

    def soft_targets(self, logits: np.ndarray, rows, temperature: float) -> np.ndarray:
        """Distillation targets: softmax(logits / T), one row [C] per text (float32)."""
        return softmax(logits / temperature, axis=-1).astype(np.float32)

    def pseudo_label_pool(self, logits: np.ndarray, pool, label_names: list[str], labeling, labeled):
        """Self-training targets: the pool's texts whose top teacher probability reaches `labeling.tau`, soft
        or one-hot, optionally resampled to the class prior of `labeled` (`select_pseudo_labels`). Returns
        (rows [M], targets: M lists [C], statistics or None when nothing is kept)."""
        probs = softmax(logits, axis=-1)
        counts = self.label_counts(labeled, len(label_names))
        rows, targets = select_pseudo_labels(probs, labeling, counts / counts.sum())
        truth = np.asarray(pool[ANALYSIS_LABEL]) if ANALYSIS_LABEL in pool.column_names else None
        stats = pool_stats(probs, rows, targets, label_names, truth) if len(rows) else None
        return rows, targets.tolist(), stats

    def predict(self, model, tokenizer, texts: list[str], label_names: list[str], batch_size: int, probabilities) -> list[dict]:
        """One record per text: its label and class probabilities, from `probabilities(texts)` ([N, C], the
        engine's batched inference)."""
        return [
            {
                "text": text,
                "label": label_names[int(p.argmax())],
                "probabilities": {name: round(float(v), 6) for name, v in zip(label_names, p)},
            }
            for text, p in zip(texts, probabilities(texts))
        ]

    def new_masked_lm(self, path: str):
        """A masked-LM from scratch (`model.name_or_path: new:<size>`): only the protein task builds one."""
        from ssl_text.config import ConfigError

        raise ConfigError(f"`model.name_or_path: {path}` (a model from scratch) exists for `task: protein` only.")

    def load_tokenizer(self, path: str):
        tokenizer = AutoTokenizer.from_pretrained(path)
        check_tokenizer(tokenizer, path)
        return tokenizer

    def load_model(self, path: str, label_names: list[str], pooling: str = "auto"):
        """The classifier at `path`: a saved one as it was saved; on a bare encoder a new head that reads the
        mean-pooled embeddings (`pooling: mean`, or `auto` on a mean-pooling sentence-transformers folder) or the
        [CLS] pooler (`cls`, or `auto` otherwise)."""
        from ssl_text.models.projection import is_projection_classifier, load_projection_classifier

        if is_projection_classifier(path):  # fine-tuned from a projection-head layer (SimCLRv2, ssl_text/models/projection.py)
            return load_projection_classifier(path, label_names)
        config = AutoConfig.from_pretrained(path)
        has_head = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        if has_head and config.num_labels != len(label_names):
            raise ModelMismatchError(
                f"{path!r} has a classification head for {config.num_labels} labels but the data has "
                f"{len(label_names)} ({label_names}); start from the encoder without its head, or fix "
                "`data.label_names`."
            )
        id2label = dict(enumerate(label_names))
        labels = {"num_labels": len(label_names), "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
        mean_pooled = MEAN_POOLING in (config.architectures or []) or (
            not has_head and resolved_pooling(path, pooling) == "mean"
        )
        with _quiet():
            if mean_pooled:
                return MeanPoolingForSequenceClassification.from_pretrained(
                    path, config=AutoConfig.from_pretrained(path, **labels)
                )
            return AutoModelForSequenceClassification.from_pretrained(path, **labels)

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        texts = [valid_unicode(t) for t in texts]
        return {"input_ids": tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]}

    def compute_metrics(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        import evaluate  # slow to import (about 4 s): only when scoring

        metric = evaluate.load(METRIC_PATH)
        return metric.compute(predictions=predictions.tolist(), references=references.tolist())


def resolved_pooling(path: str, pooling: str) -> str:
    """`model.pooling` made concrete for the encoder at `path`: "auto" is "mean" on a sentence-transformers folder
    that mean-pools, else "cls"."""
    if pooling != "auto":
        return pooling
    return "mean" if sentence_pooling(path) == "mean" else "cls"


def select_pseudo_labels(
    probs: np.ndarray, labeling, prior: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the pool to train on and their targets, from teacher probabilities [N, C].

    `labeling` has `tau`, `hard_labels` and `balance` (`ssl_text.pipelines.self_training.PseudoLabeling`).
    Returns (rows [M], targets [M, C]); with `labeling.balance`, `prior` [C] (the labeled class
    shares) sets each class's count to round(prior_c * #kept), filled with the class's most
    confident examples, repeated in turn when the class has too few. A class the teacher never
    predicts confidently stays empty.
    """
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    rows = np.flatnonzero(confidence >= labeling.tau)
    if labeling.balance:
        if prior is None:
            raise ValueError("class balancing needs the labeled class prior; pass `prior`.")
        total, chosen = len(rows), []
        for cls in range(probs.shape[1]):
            members = rows[predicted[rows] == cls]
            members = members[np.argsort(-confidence[members], kind="stable")]
            if len(members):
                chosen.append(np.resize(members, int(round(prior[cls] * total))))
        rows = np.sort(np.concatenate(chosen)) if chosen else rows[:0]
    if labeling.hard_labels:
        targets = np.eye(probs.shape[1], dtype=np.float32)[predicted[rows]]
    else:
        targets = probs[rows].astype(np.float32)
    return rows, targets


def pool_stats(
    probs: np.ndarray, rows: np.ndarray, targets: np.ndarray, label_names: list[str], truth: np.ndarray | None
) -> dict:
    """Size, class distribution and (with the pool's true labels) accuracy of a pseudo-labeled pool."""
    chosen = targets.argmax(axis=1)
    counts = np.bincount(chosen, minlength=len(label_names))
    stats: dict = {
        "pool_size": int(len(probs)),
        "kept": int(len(rows)),
        "distinct_kept": int(len(np.unique(rows))),
        "class_distribution": {name: int(n) for name, n in zip(label_names, counts)},
    }
    if truth is not None:
        stats["pool_accuracy"] = float((probs.argmax(axis=1) == truth).mean())
        stats["pseudo_label_accuracy"] = float((chosen == truth[rows]).mean()) if len(rows) else None
    return stats


class _quiet:
    """Silence transformers' load report for the duration of a load."""

    def __enter__(self):
        self.level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()

    def __exit__(self, *exc):
        transformers.logging.set_verbosity(self.level)
