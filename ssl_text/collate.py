"""Turning rows of token ids into the padded view tensors an algorithm asks for."""

from __future__ import annotations

import torch

from ssl_text.algorithms.base import ULB_STRONG, ULB_WEAK
from ssl_text.batching import pad_ids
from ssl_text.config import ViewConfig, ViewsConfig
from ssl_text.data import ANALYSIS_LABEL, INDEX, PSEUDO_TARGET
from ssl_text.residue_views import ResidueVocab, apply_residue_views
from ssl_text.views import token_dropout

IDS = "input_ids"


def aug_ids_column(column: str) -> str:
    """Name of the token-id column made from the augmentation text column `column`."""
    return f"{column}__{IDS}"


class TextCollator:
    """Pads labeled rows, and builds the requested weak/strong views of unlabeled rows."""

    def __init__(self, tokenizer, views: ViewsConfig, requested: tuple[str, ...]):
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.views = views
        self.requested = requested
        for name in (ULB_WEAK, ULB_STRONG):
            view = self._view_config(name)
            if name in requested and view.mask_prob > 0 and self.mask_id is None:
                raise ValueError(
                    f"views.{name.split('_')[1]}.mask_prob is {view.mask_prob} but the tokenizer has no "
                    "mask token; set mask_prob to 0 and use delete_prob instead."
                )
        # BLOSUM substitution / random crop (protein tokenizers); None when no requested view uses them.
        self.residues = ResidueVocab.for_views(
            tokenizer, [self._view_config(n) for n in (ULB_WEAK, ULB_STRONG) if n in requested]
        )

    def _view_config(self, name: str) -> ViewConfig:
        return self.views.weak if name == ULB_WEAK else self.views.strong

    def labeled(self, rows: dict, generator: torch.Generator) -> dict:
        ids, mask = pad_ids(rows[IDS], self.pad_id)
        return {"lb": {IDS: ids, "attention_mask": mask}, "lb_labels": torch.as_tensor(rows["label"])}

    def unlabeled(self, rows: dict, generator: torch.Generator) -> dict:
        batch: dict = {"ulb_index": torch.as_tensor(rows[INDEX])}
        if ANALYSIS_LABEL in rows:
            batch["ulb_analysis_labels"] = torch.as_tensor(rows[ANALYSIS_LABEL])
        if PSEUDO_TARGET in rows:
            batch["ulb_targets"] = torch.tensor(rows[PSEUDO_TARGET], dtype=torch.float)
        for name in (ULB_WEAK, ULB_STRONG):
            if name in self.requested:
                batch[name] = self._view(rows, self._view_config(name), generator)
        return batch

    def _view(self, rows: dict, view: ViewConfig, generator: torch.Generator) -> dict:
        sequences = rows[IDS]
        columns = [aug_ids_column(c) for c in view.aug_columns if aug_ids_column(c) in rows]
        if columns:
            pick = torch.randint(len(columns), (len(sequences),), generator=generator).tolist()
            sequences = [rows[columns[p]][i] or sequences[i] for i, p in enumerate(pick)]
        ids, mask = pad_ids(sequences, self.pad_id)
        ids, mask = apply_residue_views(ids, mask, view, self.residues, generator)
        if view.mask_prob > 0 or view.delete_prob > 0:
            special = torch.isin(ids, self.special_ids) | (mask == 0)
            ids, mask = token_dropout(
                ids,
                mask,
                special,
                mask_token_id=self.mask_id,
                pad_token_id=self.pad_id,
                mask_prob=view.mask_prob,
                delete_prob=view.delete_prob,
                generator=generator,
            )
        return {IDS: ids, "attention_mask": mask}
