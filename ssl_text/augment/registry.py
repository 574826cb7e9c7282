"""The one registry of view operations, and how a config names them.

A view (`views.weak`, `views.strong`, `pretrain.view1/view2`) is a pipeline of steps applied
to each unlabeled example. A step is an operation name from `OPS` with arguments, written

    pipeline: [back_translation, word_swap(0.1), "span_mask(prob=0.15, mean_length=3)", {token_dropout: {mask_prob: 0.1}}]

(positional arguments follow the order of the operation's arguments; a flow-style YAML list
needs quotes around a step with several arguments, or the mapping form). Text-level steps
work on strings and come first; the text is then tokenized, and token-level steps work on
the padded `[B, L]` ids. A view without `pipeline` is the simple form: its fields
(`aug_columns`, `crop_prob`, `blosum_prob`, `mask_prob`, `delete_prob`, ...) stand for
`back_translation`, `random_crop`, `blosum_substitute` and `token_dropout`, in that order
(`SIMPLE_FORM`). Algorithms only ask for the `ulb_weak` / `ulb_strong` views.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ssl_text.augment import builders as build
from ssl_text.config import ConfigError, ViewConfig, from_dict

TEXT, TOKENS = "text", "tokens"  # the level an operation works at

_RANGES: dict[str, Callable[[float], bool]] = {
    "[0, 1)": lambda v: 0.0 <= v < 1.0,
    "[0, 1]": lambda v: 0.0 <= v <= 1.0,
    "(0, 1]": lambda v: 0.0 < v <= 1.0,
    "(0, inf)": lambda v: v > 0,
    "[1, inf)": lambda v: v >= 1,
}


# ---------------------------------------------------------------------------------------
# Arguments of each operation: typed fields (positional order = field order) and ranges
# ---------------------------------------------------------------------------------------


@dataclass
class Args:
    RANGES: ClassVar[dict[str, str]] = {}  # argument -> key of `_RANGES`

    def problems(self) -> list[tuple[str, str]]:
        """(argument, what was expected) for every argument out of its range."""
        return [(name, f"a value in {rng}") for name, rng in self.RANGES.items() if not _RANGES[rng](getattr(self, name))]

    def active(self) -> bool:
        """False when every `*prob` argument is 0: the step changes nothing (the simple form drops it)."""
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("prob"))


@dataclass
class BackTranslationArgs(Args):
    columns: list[str] | None = None  # default: every aug_<k> column of the unlabeled data
    required: bool = True  # false: use the columns that exist, none leaving the text as it is


@dataclass
class WordArgs(Args):
    prob: float = 0.1  # share of the words changed (at least one per text for the nlpaug operations)
    RANGES: ClassVar[dict[str, str]] = {"prob": "(0, 1]"}


@dataclass
class ContextualArgs(Args):
    model: str  # a masked-LM checkpoint: local folder or Hub id
    prob: float = 0.15
    top_k: int = 10
    RANGES: ClassVar[dict[str, str]] = {"prob": "(0, 1]", "top_k": "[1, inf)"}


@dataclass
class TokenDropoutArgs(Args):
    mask_prob: float = 0.1
    delete_prob: float = 0.0
    RANGES: ClassVar[dict[str, str]] = {"mask_prob": "[0, 1)", "delete_prob": "[0, 1)"}


@dataclass
class SpanMaskArgs(Args):
    prob: float = 0.15  # about this share of the tokens is masked
    mean_length: float = 3.0  # geometric span lengths with this mean ...
    max_length: int = 10  # ... clipped here
    RANGES: ClassVar[dict[str, str]] = {"prob": "[0, 1)", "mean_length": "[1, inf)", "max_length": "[1, inf)"}


@dataclass
class TokenSubstituteArgs(Args):
    prob: float = 0.1
    RANGES: ClassVar[dict[str, str]] = {"prob": "[0, 1)"}


@dataclass
class RandomCropArgs(Args):
    prob: float = 0.5  # share of the sequences cropped
    min_fraction: float = 0.5  # a crop keeps at least this share of the tokens
    RANGES: ClassVar[dict[str, str]] = {"prob": "[0, 1]", "min_fraction": "(0, 1]"}


@dataclass
class BlosumArgs(Args):
    prob: float = 0.1
    temperature: float = 1.0
    RANGES: ClassVar[dict[str, str]] = {"prob": "[0, 1)", "temperature": "(0, inf)"}


# ---------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    level: str  # TEXT: (texts, rows, generator) -> texts; TOKENS: (ids [B, L], mask [B, L], generator) -> (ids, mask)
    args: type
    build: Callable[[Any, Any], Callable]  # (args, ViewContext) -> the operation, see ssl_text/augment/builders.py
    summary: str


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("back_translation", TEXT, BackTranslationArgs, build.back_translation,
           "a precomputed paraphrase column (aug_<k>) per example, e.g. from `ssl-text augment back-translate`"),
        Op("word_swap", TEXT, WordArgs, build.word_swap, "swap adjacent words (nlpaug)"),
        Op("word_delete", TEXT, WordArgs, build.word_delete, "delete words (nlpaug)"),
        Op("word_crop", TEXT, WordArgs, build.word_crop, "delete a contiguous run of words (nlpaug)"),
        Op("synonym", TEXT, WordArgs, build.synonym, "replace words by WordNet synonyms (nlpaug; needs NLTK data)"),
        Op("tfidf_replace", TEXT, WordArgs, build.tfidf_replace,
           "UDA: replace uninformative (low TF-IDF) words, fitted on the unlabeled corpus"),
        Op("contextual_substitute", TEXT, ContextualArgs, build.contextual_substitute,
           "replace words by a masked language model's predictions"),
        Op("token_dropout", TOKENS, TokenDropoutArgs, build.token_dropout, "replace tokens by the mask token and/or delete them"),
        Op("span_mask", TOKENS, SpanMaskArgs, build.span_mask, "mask contiguous spans of tokens (SpanBERT-style)"),
        Op("token_substitute", TOKENS, TokenSubstituteArgs, build.token_substitute,
           "replace tokens by random vocabulary tokens (never special tokens)"),
        Op("random_crop", TOKENS, RandomCropArgs, build.random_crop, "keep a random contiguous window of the tokens"),
        Op("blosum_substitute", TOKENS, BlosumArgs, build.blosum_substitute,
           "replace residues by BLOSUM62 neighbours (protein tokenizers)"),
    )
}  # fmt: skip

# The simple form: ViewConfig fields -> (operation, argument), in the order the operations apply.
SIMPLE_FORM: tuple[tuple[str, dict[str, str]], ...] = (
    ("random_crop", {"crop_prob": "prob", "crop_min_fraction": "min_fraction"}),
    ("blosum_substitute", {"blosum_prob": "prob", "blosum_temperature": "temperature"}),
    ("token_dropout", {"mask_prob": "mask_prob", "delete_prob": "delete_prob"}),
)


@dataclass(frozen=True)
class Step:
    op: Op
    args: Any  # an instance of op.args
    key: str = field(default="", compare=False)  # where the config wrote it, for error messages

    def __str__(self) -> str:
        values = ", ".join(f"{f.name}={getattr(self.args, f.name)!r}" for f in dataclasses.fields(self.args))
        return f"{self.op.name}({values})"


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

_STEP = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", re.DOTALL)
_FORMS = "`name`, `name(value, key=value)` or `{name: {key: value}}`"


def parse_step(raw: Any, key: str, source: str = "<config>") -> Step:
    """One step from `name`, `name(args)` or a one-key mapping `{name: args}`."""
    if isinstance(raw, str):
        match = _STEP.fullmatch(raw)
        if match is None:
            raise ConfigError(f"{source}: `{key}` is {raw!r}; expected {_FORMS}.")
        name, inner = match.group(1), match.group(2)
        positional, keywords = _call_arguments(inner, raw, key, source) if inner and inner.strip() else ([], {})
    elif isinstance(raw, dict) and len(raw) == 1:
        ((name, value),) = raw.items()
        positional, keywords = _mapping_arguments(value)
    else:
        raise ConfigError(f"{source}: `{key}` is {raw!r}; expected {_FORMS}.")
    op = _lookup(str(name), key, source)
    names = [f.name for f in dataclasses.fields(op.args)]
    if len(positional) > len(names):
        raise ConfigError(
            f"{source}: `{key}` gives {op.name} {len(positional)} positional arguments; it takes at most "
            f"{len(names)}: {names}."
        )
    overlap = set(names[: len(positional)]) & set(keywords)
    if overlap:
        raise ConfigError(f"{source}: `{key}` gives {sorted(overlap)} both by position and by name; give each once.")
    values = {**dict(zip(names, positional)), **keywords}
    args = from_dict(op.args, values, source, prefix=f"{key}.")
    for name, expected in args.problems():
        raise ConfigError(f"{source}: `{key}.{name}` ({op.name}) is {getattr(args, name)!r}; expected {expected}.")
    return Step(op, args, key)


def _lookup(name: str, key: str, source: str) -> Op:
    if name in OPS:
        return OPS[name]
    close = difflib.get_close_matches(name, OPS, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise ConfigError(f"{source}: `{key}` names the operation `{name}`, which does not exist; known: {sorted(OPS)}.{hint}")


class _BareWordsAsStrings(ast.NodeTransformer):
    """`columns=[aug_0, aug_1]` reads as `columns=["aug_0", "aug_1"]`, as YAML would."""

    def visit_Name(self, node: ast.Name) -> ast.Constant:
        return ast.copy_location(ast.Constant(node.id), node)


def _call_arguments(inner: str, raw: str, key: str, source: str) -> tuple[list, dict]:
    try:
        call = _BareWordsAsStrings().visit(ast.parse(f"f({inner})", mode="eval")).body
        return [ast.literal_eval(a) for a in call.args], {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError, TypeError):
        raise ConfigError(
            f"{source}: `{key}` is {raw!r}, whose arguments are not literals; write e.g. span_mask(0.15, mean_length=3) "
            "and quote strings with other characters than letters, digits and `_`."
        ) from None


def _mapping_arguments(value: Any) -> tuple[list, dict]:
    if value is None:
        return [], {}
    if isinstance(value, dict):
        return [], dict(value)
    return (list(value), {}) if isinstance(value, list) else ([value], {})


def parse_pipeline(raw_steps: list, key: str, source: str = "<config>") -> list[Step]:
    """The steps of `key.pipeline`; text-level steps first, `back_translation` before the other ones."""
    steps = [parse_step(raw, f"{key}.pipeline[{i}]", source) for i, raw in enumerate(raw_steps)]
    for i, step in enumerate(steps):
        if step.op.level == TEXT and any(s.op.level == TOKENS for s in steps[:i]):
            first = next(s for s in steps if s.op.level == TOKENS)
            raise ConfigError(
                f"{source}: `{step.key}` ({step.op.name}) works on text but comes after the token-level step "
                f"`{first.key}` ({first.op.name}); move the text-level steps to the front of the pipeline."
            )
        if step.op.name == "back_translation" and i > 0:
            raise ConfigError(
                f"{source}: `{step.key}` (back_translation) replaces the text with a precomputed paraphrase, so it "
                "must be the first step; move it to the front."
            )
    return steps


def simple_steps(view: ViewConfig, key: str, source: str = "<config>") -> list[Step]:
    """The steps that the simple form's fields stand for (fields at 0 give no step)."""
    steps = []
    if view.aug_columns:
        steps.append(Step(OPS["back_translation"], BackTranslationArgs(list(view.aug_columns)), key))  # named: must exist
    for name, fields in SIMPLE_FORM:
        op = OPS[name]
        args = op.args(**{arg: getattr(view, f) for f, arg in fields.items()})
        by_arg = {arg: f for f, arg in fields.items()}
        for arg, expected in args.problems():
            raise ConfigError(f"{source}: `{key}.{by_arg[arg]}` is {getattr(args, arg)}; expected {expected}.")
        if args.active():
            steps.append(Step(op, args, key))
    return steps


