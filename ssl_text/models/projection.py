"""SimCLRv2 projection heads: the MLP on top of a contrastively pretrained encoder, and a
classifier that fine-tunes from one of its layers.

* `ProjectionHead`: `num_layers` blocks. With `norm: batchnorm` (SimCLRv2, the default) a block
  is Linear (no bias) -> BatchNorm1d -> ReLU; with `norm: none` it is Linear (with bias) -> ReLU
  (the SimCLR v1 / SimCSE style MLP). The last block has no ReLU. Hidden width: the encoder's
  hidden size; output width `projection_dim` (128).
* `ssl-text pretrain` (objective `contrastive`) saves the head next to the encoder:
  `RUN_DIR/encoder/projection_head.safetensors` (weights, BatchNorm statistics included) and
  `RUN_DIR/encoder/projection_head.json` (its shape, the pooling and the temperature).
* `model.projection_head_layers: k` (SimCLRv2, section 2): fine-tune from the k-th layer of the
  head. k = 0 is the ordinary `AutoModelForSequenceClassification` on the encoder (nothing of this
  module is used; the run's `best/` is a plain checkpoint that `transformers.pipeline` loads).
  k > 0 builds a `ProjectionClassifier`: encoder -> pooling -> the first k blocks of the head ->
  dropout -> a new linear classifier. Its `save_pretrained(folder)` writes the encoder as an
  ordinary checkpoint (config.json with the label names, model.safetensors) plus
  `projection_classifier.safetensors` (the k blocks and the classifier) and
  `projection_classifier.json`. Such a folder loads with `load_projection_classifier(folder)`,
  which the task adapters call whenever `projection_classifier.json` is present, so
  `ssl-text evaluate/predict`, distillation and self-training load it like any run. `pipeline()`
  and `AutoModelForSequenceClassification` do not know the head: they would load the encoder
  with a new, random classifier.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_WEIGHTS = "projection_head.safetensors"
HEAD_CONFIG = "projection_head.json"
CLASSIFIER_WEIGHTS = "projection_classifier.safetensors"
CLASSIFIER_CONFIG = "projection_classifier.json"
POOLINGS = ("mean", "cls")
NORMS = ("batchnorm", "none")
UNUSED_MODULES = ("pooler", "contact_head")  # parts of an `AutoModel` encoder that pooling bypasses


def freeze_unused(encoder: nn.Module) -> list[str]:
    """Freeze the encoder's submodules that the pooled output never reaches (BERT's pooler, ESM's contact
    head): they keep their loaded weights, and DistributedDataParallel does not wait for their gradients."""
    frozen = []
    for name, module in encoder.named_children():
        if name in UNUSED_MODULES and module is not None:
            module.requires_grad_(False)
            frozen.append(name)
    return frozen


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """[B, L, H] -> [B, H]: the first token (`cls`) or the mean over non-padding tokens (`mean`)."""
    if how == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    if attention_mask.shape[0] == 2 * hidden.shape[0]:  # hidden-state mixup halved the batch (ssl_text/algorithms/mixup.py)
        n = hidden.shape[0]
        attention_mask = attention_mask[:n].bool() | attention_mask[n:].bool()
    mask = attention_mask[:, : hidden.shape[1]].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


class ProjectionHead(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 3, norm: str = "batchnorm"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a projection head needs at least one layer, got {num_layers}.")
        if norm not in NORMS:
            raise ValueError(f"projection norm {norm!r}; expected one of {NORMS}.")
        self.shape = {"in_dim": in_dim, "hidden_dim": hidden_dim, "out_dim": out_dim, "num_layers": num_layers, "norm": norm}
        blocks, dim = [], in_dim
        for j in range(num_layers):
            last = j == num_layers - 1
            width = out_dim if last else hidden_dim
            parts: list[nn.Module] = [nn.Linear(dim, width, bias=norm == "none")]
            if norm == "batchnorm":
                parts.append(nn.BatchNorm1d(width))
            if not last:
                parts.append(nn.ReLU())
            blocks.append(nn.Sequential(*parts))
            dim = width
        self.blocks = nn.ModuleList(blocks)

    def width(self, k: int) -> int:
        """The output width after the first k blocks (k = 0: the encoder's)."""
        if k == 0:
            return self.shape["in_dim"]
        return self.shape["out_dim"] if k == self.shape["num_layers"] else self.shape["hidden_dim"]

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        for block in self.blocks[: len(self.blocks) if upto is None else upto]:
            x = block(x)
        return x


def save_head(head: ProjectionHead, folder: str | Path, **extra) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(folder / HEAD_WEIGHTS))
    (folder / HEAD_CONFIG).write_text(json.dumps({**head.shape, **extra}, indent=2))


def has_head(folder: str | Path) -> bool:
    return (Path(folder) / HEAD_CONFIG).is_file() and (Path(folder) / HEAD_WEIGHTS).is_file()


def load_head(folder: str | Path) -> tuple[ProjectionHead, dict]:
    """The projection head saved next to a contrastively pretrained encoder, and its config."""
    folder = Path(folder)
    info = json.loads((folder / HEAD_CONFIG).read_text())
    head = ProjectionHead(info["in_dim"], info["hidden_dim"], info["out_dim"], info["num_layers"], info["norm"])
    head.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)))
    return head, info


