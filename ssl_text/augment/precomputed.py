"""Precomputed paraphrase columns as a view operation (`back_translation` in a view pipeline).

`ssl-text augment back-translate` writes paraphrases as columns `aug_0 ... aug_{K-1}` of the
unlabeled data. For each example the view draws one of the columns and uses its text instead
of the original (the original when the paraphrase is empty). `train` tokenizes the columns of
the simple form (`views.*.aug_columns`) once, into `aug_ids_column(column)`; the collator then
takes those ids directly, and tokenizes the text itself otherwise. A named column the unlabeled
data lacks stops the run (`named_aug_columns`, before anything is written): a misspelt name
would otherwise train without those views, silently.
"""

from __future__ import annotations

import re

import torch

from ssl_text.config import ViewConfig
from ssl_text.config.keys import IDS
from ssl_text.data.loading import DataError

_AUG_COLUMN = re.compile(r"aug_(\d+)")


def aug_ids_column(column: str) -> str:
    """Name of the token-id column made from the augmentation text column `column`."""
    return f"{column}__{IDS}"


def aug_columns_of(column_names) -> list[str]:
    """The `aug_<k>` columns among `column_names`, by k."""
    found = [c for c in column_names if _AUG_COLUMN.fullmatch(c)]
    return sorted(found, key=lambda c: int(_AUG_COLUMN.fullmatch(c).group(1)))


def missing_columns(missing: list[str] | str, column_names) -> str:
    """What to say when the unlabeled data lacks paraphrase columns: the columns it has, and the fix."""
    return (
        f"the unlabeled data has no column {missing} (its columns: {sorted(column_names)}). Write paraphrases with "
        "`ssl-text augment back-translate --data POOL --out DIR` and use DIR as `data.unlabeled`, or name columns it "
        "has (`aug_columns: [...]` in a view's simple form, `back_translation(columns=[...])` in a pipeline)."
    )


def named_aug_columns(views: list[ViewConfig], column_names, where: str = "data.unlabeled") -> list[str]:
    """The paraphrase columns the views' simple form names (`aug_columns`), sorted; each must be in `column_names`."""
    named = sorted({c for view in views for c in view.aug_columns})
    missing = [c for c in named if c not in set(column_names)]
    if missing:
        raise DataError(f"{where}: views name `aug_columns` {named}, but {missing_columns(missing, column_names)}")
    return named


class PrecomputedColumns:
    """Draws one paraphrase column per example. `columns=None`: every `aug_<k>` column of the data.

    `required`: the named columns must exist (checked against `column_names` when given, else at
    each batch); otherwise the columns that exist are used, and none leaves the text unchanged.
    """

    def __init__(self, columns: list[str] | None, required: bool, column_names: list[str] | None = None):
        self.columns, self.required = columns, required
        if column_names is not None:
            self.columns = self._present(column_names)

    def _present(self, names) -> list[str]:
        names = set(names) | {c[: -len(aug_ids_column(""))] for c in names if c.endswith(aug_ids_column(""))}
        wanted = self.columns if self.columns is not None else aug_columns_of(names)
        missing = [c for c in wanted if c not in names]
        if self.required and (missing or not wanted):
            raise ValueError(missing_columns(missing or "aug_<k>", names))
        return [c for c in wanted if c in names]

    def choose(self, rows: dict, generator: torch.Generator) -> list[str | None]:
        """The column each example's view comes from; None keeps the original (no draw without columns)."""
        columns = self._present(rows.keys())
        size = len(rows[IDS]) if IDS in rows else len(rows["text"])
        if not columns:
            return [None] * size
        return [columns[p] for p in torch.randint(len(columns), (size,), generator=generator).tolist()]

    def ids(self, rows: dict, choice: list[str | None]) -> list[list[int]] | None:
        """The token ids of the chosen paraphrases, or None when some chosen column was not tokenized."""
        if any(c is not None and aug_ids_column(c) not in rows for c in choice):
            return None
        return [rows[aug_ids_column(c)][i] or rows[IDS][i] if c else rows[IDS][i] for i, c in enumerate(choice)]

    def texts(self, texts: list[str], rows: dict, choice: list[str | None]) -> list[str]:
        """The chosen paraphrases (the original text where a paraphrase is empty)."""
        return [(rows[c][i] or texts[i]) if c else texts[i] for i, c in enumerate(choice)]

    def __call__(self, texts: list[str], rows: dict, generator: torch.Generator) -> list[str]:
        return self.texts(texts, rows, self.choose(rows, generator))
