"""Protein sequence classification on ESM-style encoders (`task: protein`).

* Models: `EsmForSequenceClassification` (or any `AutoModelForSequenceClassification`) from a Hub
  id such as `facebook/esm2_t6_8M_UR50D`, a local folder (e.g. `RUN_DIR/encoder` written by
  `ssl-text pretrain`), or `new:tiny` / `new:small` / `new:esm2_t6`: a randomly initialised
  ESM-2-style encoder (rotary positions) built here, for from-scratch baselines.
* Tokenizer: the model's own when its folder has tokenizer files; otherwise (and for `new:*`)
  the 33-token ESM alphabet built locally, no download.
* Sequences are normalised (upper case, no whitespace/line wraps/gaps, unknown letters -> X,
  see `ssl_text.data.fasta.normalize_sequence`) and shortened to `data.max_length` tokens: the
  N-terminal residues are kept (`crop="truncate"`, the default) or a window chosen per
  sequence by a seeded hash (`crop="random"`). Training-time random windows of the unlabeled
  views are the `crop_prob` residue view.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import zlib

from transformers import AutoTokenizer, EsmConfig, EsmForMaskedLM, EsmForSequenceClassification, EsmTokenizer

from ssl_text.data.fasta import FastaSummary, normalize_sequence
from ssl_text.models.resolve import ModelMismatchError, check_tokenizer
from ssl_text.tasks.text_classification import TextClassification

logger = logging.getLogger(__name__)

# The ESM-1b/ESM-2 alphabet, in the order of the released checkpoints' vocab.txt
# (= transformers.models.esm.configuration_esm.get_default_vocab_list()).
ESM_VOCAB = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip
NEW_PREFIX = "new:"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "spiece.model", "vocab.json")

# Encoder shapes for models trained from scratch. `esm2_t6` is the shape of facebook/esm2_t6_8M_UR50D.
ESM_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
    "esm2_t6": dict(hidden_size=320, num_hidden_layers=6, num_attention_heads=20, intermediate_size=1280),
}


def build_protein_tokenizer(save_dir: str | None = None) -> EsmTokenizer:
    """An `EsmTokenizer` over the 33-token ESM alphabet (no download); saved to `save_dir` when given."""
    with tempfile.TemporaryDirectory(prefix="esm_vocab_") as folder:  # EsmTokenizer reads the file once
        vocab_file = os.path.join(folder, "vocab.txt")
        with open(vocab_file, "w", encoding="utf-8") as f:
            f.write("\n".join(ESM_VOCAB))
        tokenizer = EsmTokenizer(vocab_file=vocab_file)
    if tokenizer.convert_tokens_to_ids("M") == tokenizer.unk_token_id or len(tokenizer) != len(ESM_VOCAB):
        raise RuntimeError("the ESM tokenizer built from the ESM alphabet did not load its vocabulary.")
    if save_dir is not None:
        tokenizer.save_pretrained(save_dir)
    return tokenizer


def new_esm_config(size: str = "small", num_labels: int | None = None, **overrides) -> EsmConfig:
    """An ESM-2-style config for the ESM alphabet: rotary positions, pre-LN, token dropout, as ESM-2."""
    if size not in ESM_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(ESM_SIZES)} (e.g. model.name_or_path=new:small).")
    vocab = {tok: i for i, tok in enumerate(ESM_VOCAB)}
    kwargs = dict(
        vocab_size=len(ESM_VOCAB),
        pad_token_id=vocab["<pad>"],
        mask_token_id=vocab["<mask>"],
        eos_token_id=vocab["<eos>"],
        position_embedding_type="rotary",
        max_position_embeddings=1026,
        emb_layer_norm_before=False,
        token_dropout=True,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.1,  # ESM-2 uses 0; small models trained on little data need some
        attention_probs_dropout_prob=0.1,
        **ESM_SIZES[size],
    )
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    kwargs.update(overrides)
    return EsmConfig(**kwargs)


def new_esm_model(size: str = "tiny", num_labels: int | None = None, label_names: list[str] | None = None, **overrides):
    """A randomly initialised ESM encoder: `EsmForMaskedLM` when `num_labels` is None (pretraining),
    else `EsmForSequenceClassification` with `label_names` as id2label when given."""
    if label_names is not None:
        num_labels = len(label_names)
        overrides.setdefault("id2label", dict(enumerate(label_names)))
        overrides.setdefault("label2id", {name: i for i, name in enumerate(label_names)})
    config = new_esm_config(size, num_labels, **overrides)
    if num_labels is None:
        return EsmForMaskedLM(config)
    return EsmForSequenceClassification(config)


def new_model_size(path: str) -> str | None:
    """`new:small` -> `small`; None for a Hub id or a folder."""
    return path[len(NEW_PREFIX):] if path.startswith(NEW_PREFIX) else None


def has_tokenizer_files(folder: str) -> bool:
    return any(os.path.exists(os.path.join(folder, name)) for name in TOKENIZER_FILES)


def residue_lookup(tokenizer) -> dict[str, int] | None:
    """Residue letter -> token id when the vocabulary has one token per residue letter, else None."""
    vocab = tokenizer.get_vocab()
    if not all(aa in vocab for aa in "ACDEFGHIKLMNPQRSTVWY"):
        return None
    unk = tokenizer.unk_token_id
    return {aa: vocab.get(aa, unk) for aa in "ACDEFGHIKLMNPQRSTVWYXBZUO"}


def shorten(sequence: str, limit: int, crop: str = "truncate", seed: int = 0) -> str:
    """At most `limit` residues: the first ones, or a window whose start is a seeded hash of the sequence."""
    if len(sequence) <= limit:
        return sequence
    if crop == "truncate":
        return sequence[:limit]
    start = random.Random(zlib.crc32(sequence.encode()) ^ seed).randrange(len(sequence) - limit + 1)
    return sequence[start : start + limit]


class ProteinClassification(TextClassification):
    name = "protein"
    pipeline_tag = "text-classification"

    def __init__(self, crop: str = "truncate", seed: int = 0):
        if crop not in ("truncate", "random"):
            raise ValueError(f"crop is {crop!r}; expected 'truncate' or 'random'.")
        self.crop = crop
        self.seed = seed

    def load_tokenizer(self, path: str):
        if new_model_size(path) is not None:
            return build_protein_tokenizer()
        if os.path.isdir(path) and not has_tokenizer_files(path):
            logger.info("%s has no tokenizer files; using the 33-token ESM alphabet.", path)
            return build_protein_tokenizer()
        tokenizer = AutoTokenizer.from_pretrained(path)
        check_tokenizer(tokenizer, path)
        if tokenizer.convert_tokens_to_ids("M") == tokenizer.unk_token_id and residue_lookup(tokenizer) is None:
            logger.warning("the tokenizer of %s has no single-residue tokens; sequences go through it as text.", path)
        return tokenizer

    def load_model(self, path: str, label_names: list[str], pooling: str = "auto"):
        size = new_model_size(path)
        if size is not None:
            return new_esm_model(size, label_names=label_names)
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, "config.json")):
            raise ModelMismatchError(f"{path!r} has no config.json; point model.name_or_path at a saved model folder.")
        return super().load_model(path, label_names, pooling)

    def new_masked_lm(self, path: str):
        """For `ssl-text pretrain` with `model.name_or_path: new:<size>`."""
        return new_esm_model(new_model_size(path))

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        summary = FastaSummary()
        sequences = [normalize_sequence(t or "", summary) for t in texts]
        summary.records = len(sequences)
        if summary.unknown_residues:
            logger.warning("protein sequences: %s", summary)
        limit = max(max_length - tokenizer.num_special_tokens_to_add(), 1)
        sequences = [shorten(s, limit, self.crop, self.seed) for s in sequences]
        lookup = residue_lookup(tokenizer)
        if lookup is None:  # e.g. a tokenizer that wants space-separated residues but lacks some letters
            spaced = [" ".join(s) for s in sequences]
            return {"input_ids": tokenizer(spaced, truncation=True, max_length=max_length)["input_ids"]}
        return {
            "input_ids": [
                tokenizer.build_inputs_with_special_tokens([lookup[aa] for aa in s]) for s in sequences
            ]
        }
