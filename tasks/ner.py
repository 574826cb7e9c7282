"""Named-entity recognition on any `AutoModelForTokenClassification` encoder (`task: ner`).

Words are split into subwords by the model's (fast) tokenizer. The tag of a word goes on its
first subword; the other subwords, [CLS]/[SEP] and padding get -100 and never count in a
loss (`data.label_all_subwords: true` tags every subword, `B-X` becoming `I-X` after the
first). Unlabeled sentences carry the same first-subword positions, so the token-level
algorithms (pseudo_label, fixmatch, mean_teacher, supervised) mask padding and inner
subwords out, and their hard pseudo-labels are decoded into valid BIO sequences
(tasks/bio.py) before they are used. Views only mask tokens, never delete them, so the
positions of the weak and strong views stay aligned. Evaluation is entity-level
precision/recall/F1 (seqeval, conlleval rules) on the words: a word the tokenizer drops or
truncation cuts off is predicted `O`.
"""

from __future__ import annotations

import os
import random

import datasets
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

import ssl_text.metrics
from ssl_text.augment.collate import VIEW_FIELDS
from ssl_text.augment.token_views import token_dropout
from ssl_text.augment.words import seed_from
from ssl_text.config import ConfigError, DataConfig, ViewConfig, ViewsConfig
from ssl_text.config.keys import (
    ANALYSIS_LABEL,
    INDEX,
    LB_LABELS,
    PSEUDO_TARGET,
    ULB_INDEX,
    ULB_STRONG,
    ULB_TOKEN_MASK,
    ULB_WEAK,
)
from ssl_text.data.batching import pad_ids
from ssl_text.data.loading import valid_unicode
from ssl_text.data.text_data import TextData
from ssl_text.models.resolve import ModelMismatchError, check_tokenizer
from ssl_text.tasks.bio import bio_constraints, decode_bio, entity_groups, repair_bio
from ssl_text.tasks.ner_augment import mention_bank, o_vocabulary, substitute_o_words, swap_mentions
from ssl_text.tasks.ner_data import check_bio, load_ner_data, load_token_rows, tag_ids
from ssl_text.tasks.text_classification import _quiet

METRIC_PATH = os.path.join(os.path.dirname(ssl_text.metrics.__file__), "seqeval")
IGNORE = -100
WORD_INDEX = "word_index"  # per subword: the index of its word, -1 for special tokens


def align_labels(word_ids: list[int | None], word_labels: list[int], label_all_subwords: bool,
                 inside_of: dict[int, int]) -> list[int]:
    """One label per subword: the word's tag on its first subword, -100 on special tokens and
    (unless `label_all_subwords`) on the word's other subwords, where `B-X` becomes `I-X`."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE)
        elif word != previous:
            labels.append(word_labels[word])
        else:
            labels.append(inside_of.get(word_labels[word], word_labels[word]) if label_all_subwords else IGNORE)
        previous = word
    return labels


def first_subwords(word_index: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: True where a word starts (word_index >= 0 and differs from the previous position)."""
    previous = torch.nn.functional.pad(word_index[:, :-1], (1, 0), value=-1)
    return (word_index >= 0) & (word_index != previous)


