"""Text classification on any `AutoModelForSequenceClassification` encoder."""

from __future__ import annotations

import os

import evaluate
import numpy as np
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import ssl_text.metrics
from ssl_text.data import valid_unicode

METRIC_PATH = os.path.join(os.path.dirname(ssl_text.metrics.__file__), "classification")


class ModelMismatchError(ValueError):
    """The pretrained model does not fit the data or the tokenizer."""


def check_tokenizer(tokenizer, path: str) -> None:
    """Refuse a tokenizer that maps everything to [UNK] or has no vocabulary (transformers 5 pitfall)."""
    if len(tokenizer) < 10:
        raise ModelMismatchError(
            f"the tokenizer loaded from {path!r} has only {len(tokenizer)} tokens; the folder probably "
            "lacks its vocabulary file (vocab.txt / tokenizer.json). Save the tokenizer next to the model."
        )


class TextClassification:
    name = "text_classification"
    pipeline_tag = "text-classification"

    def load_tokenizer(self, path: str):
        tokenizer = AutoTokenizer.from_pretrained(path)
        check_tokenizer(tokenizer, path)
        return tokenizer

    def load_model(self, path: str, label_names: list[str]):
        from ssl_text.projection import is_projection_classifier, load_projection_classifier

        if is_projection_classifier(path):  # fine-tuned from a projection-head layer (SimCLRv2, ssl_text/projection.py)
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
        with _quiet():
            return AutoModelForSequenceClassification.from_pretrained(
                path,
                num_labels=len(label_names),
                id2label=id2label,
                label2id={v: k for k, v in id2label.items()},
            )

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        texts = [valid_unicode(t) for t in texts]
        return {"input_ids": tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]}

    def compute_metrics(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        metric = evaluate.load(METRIC_PATH)
        return metric.compute(predictions=predictions.tolist(), references=references.tolist())


class _quiet:
    """Silence transformers' load report for the duration of a load."""

    def __enter__(self):
        self.level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()

    def __exit__(self, *exc):
        transformers.logging.set_verbosity(self.level)
