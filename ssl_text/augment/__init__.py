"""Text augmentation: precomputed views (back-translation) and the registry of on-the-fly view operations.

`registry.py` names every operation and parses view pipelines from the config; `pipeline.py` runs
them in the collator; `builders.py` builds each operation; `back_translation.py` and `cli.py` write
paraphrase columns offline.
"""
