"""Contextual word substitution with a masked language model (Kobayashi 2018; nlpaug's ContextualWordEmbsAug).

Each word of a text is chosen with probability `prob`; the chosen words of a batch are replaced
by the mask token together, the texts go through the MLM once, and each masked word becomes a
token sampled from the `top_k` predictions at its position. Candidates are whole-word tokens of
the MLM's vocabulary (no special tokens, no `##` continuations, letters and digits only); the
original word is excluded. Sampling uses the collator's generator, so the output is a function of
the batch and its generator. The MLM runs on the CPU in eval mode.
"""

from __future__ import annotations

import re

import torch

from ssl_text.augment.words import match_case, split_words

_WHOLE_WORD = re.compile(r"\w+")


class ContextualSubstitution:
    def __init__(self, model: str, prob: float, top_k: int, max_length: int = 256):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        if self.tokenizer.mask_token_id is None:
            raise ValueError(f"the tokenizer of {model!r} has no mask token; use a masked language model (BERT, RoBERTa, ...).")
        self.model, info = AutoModelForMaskedLM.from_pretrained(model, output_loading_info=True)
        if info["missing_keys"]:
            raise ValueError(
                f"{model!r} has no masked-LM head (missing weights {sorted(info['missing_keys'])[:3]}); "
                "name a checkpoint trained with masked language modeling, e.g. a BERT or RoBERTa MLM."
            )
        self.model.eval()
        self.prob, self.top_k, self.max_length = prob, top_k, max_length
        tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        special = set(self.tokenizer.all_special_ids)
        self.words = [self.tokenizer.convert_tokens_to_string([t]).strip() for t in tokens]
        whole = [i not in special and not t.startswith("##") and bool(_WHOLE_WORD.fullmatch(w))
                 for i, (t, w) in enumerate(zip(tokens, self.words))]  # fmt: skip
        self.allowed = torch.zeros(max(len(tokens), self.model.config.vocab_size), dtype=torch.bool)  # [V], padded like the MLM
        self.allowed[: len(whole)] = torch.tensor(whole)
        if not bool(self.allowed.any()):
            raise ValueError(f"the vocabulary of {model!r} has no whole-word tokens to substitute with.")
        self.word_id = {self.words[i].lower(): i for i in torch.nonzero(self.allowed).flatten().tolist()}

    def __call__(self, texts: list[str], generator: torch.Generator) -> list[str]:
        mask = self.tokenizer.mask_token
        pieces = [split_words(t) for t in texts]
        draws = torch.rand(sum(len(p) // 2 for p in pieces), generator=generator) < self.prob
        chosen, start = [], 0
        for text, p in zip(texts, pieces):
            n = len(p) // 2
            chosen.append([] if mask in text else torch.nonzero(draws[start : start + n]).flatten().tolist())
            start += n
        if not any(chosen):
            return list(texts)
        masked = []
        for p, picked in zip(pieces, chosen):
            q = list(p)
            for i in picked:
                q[2 * i + 1] = mask
            masked.append("".join(q))
        enc = self.tokenizer(masked, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**enc).logits  # [B, T, V]
        at = enc["input_ids"] == self.tokenizer.mask_token_id  # [B, T]
        kept = [picked[:found] for picked, found in zip(chosen, at.sum(dim=1).tolist())]  # truncation cuts masks off
        scores = logits[at].float().masked_fill(~self.allowed[: logits.shape[-1]], float("-inf"))  # [M, V]
        original = torch.tensor([self.word_id.get(p[2 * i + 1].lower(), -1) for p, picked in zip(pieces, kept) for i in picked])
        rows = torch.arange(len(scores))
        scores[rows[original >= 0], original[original >= 0]] = float("-inf")  # a substitution changes the word
        top = scores.topk(min(self.top_k, max(int(self.allowed.sum()) - 1, 1)), dim=1)
        pick = torch.multinomial(torch.softmax(top.values, dim=1), 1, generator=generator).squeeze(1)
        new_ids = iter(top.indices[rows, pick].tolist())
        out = []
        for p, picked in zip(pieces, kept):
            q = list(p)
            for i in picked:
                q[2 * i + 1] = match_case(p[2 * i + 1], self.words[next(new_ids)])
            out.append("".join(q))
        return out
