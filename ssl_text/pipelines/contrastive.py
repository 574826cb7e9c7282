"""Contrastive pretraining (`pretrain.objective: contrastive`): SimCLR's NT-Xent on two views of each text.

The first stage of the SimCLRv2 path (Chen et al., 2020: "Big Self-Supervised Models are Strong
Semi-Supervised Learners"): task-agnostic pretraining on the unlabeled data.

* Views. Each sequence is encoded twice in train mode, so dropout alone makes two different
  views (SimCSE, Gao et al. 2021: `pretrain.view1` / `pretrain.view2` left empty, the default).
  Each view can also go through a view pipeline of token-level operations (`ViewConfig`: token
  masking and deletion, span masking, token substitution, and for proteins BLOSUM62 substitutions
  and random crops), e.g. `view2: {mask_prob: 0.1, delete_prob: 0.1}` or `view2: {pipeline: [span_mask]}`. Both views are encoded in one forward pass
  (one batch of 2B rows), so BatchNorm sees both, as in SimCLR.
* Embedding. The encoder's last hidden states are pooled (`pretrain.pooling`: `mean` over the
  non-padding tokens, or `cls`, the first token: `[CLS]` for BERT, `<cls>` for ESM) and go
  through the projection head (`ssl_text/models/projection.py`: `projection_layers` blocks, 3 by default
  as in SimCLRv2, Linear+BatchNorm+ReLU or, with `projection_norm: none`, Linear+ReLU).
* Loss. `ssl_text.algorithms.losses.nt_xent` at `pretrain.temperature`. Under `accelerate launch` the
  negatives are the whole global batch: every process gathers the other processes' embeddings
  (detached, `accelerator.gather` carries no gradient) and puts its own, gradient-carrying slice
  back in place; see `gathered_nt_xent`.
* Model selection. The encoder with the lowest NT-Xent loss on the held-out sequences
  (`trainer.select_metric` `neg_loss`; views and dropout masks are drawn from fixed seeds, so
  every evaluation sees the same noise), or the last one when nothing is held out.
* Output. `RUN_DIR/encoder/` holds the encoder as a plain checkpoint (`save_pretrained` plus the
  tokenizer; `AutoModelForSequenceClassification.from_pretrained` loads it with a new
  classifier) and the projection head (`projection_head.safetensors` + `projection_head.json`).

Only `encoder(input_ids=..., attention_mask=...).last_hidden_state` is used, so any
`AutoModel` encoder works: BERT-like text encoders and ESM protein encoders alike. The
encoder's pooler and ESM's contact head take no part in the loss; they are frozen (kept as
loaded), which also keeps DistributedDataParallel from waiting for their gradients.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ssl_text.algorithms.base import LossOutput, TrainState
from ssl_text.algorithms.losses import nt_xent
from ssl_text.augment.pipeline import ViewContext, ViewPipeline
from ssl_text.augment.registry import check_view
from ssl_text.config.seeds import GLOBAL_SEED_BITS, derive_seed
from ssl_text.data.batching import pad_ids
from ssl_text.models.projection import ProjectionHead, _load_encoder, freeze_unused, pool, save_head

VIEWS = "views"
EVAL_VIEW_SALT = 7919  # held-out batch k draws its views from derive_seed(seed, EVAL_VIEW_SALT, k): the same at every evaluation
EVAL_DROPOUT_SALT = 104729  # ... and its dropout from derive_seed(seed, EVAL_DROPOUT_SALT, k)


def gathered_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, gather=None, rank: int = 0,
                     world_size: int = 1) -> torch.Tensor:
    """NT-Xent over the global batch of `world_size` processes, from this process's [n, D] embeddings.

    `gather` (e.g. `accelerator.gather`) concatenates every process's tensor in process order but
    carries no gradient, so the gathered copy of this process's slice is replaced by the local
    tensor, which does. Every process then computes the same global loss, but back-propagates
    only through its own slice; since DistributedDataParallel averages gradients over processes,
    the gradient (not the value) is scaled by `world_size`, which makes the averaged gradient
    exactly that of the global loss computed in a single process.
    """
    if world_size == 1 or gather is None:
        return nt_xent(z1, z2, temperature)
    n = z1.shape[0]

    def everyone(local: torch.Tensor) -> torch.Tensor:
        full = gather(local.detach().contiguous())
        return torch.cat([full[: rank * n], local, full[(rank + 1) * n :]])

    loss = nt_xent(everyone(z1), everyone(z2), temperature)
    return loss + (world_size - 1) * (loss - loss.detach())


def retrieval_hits(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """How many of the 2N anchors have their positive as the most similar other embedding."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)
    sim = (z @ z.T).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return (sim.argmax(dim=-1) == positives).sum()