class TokenCollator:
    """Pads labeled rows with their subword labels, and builds the weak/strong views of unlabeled rows:
    token masking (never deletion) for any pool; on a pool whose tags are known (a self-training pool with
    the teacher's targets per word), the strong view may also swap entity mentions and replace `O` words
    (`views.strong.mention_swap_prob`, `o_word_prob`), drawing from the labeled sentences, and is then
    tokenized again with the targets moved along."""

    def __init__(self, tokenizer, views: ViewsConfig, requested: tuple[str, ...], context=None):
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.views = views
        self.requested = requested
        strong = views.strong
        self.word_ops = ULB_STRONG in requested and (strong.o_word_prob > 0 or strong.mention_swap_prob > 0)
        if self.word_ops:
            if ULB_WEAK in requested:
                raise ConfigError(
                    "`views.strong.o_word_prob` / `mention_swap_prob` change the words of a sentence, so the strong "
                    "view no longer lines up word for word with the weak one; they are for algorithms that read the "
                    "strong view alone with known tags (noisy_student in `ssl-text self-train`). Set them to 0."
                )
            data, labeled_rows, label_names = context.data, context.labeled, context.label_names
            tags = [[label_names[t] for t in row] for row in labeled_rows["label"]]
            self.max_length = data.max_length
            self.label_names = label_names
            self.bank = mention_bank(labeled_rows["tokens"], tags)
            self.o_words = o_vocabulary(labeled_rows["tokens"], tags)

    def labeled(self, rows: dict, generator: torch.Generator) -> dict:
        ids, mask = pad_ids(rows["input_ids"], self.pad_id)
        labels, _ = pad_ids(rows["labels"], IGNORE)
        return {"lb": {"input_ids": ids, "attention_mask": mask}, LB_LABELS: labels}

    def _augment_words(self, rows: dict, generator: torch.Generator) -> dict:
        """Mention swap, then O-word substitution, on each sentence of a pool with per-word targets."""
        if PSEUDO_TARGET not in rows:
            raise ConfigError(
                "`views.strong.o_word_prob` / `mention_swap_prob` need sentences whose tags are known, but the "
                "unlabeled rows carry none; use them in `ssl-text self-train`, whose pool holds the teacher's tags."
            )
        rng = random.Random(seed_from(generator))
        strong, num_tags = self.views.strong, len(self.label_names)
        sentences, targets = [], []
        for words, row_targets in zip(rows["tokens"], rows[PSEUDO_TARGET]):
            known = [sum(t) > 0 for t in row_targets]
            tags = [self.label_names[int(np.argmax(t))] if k else "O" for t, k in zip(row_targets, known)]
            words, tags, origin = swap_mentions(words, tags, self.bank, strong.mention_swap_prob, rng)
            kept = [o is not None and known[o] for o in origin]
            words, _ = substitute_o_words(
                words, [t if k else "?" for t, k in zip(tags, kept)], self.o_words, strong.o_word_prob, rng
            )
            one_hot = np.eye(num_tags, dtype=np.float32)
            targets.append([row_targets[o] if o is not None else one_hot[self.label_names.index(t)].tolist()
                            for o, t in zip(origin, tags)])
            sentences.append(words)
        enc = self.tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=self.max_length)
        word_index = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(sentences))]
        out = {k: v for k, v in rows.items() if k != "analysis_labels"}  # the words changed: no truth to compare
        return {**out, "tokens": sentences, "input_ids": enc["input_ids"], WORD_INDEX: word_index, PSEUDO_TARGET: targets}

    def unlabeled(self, rows: dict, generator: torch.Generator) -> dict:
        if self.word_ops:
            rows = self._augment_words(rows, generator)
        ids, mask = pad_ids(rows["input_ids"], self.pad_id)
        word_index, _ = pad_ids(rows[WORD_INDEX], -1)
        positions = first_subwords(word_index)  # [B, L]
        batch: dict = {ULB_INDEX: torch.as_tensor(rows[INDEX]), ULB_TOKEN_MASK: positions}
        if PSEUDO_TARGET in rows:  # self-training: the teacher's targets per word, moved to the first subwords
            starts = [word_index[i][positions[i]].tolist() for i in range(len(word_index))]
            batch["ulb_targets"] = torch.tensor(
                [rows[PSEUDO_TARGET][i][w] for i, words in enumerate(starts) for w in words], dtype=torch.float
            ).reshape(-1, len(rows[PSEUDO_TARGET][0][0]))  # [N, C]
        if "analysis_labels" in rows:
            truth, _ = pad_ids(rows["analysis_labels"], IGNORE)
            batch["ulb_analysis_labels"] = truth[positions]  # [N]
        for name, view in ((ULB_WEAK, self.views.weak), (ULB_STRONG, self.views.strong)):
            if name in self.requested:
                batch[name] = self._view(ids, mask, positions, word_index, view, generator)
        return batch

    def _view(self, ids, mask, positions, word_index, view: ViewConfig, generator) -> dict:
        if view.mask_prob > 0:
            ids, mask = token_dropout(
                ids, mask, word_index < 0, mask_token_id=self.mask_id, pad_token_id=self.pad_id,
                mask_prob=view.mask_prob, delete_prob=0.0, generator=generator,
            )
        return {"input_ids": ids, "attention_mask": mask}


