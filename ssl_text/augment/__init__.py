"""Text augmentation: precomputed views (back-translation) and the registry of on-the-fly view operations.

`registry.py` names every operation and parses view pipelines from the config; `pipeline.py` runs
them in the collator (`collate.py`, which turns token ids into the padded view tensors); `builders.py`
builds each operation on top of `token_views.py`, `residue_views.py` and the word operations;
`back_translation.py` writes paraphrase columns offline (`ssl-text augment back-translate`).
"""
