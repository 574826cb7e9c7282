"""Builders of the registered view operations: `(args, context) -> operation`.

A text-level operation is called as `op(texts, rows, generator) -> texts`, a token-level one as
`op(input_ids [B, L], attention_mask [B, L], generator) -> (input_ids, attention_mask)`.
`context` is the collator's `ssl_text.augment.pipeline.ViewContext` (tokenizer, unlabeled corpus).
Builders do the expensive and failure-prone work once (loading models, fitting statistics,
checking data files), so that a bad view stops a run before its first step.
"""

from __future__ import annotations

import numpy as np

from ssl_text.augment.precomputed import PrecomputedColumns
from ssl_text.augment.token_views import span_mask as _span_mask
from ssl_text.augment.token_views import token_dropout as _token_dropout
from ssl_text.augment.token_views import token_substitute as _token_substitute
from ssl_text.augment.words import seed_from


def _texts_only(op):
    """An operation on (texts, generator) as a text-level step."""
    return lambda texts, rows, generator: op(texts, generator)


# -- text level ---------------------------------------------------------------------------


def back_translation(args, context):
    return PrecomputedColumns(args.columns, args.required, context.column_names)


def _random_word(action: str):
    def build(args, context):
        from ssl_text.augment.word_ops import random_word_op

        return _texts_only(random_word_op(action, args.prob))

    return build


word_swap, word_delete, word_crop = _random_word("swap"), _random_word("delete"), _random_word("crop")


def synonym(args, context):
    from ssl_text.augment.word_ops import synonym_op

    return _texts_only(synonym_op(args.prob))


def tfidf_replace(args, context):
    from ssl_text.augment.tfidf import fit_tfidf
    from ssl_text.augment.tfidf import tfidf_replace as replace

    stats = fit_tfidf(context.corpus_texts("tfidf_replace"))
    return _texts_only(lambda texts, generator: replace(texts, stats, args.prob, np.random.default_rng(seed_from(generator))))


def contextual_substitute(args, context):
    from ssl_text.augment.contextual import ContextualSubstitution

    return _texts_only(ContextualSubstitution(args.model, args.prob, args.top_k))


# -- token level --------------------------------------------------------------------------


def token_dropout(args, context):
    if args.mask_prob > 0 and context.mask_id is None:
        raise ValueError(f"mask_prob is {args.mask_prob} but the tokenizer has no mask token; set it to 0 and use delete_prob.")

    def op(ids, mask, generator):
        if args.mask_prob <= 0 and args.delete_prob <= 0:
            return ids, mask
        return _token_dropout(ids, mask, context.special_mask(ids, mask), mask_token_id=context.mask_id,
                              pad_token_id=context.pad_id, mask_prob=args.mask_prob, delete_prob=args.delete_prob,
                              generator=generator)  # fmt: skip

    return op


def span_mask(args, context):
    if context.mask_id is None:
        raise ValueError("span masking needs a mask token, which the tokenizer lacks; use token_substitute instead.")

    def op(ids, mask, generator):
        return _span_mask(ids, context.special_mask(ids, mask), mask_token_id=context.mask_id, prob=args.prob,
                          mean_length=args.mean_length, max_length=args.max_length, generator=generator), mask  # fmt: skip

    return op


def token_substitute(args, context):
    candidates = context.substitution_candidates  # [C]

    def op(ids, mask, generator):
        special = context.special_mask(ids, mask)
        return _token_substitute(ids, special, candidates=candidates, prob=args.prob, generator=generator), mask

    return op


def random_crop(args, context):
    from ssl_text.augment.residue_views import random_crop as crop

    def op(ids, mask, generator):
        return crop(ids, mask, context.special_mask(ids, mask), prob=args.prob, min_fraction=args.min_fraction,
                    pad_token_id=context.pad_id, generator=generator)  # fmt: skip

    return op


def blosum_substitute(args, context):
    from ssl_text.augment.residue_views import blosum_substitute as substitute

    table = context.residues.table(args.temperature)  # built now: a non-protein vocabulary fails here

    def op(ids, mask, generator):
        return substitute(ids, ~context.special_mask(ids, mask), table, args.prob, generator), mask

    return op
