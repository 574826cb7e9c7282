"""The unlabeled pool that a trained teacher labels, and the one way it labels it: `ssl-text self-train`
(the whole pool at once) and `ssl-text distill` (shard by shard)."""

from __future__ import annotations

import datasets
import torch.nn.functional as F
from accelerate import Accelerator, PartialState

from ssl_text.config import ConfigError, RunConfig
from ssl_text.data.text_data import TextData
from ssl_text.models.mean_pooling import MeanPoolingForSequenceClassification, mean_pool
from ssl_text.training.inference import predict_logits


def load_teacher_pool(cfg: RunConfig, command: str) -> TextData:
    """The data of `cfg` (the main process loads it first, so the others read its cache), which must
    hold unlabeled text: `command` (e.g. "self-training") is named in the error when it does not."""
    from ssl_text.tasks import build_task

    with PartialState().main_process_first():
        data = build_task(cfg.task).load_data(cfg.data)
    if data.unlabeled is None:
        raise ConfigError(
            f"{command} has its teacher label unlabeled text, but the config has no `data.unlabeled` and "
            "`data.sampling.rest_as_unlabeled` is false; add `data.unlabeled: {path: ...}` or set "
            "`data.sampling.rest_as_unlabeled: true`."
        )
    if isinstance(data.unlabeled, datasets.IterableDataset):
        raise ConfigError(
            f"{command} has its teacher label the whole unlabeled pool and keeps the labeled pool, which a "
            "streamed corpus cannot give; set `data.unlabeled.streaming: false` (or label a sample of it)."
        )
    return data


class PoolTeacher:
    """A trained model (a run's `best/` or a model folder) and the unlabeled pool of `data`, encoded as the
    task encodes it (`task.encode`, cached; the main process first): the one way a teacher labels a pool.

    With an `accelerator` (self-training), `logits` splits the rows across its processes under its mixed
    precision and gives every process all of them; without one (distillation, whose processes share out
    the shards), each process runs the rows it is given on its own device, in the teacher's precision.
    """

    def __init__(self, cfg: RunConfig, teacher_dir, data: TextData, accelerator: Accelerator | None = None):
        from ssl_text.tasks import build_task

        self.task = build_task(cfg.task)
        self.accelerator = accelerator
        self.data_cfg, self.label_names = cfg.data, data.label_names
        self.batch_size = cfg.trainer.eval_batch_size
        self.tokenizer = self.task.load_tokenizer(str(teacher_dir))
        model = self.task.load_model(str(teacher_dir), data.label_names)
        self.device = PartialState().device
        self.model = accelerator.prepare(model) if accelerator is not None else model.to(self.device).eval()
        self.pool = self.encode(data.unlabeled)

    def encode(self, ds: datasets.Dataset) -> datasets.Dataset:
        """`ds` (e.g. the labeled rows) encoded as the pool is: `task.encode` with the teacher's tokenizer."""
        with PartialState().main_process_first():
            return self.task.encode(ds, self.tokenizer, self.data_cfg, self.label_names)

    def logits(self, rows: datasets.Dataset):
        """The teacher's logits for encoded `rows` (the pool, or a `select` of it), in row order: [N, C], or per
        token N arrays [L_i, C]."""
        return predict_logits(self.accelerator, self.model, rows, self.batch_size, self.tokenizer.pad_token_id, self.device)

    def embeddings(self, rows: datasets.Dataset):
        """The teacher's sentence embeddings of encoded `rows` of a sequence-level task, in row order: [N, H], the
        L2-normalised masked mean of its encoder's last hidden states (what the kNN agreement vote compares)."""
        model = self.accelerator.unwrap_model(self.model) if self.accelerator is not None else self.model
        return predict_logits(
            self.accelerator, model, rows, self.batch_size, self.tokenizer.pad_token_id, self.device, sentence_embedding
        )


def sentence_embedding(model, batch: dict):
    """[B, H] L2-normalised mean-pooled last hidden states of a sequence classifier's encoder (a mean-pooling
    classifier's own `embed`; any other's `base_model`)."""
    if isinstance(model, MeanPoolingForSequenceClassification):
        return model.embed(**batch)
    hidden = model.base_model(**batch).last_hidden_state
    return F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