def held_out_batches(accelerator, num_rows: int, batch_size: int):
    """(k, start) of the held-out batches this process evaluates, batch k being rows [start, start + batch_size):
    Accelerate's data loader deals batch k to process k % num_processes and, where the processes would get
    unequal counts, repeats the first batches on the short ones; `batch_sums` then drops those repeats."""
    batches = list(enumerate(range(0, num_rows, batch_size)))
    loader = DataLoader(batches, batch_size=1, collate_fn=lambda items: items[0])  # one held-out batch per item
    return accelerator.prepare_data_loader(loader, device_placement=False)


def batch_sums(accelerator, sums: list) -> torch.Tensor:
    """One held-out batch's sums (tensors or numbers), added over the processes by `gather_for_metrics` (which
    drops a batch that `held_out_batches` repeated): with one process, exactly `sums`, in float32."""
    row = torch.stack([torch.as_tensor(x, dtype=torch.float32, device=accelerator.device) for x in sums])
    return accelerator.gather_for_metrics(row[None]).sum(dim=0)


class ContrastiveModel(nn.Module):
    """encoder -> pooling -> projection head; `forward(input_ids, attention_mask)` returns z [B, D]."""

    def __init__(self, encoder: nn.Module, head: ProjectionHead, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.pooling = pooling

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(pool(hidden, attention_mask, self.pooling))


def load_encoder(task, path: str) -> nn.Module:
    """A bare encoder (`AutoModel`): from a checkpoint, or built from scratch by the task (`new:<size>`)."""
    if path.startswith("new:"):
        return task.new_masked_lm(path).base_model
    return _load_encoder(path)


class ContrastiveCollator:
    """Rows of token ids -> `{"views": {input_ids, attention_mask}}` of 2B rows: view 1, then view 2."""

    def __init__(self, tokenizer, config, max_length: int, crop: str):
        context = ViewContext(tokenizer)  # token-level operations only: pretraining has no text views
        self.pipelines = [ViewPipeline(check_view(getattr(config, n), f"pretrain.{n}", text_ops=False), context)
                          for n in ("view1", "view2")]  # fmt: skip
        self.max_length = max_length
        self.crop = crop
        self.pad_id = tokenizer.pad_token_id
        self.num_special = tokenizer.num_special_tokens_to_add()

    def window(self, ids: list[int], generator: torch.Generator) -> list[int]:
        """As `MLMCollator.window`: a random window of a long sequence (`crop: random`), else its start."""
        if len(ids) <= self.max_length:
            return ids
        if self.crop == "truncate" or self.num_special != 2:
            return ids[: self.max_length - 1] + ids[-1:] if self.num_special == 2 else ids[: self.max_length]
        width = self.max_length - 2
        start = int(torch.randint(len(ids) - 2 - width + 1, (1,), generator=generator))
        return ids[:1] + ids[1 + start : 1 + start + width] + ids[-1:]

    def view(self, sequences: list[list[int]], pipeline: ViewPipeline, generator: torch.Generator):
        ids, mask = pad_ids(sequences, self.pad_id)
        return pipeline.apply_ids(ids, mask, generator)

    def __call__(self, rows: dict, generator: torch.Generator) -> dict:
        sequences = [self.window(s, generator) for s in rows["input_ids"]]  # the same window for both views
        (ids1, mask1), (ids2, mask2) = (self.view(sequences, p, generator) for p in self.pipelines)
        width = max(ids1.shape[1], ids2.shape[1])
        pad = lambda t, value: F.pad(t, (0, width - t.shape[1]), value=value)  # noqa: E731
        ids = torch.cat([pad(ids1, self.pad_id), pad(ids2, self.pad_id)])
        mask = torch.cat([pad(mask1, 0), pad(mask2, 0)])
        return {VIEWS: {"input_ids": ids, "attention_mask": mask}}


class ContrastiveObjective:
    """NT-Xent between the two views; the trainer treats it like an SSL algorithm."""

    views = (VIEWS,)
    select_metric = "neg_loss"  # the held-out NT-Xent loss, negated: higher is better
    select_metrics = ("neg_loss", "retrieval_accuracy", "positive_cosine")  # what `evaluate` reports, higher better
    selected_on = "held-out NT-Xent loss"

    def __init__(self, config):
        self.config = config

    # -- the model ---------------------------------------------------------------------

    def load_model(self, task, path: str) -> ContrastiveModel:
        c = self.config
        encoder = load_encoder(task, path)
        freeze_unused(encoder)
        width = encoder.config.hidden_size
        head = ProjectionHead(width, c.projection_hidden_dim or width, c.projection_dim, c.projection_layers, c.projection_norm)
        return ContrastiveModel(encoder, head, c.pooling)

    def save_model(self, model: ContrastiveModel, path: Path) -> None:
        model.encoder.save_pretrained(path)
        save_head(model.head, path, pooling=model.pooling, temperature=self.config.temperature)

    # -- the loss ----------------------------------------------------------------------

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        from accelerate import PartialState

        z = model(**batch[VIEWS]).float()  # [2B, D]; float: gathered across processes, then NT-Xent in fp32
        n = z.shape[0] // 2
        z1, z2 = z[:n], z[n:]
        process = PartialState()
        loss = gathered_nt_xent(z1, z2, self.config.temperature, state.gather, process.process_index,
                                process.num_processes)
        with torch.no_grad():
            cosine = F.cosine_similarity(z1.float(), z2.float(), dim=-1).mean()
            accuracy = retrieval_hits(z1, z2).float() / (2 * n)
        return LossOutput(total=loss, parts={"loss_contrastive": loss.detach(), "positive_cosine": cosine,
                                             "retrieval_accuracy": accuracy})

    @torch.no_grad()
    def evaluate(self, accelerator, model, dataset, collate, batch_size: int, seed: int) -> dict:
        """Held-out NT-Xent loss, retrieval accuracy (positive ranked first among the batch's 2B - 1
        others) and positive-pair cosine, with views and dropout masks drawn from fixed seeds."""
        net = accelerator.unwrap_model(model)
        was_training = net.training
        net.train()  # dropout is the view noise ...
        net.head.eval()  # ... but BatchNorm uses its running statistics and does not update them
        devices = [accelerator.device] if accelerator.device.type == "cuda" else []
        totals = torch.zeros(5, device=accelerator.device)  # loss x anchors, anchors, hits, cosine sum, pairs
        for k, start in held_out_batches(accelerator, len(dataset), batch_size):
            generator = torch.Generator().manual_seed(derive_seed(seed, EVAL_VIEW_SALT, k))
            batch = collate(dataset[start : start + batch_size], generator)
            inputs = {key: value.to(accelerator.device) for key, value in batch[VIEWS].items()}
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(derive_seed(seed, EVAL_DROPOUT_SALT, k, bits=GLOBAL_SEED_BITS))
                with accelerator.autocast():
                    z = net(**inputs).float()
            n = z.shape[0] // 2
            z1, z2 = z[:n], z[n:]
            sums = [nt_xent(z1, z2, self.config.temperature) * 2 * n, 2 * n, retrieval_hits(z1, z2),
                    F.cosine_similarity(z1, z2, dim=-1).sum(), n]
            totals += batch_sums(accelerator, sums)
        net.train(was_training)
        loss = float(totals[0] / totals[1].clamp(min=1))
        return {
            "loss": loss,
            "neg_loss": -loss,
            "retrieval_accuracy": float(totals[2] / totals[1].clamp(min=1)),
            "positive_cosine": float(totals[3] / totals[4].clamp(min=1)),
        }
