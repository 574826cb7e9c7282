"""MixMatch (Berthelot et al., 2019), with hidden-state mixup for Transformers (TMix/MixText,
Chen et al., 2020).

1. Label guessing: the K augmentations of each unlabeled example are its weak and its strong
   view (K = 2); the guess is the mean of their softmax outputs, sharpened with temperature T
   (no gradient). With `dist_align_momentum` set, the mean is first aligned to the labeled class
   prior (ReMixMatch's distribution alignment, ssl_text/algorithms/distribution_alignment.py): a guard
   against all guesses sharpening towards one class.
2. MixUp: the labeled batch (one-hot targets) and both unlabeled views (the guess as target)
   are concatenated into W, shuffled, and each example is mixed with its shuffled partner,
   lambda ~ Beta(alpha, alpha), lambda' = max(lambda, 1 - lambda) so the mixture stays
   closer to its own example. Token ids cannot be interpolated, so a Transformer mixes its
   hidden states at encoder layer `mix_layer` (0: the embedding output); models with float
   inputs (e.g. the two-moons MLP) mix their inputs with `mix_layer: 0`
   (see `ssl_text.algorithms.mixup.forward_mixed`).
3. Loss: cross-entropy of the mixed labeled part against its mixed targets plus
   lambda_u (ramped up linearly over `rampup_steps`) times the squared error between the
   softmax of the mixed unlabeled part and its mixed targets.

lambda and the shuffle come from a torch.Generator seeded with the run's seed (`trainer.seed`) and
the step, so seeds draw differently and a resumed run mixes exactly as the uninterrupted one. (MixMatch's batch-norm interleaving is not
needed: Transformers use layer norm.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, logits_of
from ssl_text.algorithms.distribution_alignment import DistributionAlignment
from ssl_text.algorithms.losses import linear_rampup, sharpen, soft_cross_entropy
from ssl_text.algorithms.mixup import concat_inputs, forward_mixed, mix, mixup_lambda, take
from ssl_text.algorithms.pi_model import check_weight_and_rampup
from ssl_text.algorithms.pseudo_label import check_dist_align_momentum
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG, ULB_WEAK
from ssl_text.config.seeds import derive_seed


class MixMatch:
    @dataclass
    class Config:
        name: str = "mixmatch"
        T: float = 0.5  # sharpening temperature of the guessed labels
        alpha: float = 0.75  # Beta(alpha, alpha) of the mixup coefficient
        lambda_u: float = 100.0  # maximum weight of the unlabeled squared error
        rampup_steps: int = 100  # linear ramp-up of lambda_u
        mix_layer: int = 0  # encoder layer whose output is mixed (0: embeddings / inputs)
        dist_align_momentum: float | None = None  # EMA momentum of distribution alignment; None: off

        def validate(self, source: str) -> None:
            if not 0.0 < self.T <= 1.0:
                raise ConfigError(f"{source}: `algorithm.T` is {self.T}; expected a temperature in (0, 1], e.g. 0.5.")
            if self.alpha <= 0:
                raise ConfigError(
                    f"{source}: `algorithm.alpha` is {self.alpha}; expected a Beta parameter > 0, e.g. 0.75."
                )
            if self.mix_layer < 0:
                raise ConfigError(
                    f"{source}: `algorithm.mix_layer` is {self.mix_layer}; expected an encoder layer >= 0 "
                    "(0 mixes the embeddings, or the inputs of a non-Transformer model)."
                )
            check_weight_and_rampup(self.lambda_u, self.rampup_steps, source)
            check_dist_align_momentum(self.dist_align_momentum, source)

    views = (LB, ULB_WEAK, ULB_STRONG)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        momentum = config.dist_align_momentum
        self.align = DistributionAlignment(num_classes, momentum) if momentum is not None else None

    @property
    def collapse_advice(self) -> str:
        """What the trainer's collapse warning suggests: MixMatch has no tau; its guesses train at weight lambda_u."""
        cfg = self.config
        align = (
            "set `algorithm.dist_align_momentum` (e.g. 0.99) to align the guesses with the labeled prior, "
            if cfg.dist_align_momentum is None
            else ""
        )
        return (
            f"MixMatch's sharpened guesses (T={cfg.T}) are their own targets at weight lambda_u={cfg.lambda_u}, so a "
            f"lean towards one class feeds itself: {align}lower `algorithm.lambda_u` (e.g. 10) or lengthen "
            f"`algorithm.rampup_steps` (now {cfg.rampup_steps}), or use a thresholded algorithm (fixmatch, flexmatch, "
            "freematch) or pi_model."
        )

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        labels = batch[LB_LABELS]
        with torch.no_grad():
            probs_weak = torch.softmax(logits_of(model, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
            probs_strong = torch.softmax(logits_of(model, batch[ULB_STRONG]), dim=-1)
            mean = (probs_weak + probs_strong) / 2
            if self.align is not None:
                self.align.update(labels, mean, state.gather)
                mean = self.align(mean)
            guess = sharpen(mean, cfg.T)
        net = getattr(model, "module", model)
        pad_id = getattr(getattr(net, "config", None), "pad_token_id", None) or 0
        inputs = concat_inputs([batch[LB], batch[ULB_WEAK], batch[ULB_STRONG]], pad_id)  # W, [B + 2 mu B]
        targets = torch.cat([F.one_hot(labels, self.num_classes).to(guess), guess, guess])

        generator = torch.Generator().manual_seed(derive_seed(state.seed, state.step))
        lam = mixup_lambda(cfg.alpha, generator)
        lam = max(lam, 1.0 - lam)
        perm = torch.randperm(len(targets), generator=generator).to(targets.device)
        logits = forward_mixed(model, inputs, take(inputs, perm), lam, cfg.mix_layer)
        mixed_targets = mix(targets, targets[perm], lam)

        n_lb = len(labels)
        loss_lb = soft_cross_entropy(logits[:n_lb], mixed_targets[:n_lb]).mean()
        loss_ulb = F.mse_loss(torch.softmax(logits[n_lb:], dim=-1), mixed_targets[n_lb:])
        weight = cfg.lambda_u * linear_rampup(state.step, cfg.rampup_steps)
        return LossOutput(
            total=loss_lb + weight * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": 1.0, "mixup_lambda": lam},
            pseudo_labels=guess.argmax(dim=-1),
            mask=torch.ones(len(guess), device=guess.device),
        )

    def state_dict(self) -> dict:
        return self.align.state_dict() if self.align is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.align is not None:
            self.align.load_state_dict(state)