def view_steps(view: ViewConfig, key: str, source: str = "<config>") -> list[Step]:
    """The steps of one view: its `pipeline`, or else those of its simple-form fields. Both at once is an error."""
    if not view.pipeline:
        return simple_steps(view, key, source)
    default = ViewConfig()
    set_fields = {f: getattr(view, f) for f in _simple_fields() if getattr(view, f) != getattr(default, f)}
    if set_fields:
        as_steps = ", ".join(str(s) for s in simple_steps(view, key, source))
        raise ConfigError(
            f"{source}: `{key}` has a `pipeline` and also the simple-form fields {set_fields}; use one form. "
            f"Put them into the pipeline (here: {as_steps or 'nothing, they are all off'}) and reset the fields, "
            f"or replace the whole section, e.g. `{key}={{pipeline: [...]}}`."
        )
    return parse_pipeline(view.pipeline, key, source)


def check_view(view: ViewConfig, key: str, source: str = "<config>", *, text_ops: bool = True) -> list[Step]:
    """`view_steps`, refusing text-level steps where there is no text (`text_ops=False`, e.g. pretraining)."""
    steps = view_steps(view, key, source)
    if not text_ops:
        for step in steps:
            if step.op.level == TEXT:
                where = step.key if view.pipeline else f"{key}.aug_columns"
                raise ConfigError(
                    f"{source}: `{where}` ({step.op.name}) works on text, which is not available here; "
                    f"use token-level operations: {sorted(n for n, op in OPS.items() if op.level == TOKENS)}."
                )
    return steps


def _simple_fields() -> list[str]:
    return ["aug_columns", *(f for _, fields in SIMPLE_FORM for f in fields)]