def _load_encoder(path: str):
    import transformers
    from transformers import AutoModel

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return AutoModel.from_pretrained(path)
    finally:
        transformers.logging.set_verbosity(level)


class ProjectionClassifier(nn.Module):
    """encoder -> pooling -> the first k blocks of a projection head -> dropout -> linear classifier.

    `forward(**inputs)` returns a `SequenceClassifierOutput` (`.logits` [B, C]), like any
    `AutoModelForSequenceClassification`, so every algorithm and the trainer use it unchanged.
    """

    def __init__(self, encoder: nn.Module, blocks: list[nn.Module], width: int, pooling: str, label_names: list[str],
                 head_info: dict):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}; expected one of {POOLINGS}.")
        self.encoder = encoder
        freeze_unused(encoder)
        self.projection = nn.Sequential(*blocks)
        self.pooling = pooling
        self.head_info = dict(head_info)
        config = encoder.config
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
        self.config = config
        p = getattr(config, "classifier_dropout", None)
        p = p if p is not None else getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(width, len(label_names))

    @property
    def base_model(self) -> nn.Module:  # hidden-state mixup (ssl_text/algorithms/mixup.py) reaches the encoder here
        return self.encoder

    @property
    def num_layers(self) -> int:
        return len(self.projection)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        kwargs.pop("return_dict", None)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        x = self.projection(pool(hidden, attention_mask, self.pooling))
        logits = self.classifier(self.dropout(x))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def save_pretrained(self, folder: str | Path, **kwargs) -> None:
        folder = Path(folder)
        self.encoder.save_pretrained(folder, **kwargs)
        state = {f"projection.{k}": v for k, v in self.projection.state_dict().items()}
        state.update({f"classifier.{k}": v for k, v in self.classifier.state_dict().items()})
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(folder / CLASSIFIER_WEIGHTS))
        info = {"projection_head_layers": self.num_layers, "pooling": self.pooling, "head": self.head_info,
                "num_labels": self.classifier.out_features}
        (folder / CLASSIFIER_CONFIG).write_text(json.dumps(info, indent=2))


def is_projection_classifier(folder: str | Path) -> bool:
    return os.path.isfile(os.path.join(str(folder), CLASSIFIER_CONFIG))


def load_projection_classifier(folder: str | Path, label_names: list[str] | None = None) -> ProjectionClassifier:
    """A `ProjectionClassifier` saved by its `save_pretrained` (e.g. a run's `best/` with k > 0)."""
    folder = Path(folder)
    info = json.loads((folder / CLASSIFIER_CONFIG).read_text())
    encoder = _load_encoder(str(folder))
    if label_names is None:
        label_names = [encoder.config.id2label[i] for i in range(len(encoder.config.id2label))]
    if len(label_names) != info["num_labels"]:
        from ssl_text.models.resolve import ModelMismatchError

        raise ModelMismatchError(
            f"{folder} holds a classifier for {info['num_labels']} labels but the data has {len(label_names)} "
            f"({label_names}); start from the pretrained encoder instead."
        )
    h, k = info["head"], info["projection_head_layers"]
    head = ProjectionHead(h["in_dim"], h["hidden_dim"], h["out_dim"], h["num_layers"], h["norm"])
    model = ProjectionClassifier(encoder, list(head.blocks[:k]), head.width(k), info["pooling"], label_names, h)
    state = load_file(str(folder / CLASSIFIER_WEIGHTS))
    model.projection.load_state_dict({k[len("projection."):]: v for k, v in state.items() if k.startswith("projection.")})
    model.classifier.load_state_dict({k[len("classifier."):]: v for k, v in state.items() if k.startswith("classifier.")})
    return model


def load_classifier(
    task, path: str, label_names: list[str], projection_head_layers: int = 0, pooling: str = "auto"
) -> nn.Module:
    """The model a run starts from: the task's classifier (k = 0; `pooling` is `model.pooling`), else encoder + k
    head layers (SimCLRv2)."""
    from ssl_text.config import ConfigError

    k = projection_head_layers
    if k == 0:
        return task.load_model(path, label_names, pooling)
    if k < 0:
        raise ConfigError(f"`model.projection_head_layers` is {k}; expected 0 (the encoder output) or a head layer >= 1.")
    if not has_head(path):
        raise ConfigError(
            f"`model.projection_head_layers` is {k} but {path!r} has no projection head ({HEAD_CONFIG}); point "
            "`model.name_or_path` at the `encoder/` folder of a contrastive `ssl-text pretrain` run, or set it to 0."
        )
    head, info = load_head(path)
    if k > info["num_layers"]:
        raise ConfigError(
            f"`model.projection_head_layers` is {k} but the projection head in {path!r} has {info['num_layers']} layers."
        )
    encoder = _load_encoder(path)
    return ProjectionClassifier(encoder, list(head.blocks[:k]), head.width(k), info.get("pooling", "mean"), label_names,
                                head.shape)