class NamedEntityRecognition:
    name = "ner"
    pipeline_tag = "token-classification"
    select_metric = "f1"
    metrics = ("f1", "precision", "recall", "accuracy")  # ssl_text/metrics/seqeval; per-type scores vary with the data
    token_level = True

    def check_views(self, views: ViewsConfig) -> None:
        for name in ("weak", "strong"):
            view: ViewConfig = getattr(views, name)
            unsupported = {k: getattr(view, k) for k in ("delete_prob", "blosum_prob", "crop_prob") if getattr(view, k)}
            if unsupported or view.aug_columns:
                key = next(iter(unsupported), "aug_columns")
                raise ConfigError(
                    f"`views.{name}.{key}` is set for task `ner`, but NER views must keep every word in place "
                    "so that tags stay aligned; use `mask_prob` (token masking) and set the others to 0."
                )
            for key in ("o_word_prob", "mention_swap_prob"):
                value = getattr(view, key)
                if not 0.0 <= value <= 1.0 or (name == "weak" and value):
                    raise ConfigError(
                        f"`views.{name}.{key}` is {value}; expected a share in [0, 1], on the strong view only."
                    )

    def load_data(self, cfg: DataConfig) -> TextData:
        return load_ner_data(cfg)

    def load_tokenizer(self, path: str):
        tokenizer = AutoTokenizer.from_pretrained(path)
        check_tokenizer(tokenizer, path)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelMismatchError(
                f"the tokenizer of {path!r} is not a fast (Rust) tokenizer, so words cannot be mapped to "
                "subwords; save a `tokenizer.json` with the model (AutoTokenizer.from_pretrained(..., use_fast=True))."
            )
        return tokenizer

    def load_model(self, path: str, label_names: list[str], pooling: str = "auto"):
        if pooling == "mean":
            from ssl_text.config import ConfigError

            raise ConfigError("`model.pooling: mean` pools a whole text; task `ner` labels every token. Set it to auto.")
        config = AutoConfig.from_pretrained(path)
        has_head = any(a.endswith("ForTokenClassification") for a in (config.architectures or []))
        if has_head and config.num_labels != len(label_names):
            raise ModelMismatchError(
                f"{path!r} has a token-classification head for {config.num_labels} tags but the data has "
                f"{len(label_names)} ({label_names}); start from the encoder without its head, or fix `data.label_names`."
            )
        id2label = dict(enumerate(label_names))
        with _quiet():
            return AutoModelForTokenClassification.from_pretrained(
                path, num_labels=len(label_names), id2label=id2label, label2id={v: k for k, v in id2label.items()}
            )

    def encode(self, ds, tokenizer, data: DataConfig, label_names: list[str], extra_columns=()):
        """Subword ids, word index per subword, and aligned labels (cached `datasets.map`)."""
        label2id = {name: i for i, name in enumerate(label_names)}
        inside_of = {i: label2id.get("I-" + name[2:], i) for i, name in enumerate(label_names) if name.startswith("B-")}

        def encode_batch(batch):
            words = [[valid_unicode(w) for w in sentence] for sentence in batch["tokens"]]
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=data.max_length)
            word_ids = [enc.word_ids(i) for i in range(len(words))]
            out = {"input_ids": enc["input_ids"], WORD_INDEX: [[-1 if w is None else w for w in ws] for ws in word_ids]}
            for source, target in (("label", "labels"), (ANALYSIS_LABEL, "analysis_labels")):
                if source in batch:
                    out[target] = [
                        align_labels(ws, tags, data.label_all_subwords, inside_of) for ws, tags in zip(word_ids, batch[source])
                    ]
            return out

        return ds.map(encode_batch, batched=True, desc="tokenize words")

    def load_eval_split(self, spec, data: DataConfig, label_names: list[str], where: str):
        """Tagged sentences (`tokens`, `label` ids) outside the training config, e.g. `ssl-text evaluate --data`."""
        words, tags = load_token_rows(spec, where, need_tags=True)
        check_bio(tags, where, spec)
        return datasets.Dataset.from_dict({"tokens": words, "label": tag_ids(tags, label_names, where, spec)})

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        """Subword ids of raw sentences, split into words at whitespace as `encode` splits them (no labels)."""
        words = [[valid_unicode(w) for w in (text or "").split()] for text in texts]
        return {"input_ids": tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)["input_ids"]}

    def new_masked_lm(self, path: str):
        """A masked-LM from scratch (`model.name_or_path: new:<size>`): only the protein task builds one."""
        raise ConfigError(f"`model.name_or_path: {path}` (a model from scratch) exists for `task: protein` only.")

    def predict(self, model, tokenizer, texts: list[str], label_names: list[str], batch_size: int, probabilities=None) -> list[dict]:
        """Entity spans of raw sentences (text, type, start, end, score) through `transformers.pipeline`,
        exactly as a user without ssl-text would get them (`probabilities`, the engine's per-text inference,
        is not used: a sentence has no one label)."""
        from transformers import pipeline

        tagger = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple")
        results = tagger(texts, batch_size=batch_size) if texts else []
        return [
            {
                "text": text,
                "entities": [
                    {"text": text[e["start"] : e["end"]], "type": e["entity_group"], "start": int(e["start"]), "end": int(e["end"]),
                     "score": round(float(e["score"]), 6)}
                    for e in entities
                ],
            }
            for text, entities in zip(texts, results)
        ]

    def collator(self, tokenizer, views: ViewsConfig, requested: tuple[str, ...], context=None) -> TokenCollator:
        """Views in the simple form only (a pipeline could move words away from their tags). `context` (a
        `CollatorContext`): the data config, the encoded labeled rows and the label names, for the NER-safe
        word operations."""
        piped = [f"views.{field}.pipeline" for name, field in VIEW_FIELDS.items()
                 if name in requested and getattr(views, field).pipeline]  # fmt: skip
        if piped:
            raise ConfigError(
                f"task `{self.name}` labels every token, so its views take the simple form only (e.g. `mask_prob`), "
                f"which keeps words and tags aligned; remove {piped}."
            )
        return TokenCollator(tokenizer, views, requested, context)

    def label_counts(self, labeled, num_labels: int) -> np.ndarray:
        tags = np.concatenate([np.asarray(t, dtype=np.int64) for t in labeled["label"]])
        return np.bincount(tags, minlength=num_labels)

    def token_decoder(self, label_names: list[str]):
        """Hard pseudo-labels for the trainer's algorithms: valid BIO sequences per sentence."""
        may_start, may_follow = bio_constraints(label_names)

        def decode(probs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:  # [B, L, C], [B, L] -> [N]
            return decode_bio(probs, positions, may_start, may_follow)

        return decode

    def mask_groups(self, label_names: list[str]) -> dict[str, list[int]]:
        return entity_groups(label_names)

    def pseudo_label_pool(self, logits: list[np.ndarray], pool, label_names: list[str], labeling, labeled=None):
        """Self-training targets per word of each pool sentence, from the teacher's subword logits.

        Each sentence is decoded into its most probable valid BIO sequence; a word keeps a target (the
        one-hot decoded tag with `labeling.hard_labels`, or the teacher's probabilities) when the decoded
        tag's probability reaches `labeling.tau`, else an all-zero row that the student's loss skips.
        Returns (rows [M], targets: M lists of [W_i, C]) for the sentences with at least one target word,
        and statistics per entity type. (`labeled` is not used: sentences are not resampled by class.)
        """
        if labeling.balance:
            raise ConfigError("--balance resamples whole examples by class, which NER sentences do not have; drop it.")
        tau, hard = labeling.tau, labeling.hard_labels
        may_start, may_follow = bio_constraints(label_names)
        num_tags = len(label_names)
        rows, targets = [], []
        words_total = words_kept = correct = judged = 0
        kept_per_tag = np.zeros(num_tags, dtype=np.int64)
        truths = pool[ANALYSIS_LABEL] if ANALYSIS_LABEL in pool.column_names else None
        for i, (row_logits, word_index, words) in enumerate(zip(logits, pool[WORD_INDEX], pool["tokens"])):
            words_total += len(words)
            starts = first_subwords(torch.tensor([word_index[: len(row_logits)]]))[0]
            if not bool(starts.any()):
                continue
            probs = torch.softmax(torch.as_tensor(row_logits)[starts].float(), dim=-1)  # [W', C]
            tags = decode_bio(probs[None], torch.ones(1, len(probs), dtype=torch.bool), may_start, may_follow)
            confidence = probs.gather(1, tags[:, None]).squeeze(1)
            word_ids = torch.as_tensor(word_index[: len(row_logits)])[starts].tolist()
            target = np.zeros((len(words), num_tags), dtype=np.float32)
            for word, tag, conf, p in zip(word_ids, tags.tolist(), confidence.tolist(), probs.numpy()):
                if conf >= tau:
                    target[word] = np.eye(num_tags, dtype=np.float32)[tag] if hard else p
                    kept_per_tag[tag] += 1
                    words_kept += 1
                    if truths is not None:
                        correct += int(tag == truths[i][word])
                        judged += 1
            if target.any():
                rows.append(i)
                targets.append(target.tolist())
        groups = entity_groups(label_names)
        stats = {
            "pool_size": len(logits),
            "kept": len(rows),
            "words": words_total,
            "words_kept": words_kept,
            "kept_words_per_type": {name: int(kept_per_tag[ids].sum()) for name, ids in groups.items()},
        }
        if truths is not None:
            stats["pseudo_label_accuracy"] = correct / judged if judged else None
        return np.asarray(rows, dtype=np.int64), targets, stats

    def soft_targets(self, logits: list[np.ndarray], rows, temperature: float) -> list[np.ndarray]:
        """Distillation targets: softmax(logits / T) at the first subword of every word ([W_i, C] per row;
        all-zero for a word without subwords, which the student's loss skips)."""
        out = []
        for row_logits, word_index, words in zip(logits, rows[WORD_INDEX], rows["tokens"]):
            target = np.zeros((len(words), row_logits.shape[-1]), dtype=np.float32)
            starts = first_subwords(torch.tensor([word_index[: len(row_logits)]]))[0].numpy()
            scaled = torch.softmax(torch.as_tensor(row_logits[starts]).float() / temperature, dim=-1).numpy()
            target[np.asarray(word_index[: len(row_logits)])[starts]] = scaled
            out.append(target)
        return out

    def word_predictions(self, logits: list[np.ndarray], dataset, label_names: list[str]) -> list[list[str]]:
        """Tags per word from per-subword logits (first subword of each word; `O` for words with none)."""
        out = []
        for row_logits, word_index, words in zip(logits, dataset[WORD_INDEX], dataset["tokens"]):
            tags = ["O"] * len(words)
            previous = -1
            for position, word in enumerate(word_index[: len(row_logits)]):
                if word >= 0 and word != previous:
                    tags[word] = label_names[int(row_logits[position].argmax())]
                previous = word
            out.append(repair_bio(tags))
        return out

    def score(self, logits: list[np.ndarray], dataset, label_names: list[str]):
        predictions = self.word_predictions(logits, dataset, label_names)
        references = [[label_names[t] for t in tags] for tags in dataset["label"]]
        return self.compute_metrics(predictions, references), predictions, references

    def compute_metrics(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
        import evaluate  # slow to import (about 4 s): only when scoring

        metric = evaluate.load(METRIC_PATH)
        return metric.compute(predictions=predictions, references=references)
