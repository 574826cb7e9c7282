"""A sequence classifier that keeps a sentence encoder's mean pooling: the labels are read from the masked mean
of the last hidden states (what sentence-transformers encoders such as all-MiniLM-L6-v2 were trained to embed
with), L2-normalised, through a linear head, instead of from the `[CLS]` pooler that
`AutoModelForSequenceClassification` uses. On normalised embeddings the head is exactly a logistic regression
of the sentence embeddings, so it can start from one (`set_head`).

No class in transformers classifies from mean-pooled states, so a saved model carries this file (`auto_map` in its
config.json) and loads with `trust_remote_code=True`:

    pipeline("text-classification", model=FOLDER, trust_remote_code=True)

This module imports only torch and transformers: it is copied verbatim next to every saved model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ARCHITECTURE = "MeanPoolingForSequenceClassification"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """[B, L, H] hidden states -> [B, H], the mean over the positions the mask keeps."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanPoolingForSequenceClassification(PreTrainedModel):
    """Any `AutoModel` encoder (`self.body`), mean pooling, L2 normalisation, dropout and a linear head
    (`self.classifier`)."""

    config_class = AutoConfig
    base_model_prefix = "body"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        try:  # BERT-like encoders build a `[CLS]` pooler that mean pooling never uses
            self.body = AutoModel.from_config(config, add_pooling_layer=False)
        except TypeError:
            self.body = AutoModel.from_config(config)
        self.dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", 0.1))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if module is self.classifier:
            nn.init.normal_(module.weight, std=getattr(self.config, "initializer_range", 0.02))
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def set_head(self, weight, bias) -> None:
        """Start the head so that its logits are `weight @ e + bias` (weights [C, H], biases [C]), e.g. a logistic
        regression's `coef_` and `intercept_` fitted on normalised embeddings."""
        self.classifier.weight.copy_(torch.as_tensor(weight, dtype=self.classifier.weight.dtype))
        self.classifier.bias.copy_(torch.as_tensor(bias, dtype=self.classifier.bias.dtype))

    def embed(self, input_ids=None, attention_mask=None, **inputs) -> torch.Tensor:
        """[B, H] L2-normalised mean-pooled sentence embeddings, as sentence-transformers gives them."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return F.normalize(mean_pool(hidden, attention_mask), dim=-1)

    def forward(self, input_ids=None, attention_mask=None, labels=None, return_dict=None, **inputs):
        inputs.pop("output_attentions", None)
        inputs.pop("output_hidden_states", None)
        logits = self.classifier(self.dropout(self.embed(input_ids, attention_mask, **inputs)))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)



MeanPoolingForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
