"""Text classification on any `AutoModelForSequenceClassification` encoder."""

from __future__ import annotations

import os

import numpy as np
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

import ssl_text.metrics
from ssl_text.data.loading import valid_unicode
from ssl_text.models.resolve import ModelMismatchError, check_tokenizer

METRIC_PATH = os.path.join(os.path.dirname(ssl_text.metrics.__file__), "classification")


class TextClassification:
    name = "text_classification"
    pipeline_tag = "text-classification"
    select_metric = "accuracy"
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

    def collator(self, tokenizer, views, requested: tuple[str, ...]):
        from ssl_text.augment.collate import TextCollator

        return TextCollator(tokenizer, views, requested)

    def label_counts(self, labeled, num_labels: int) -> np.ndarray:
        return np.bincount(labeled["label"], minlength=num_labels)

    def score(self, logits: np.ndarray, dataset, label_names: list[str]):
        """(metrics, predictions, references) of one evaluation split."""
        predictions, references = logits.argmax(-1), np.asarray(dataset["label"])
        return self.compute_metrics(predictions, references), predictions, references

    def load_tokenizer(self, path: str):
        tokenizer = AutoTokenizer.from_pretrained(path)
        check_tokenizer(tokenizer, path)
        return tokenizer

    def load_model(self, path: str, label_names: list[str]):
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
        import evaluate  # slow to import (about 4 s): only when scoring

        metric = evaluate.load(METRIC_PATH)
        return metric.compute(predictions=predictions.tolist(), references=references.tolist())


class _quiet:
    """Silence transformers' load report for the duration of a load."""

    def __enter__(self):
        self.level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()

    def __exit__(self, *exc):
        transformers.logging.set_verbosity(self.level)
