"""Pipelines: each command's run from a config to a run directory: train, pretrain (and its contrastive objective), distill, self-train, SimCLRv2, evaluate/predict."""
