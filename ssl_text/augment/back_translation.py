"""Offline back-translation: paraphrases of unlabeled texts for UDA-style consistency views.

Every text is split into sentences, each sentence is translated to a pivot language and back,
and the sentences are joined again. The paraphrases are stored as columns ``aug_0 ...
aug_{K-1}`` next to the original columns of the input, in an Arrow dataset written with
``Dataset.save_to_disk`` directly in the output folder (``Dataset.load_from_disk(out)``
reads it) plus a Parquet copy ``out/data.parquet``. With several pivots every pivot
contributes K columns, numbered consecutively (pivot 0 gives ``aug_0 .. aug_{K-1}``, pivot 1
gives ``aug_K .. aug_{2K-1}``, ...).

Backends (both implement :class:`Paraphraser`):

* :class:`MarianBackend`: a pair of Hugging Face seq2seq models (default
  ``Helsinki-NLP/opus-mt-{src}-{pivot}`` and ``opus-mt-{pivot}-{src}``, or any ids / local
  folders). Both directions sample (``do_sample=True``, ``temperature``, ``top_k=0`` by
  default, i.e. the full distribution), so the K paraphrases differ. Sentences are sorted by
  token length, batched, and put back in order. Sampling is seeded per (pivot, shard,
  paraphrase, direction, batch): outputs depend only on the seed, the shard size and the
  batch size, not on the number of processes or on resuming.
* :class:`ApertiumBackend`: Debian's rule-based translator (``apertium -u eng-spa`` then
  ``apertium -u spa-eng``), run as one subprocess per direction on a whole batch of lines.
  It is deterministic: with K > 1 the K columns hold the same paraphrase.

Resuming and several processes: the rows are cut into position-keyed shards
(``shards/shard_00000-00511.parquet``, inclusive row range), each written atomically (temp
file + rename) by the project's one sharded writer (``ssl_text/data/shards.py``), so a shard
file is either complete or absent. A killed run continues with
the shards that are missing; nothing written is recomputed. The shard files are the source
of truth; ``manifest.json`` (rewritten by the main process) records the configuration
fingerprint and which shards are done. Under ``accelerate launch`` shard ``i`` goes to
process ``i % world_size`` and the main process merges all shards in row order, so the
result is identical to a single-process run.

Empty texts, and texts for which some sentence came back empty (untranslatable), keep the
original text in the affected ``aug_*`` column; ``summary.json`` counts them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from ssl_text.config.keys import AUG_PREFIX
from ssl_text.config.seeds import SHA256_SEED_BITS, derive_seed
from ssl_text.data.shards import MissingShardsError, Shards

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_META_KEY = b"ssl_text.back_translation"


class BackTranslationError(RuntimeError):
    """A problem the user can fix (bad input, missing tool, mismatched resume)."""


class ApertiumNotFoundError(BackTranslationError):
    pass


# ---------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft inc corp co ltd plc bros vs etc gen gov sen rep lt col "
    "sgt capt cmdr adm no nos vol fig approx dept univ jan feb mar apr jun jul aug sep sept "
    "oct nov dec".split()
)
_BOUNDARY = re.compile(r"([.!?]+[\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")  # "J", "U.S", "e.g"


def split_sentences(text: str) -> list[str]:
    """Split on ``.``, ``!`` or ``?`` followed by whitespace and an upper-case letter or a
    digit, except after common abbreviations and initials (``Mr.``, ``U.S.``, ``J.``).
    Whitespace (line breaks included) is collapsed, so no sentence contains a newline."""
    text = " ".join(text.split())
    if not text:
        return []
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1).startswith(".") and m.group(1).count(".") == 1:
            word = text[start : m.start(1)].rsplit(" ", 1)[-1].lstrip("\"'(")
            if word.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(word):
                continue
        sentences.append(text[start : m.end(1)])
        start = m.end()
    sentences.append(text[start:])
    return [s for s in sentences if s]


def join_sentences(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


def process_state():
    """accelerate's per-process state: device, rank, world size, barriers.

    ``PartialState`` gives the same ``device`` as ``Accelerator().device`` but, unlike
    ``Accelerator()``, does not fix the mixed-precision setting for a later ``Accelerator``
    in the same process (the trainer's). ``ACCELERATE_USE_CPU=1`` (set by
    ``accelerate launch --cpu``) selects CPU workers, as it does for ``Accelerator``."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def _derive_seed(*parts: Any) -> int:
    """Back-translation's streams: SHA-256 seeds (direction names among the parts), 63 bits."""
    return derive_seed(*parts, bits=SHA256_SEED_BITS, digest="sha256")


# ---------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------


_DIRECTIONS = ("forward", "backward")


def _direction_index(direction: str) -> int:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    return _DIRECTIONS.index(direction)


def _chain(mid: list[str | None], backward) -> list[str | None]:
    """Run ``backward`` on the non-empty entries of ``mid``; failures stay ``None``."""
    ok = [i for i, s in enumerate(mid) if s]
    back: list[str | None] = [None] * len(mid)
    for i, s in zip(ok, backward([mid[i] for i in ok])):
        back[i] = s
    return back


@runtime_checkable
class Paraphraser(Protocol):
    """Round-trip translation through one pivot language.

    ``paraphrase`` returns ``k`` lists, each aligned with ``sentences``; an entry is ``None``
    (or empty) when that sentence could not be translated. ``config`` describes everything
    that changes the output (it goes into the resume fingerprint). The built-in backends
    also offer ``translate(texts, direction)`` with direction ``"forward"`` (source to pivot)
    or ``"backward"``."""

    name: str
    pivot: str

    def paraphrase(self, sentences: Sequence[str], k: int, seed: int) -> list[list[str | None]]: ...

    def config(self) -> dict: ...


_ISO1_TO_3 = {"en": "eng", "es": "spa", "de": "deu", "fr": "fra", "ca": "cat", "pt": "por",
              "it": "ita", "gl": "glg", "eo": "epo", "ro": "ron", "oc": "oci", "an": "arg"}
_ISO3_TO_1 = {v: k for k, v in _ISO1_TO_3.items()}


def marian_model_ids(source: str, pivot: str) -> tuple[str, str]:
    """Default OPUS-MT ids for a round trip, e.g. ``("Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en")``."""
    src, piv = _ISO3_TO_1.get(source, source), _ISO3_TO_1.get(pivot, pivot)
    return f"Helsinki-NLP/opus-mt-{src}-{piv}", f"Helsinki-NLP/opus-mt-{piv}-{src}"


class MarianBackend:
    """Back-translation with two seq2seq models (sampling, so K > 1 gives K paraphrases).

    Models load lazily on the first call, onto ``device`` (default: accelerate's device for
    this process, see :func:`process_state`).
    """

    name = "marian"

    def __init__(
        self,
        forward_model: str,
        backward_model: str,
        *,
        pivot: str = "",
        temperature: float = 0.9,
        top_k: int = 0,
        batch_size: int = 32,
        max_new_tokens: int | None = None,
        device: Any = None,
    ):
        if temperature <= 0:
            raise BackTranslationError(f"temperature must be > 0 for sampling, got {temperature}")
        if batch_size < 1:
            raise BackTranslationError(f"batch size must be >= 1, got {batch_size}")
        self.forward_model, self.backward_model = forward_model, backward_model
        self.pivot = pivot or forward_model
        self.temperature, self.top_k = temperature, top_k
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self._device = device
        self._pairs: list | None = None

    def config(self) -> dict:
        return {"backend": self.name, "forward_model": self.forward_model,
                "backward_model": self.backward_model, "temperature": self.temperature,
                "top_k": self.top_k, "batch_size": self.batch_size,
                "max_new_tokens": self.max_new_tokens}

    def prepare(self) -> None:
        if self._pairs is not None:
            return
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if self._device is None:
            self._device = process_state().device
        pairs = []
        for name in (self.forward_model, self.backward_model):
            try:
                tok = AutoTokenizer.from_pretrained(name)
                model = AutoModelForSeq2SeqLM.from_pretrained(name)
            except (OSError, ValueError) as e:
                raise BackTranslationError(
                    f"could not load translation model {name!r} ({e.__class__.__name__}: {e}). "
                    "Without Hub access pass local folders with --forward-model/--backward-model, "
                    "or use --backend apertium."
                ) from e
            if len(tok) < 10:  # transformers 5 returns an empty tokenizer for a folder without vocab
                raise BackTranslationError(
                    f"tokenizer of {name!r} has only {len(tok)} tokens: vocabulary files missing?")
            pairs.append((tok, model.to(self._device).eval()))
        self._pairs = pairs

    def paraphrase(self, sentences: Sequence[str], k: int, seed: int) -> list[list[str | None]]:
        out = []
        for j in range(k):
            mid = self.translate(sentences, "forward", _derive_seed(seed, j, "forward"))
            back_seed = _derive_seed(seed, j, "backward")
            out.append(_chain(mid, lambda ok, s=back_seed: self.translate(ok, "backward", s)))
        return out

    def translate(self, sentences: Sequence[str], direction: str = "forward", seed: int = 0) -> list[str | None]:
        """Translate with the forward (source->pivot) or backward model; order is kept."""
        import torch

        self.prepare()
        tok, model = self._pairs[_direction_index(direction)]
        if not sentences:
            return []
        lengths = [len(ids) for ids in tok(list(sentences), truncation=True)["input_ids"]]
        order = sorted(range(len(sentences)), key=lambda i: (lengths[i], i))
        result: list[str | None] = [None] * len(sentences)
        device = torch.device(self._device)
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        for b, start in enumerate(range(0, len(order), self.batch_size)):
            idx = order[start : start + self.batch_size]
            enc = tok([sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True).to(device)
            max_new = self.max_new_tokens or min(512, int(1.5 * enc["input_ids"].shape[1]) + 10)
            with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
                torch.manual_seed(_derive_seed(seed, b))
                gen = model.generate(**enc, do_sample=True, temperature=self.temperature,
                                     top_k=self.top_k, num_beams=1, max_new_tokens=max_new)
            for i, text in zip(idx, tok.batch_decode(gen, skip_special_tokens=True)):
                text = " ".join(text.split())
                result[i] = text or None
        return result


APERTIUM_INSTALL = "apt-get install -y apertium apertium-eng-spa"


def _strip_markers(src: str, out: str | None) -> str | None:
    """Drop Apertium's error marks ('#' generation error, '@' transfer error; '*' is already
    off with -u) unless the source line had that character itself."""
    if out:
        for mark in "#@":
            if mark in out and mark not in src:
                out = " ".join(out.replace(mark, "").split())
    return out or None


class ApertiumBackend:
    """Rule-based back-translation with Apertium (offline, deterministic).

    Because Apertium is deterministic, K > 1 yields K identical paraphrases.
    """

    name = "apertium"

    def __init__(self, pivot: str = "spa", source: str = "eng", *, binary: str = "apertium",
                 batch_size: int = 5000):
        self.pivot, self.source = _ISO1_TO_3.get(pivot, pivot), _ISO1_TO_3.get(source, source)
        self.batch_size = max(1, batch_size)
        self.forward_mode, self.backward_mode = f"{self.source}-{self.pivot}", f"{self.pivot}-{self.source}"
        path = shutil.which(binary)
        if path is None:
            raise ApertiumNotFoundError(
                f"the {binary!r} binary was not found on PATH; install it with: {APERTIUM_INSTALL}"
            )
        self.binary = path
        modes = subprocess.run([path, "-l"], capture_output=True, text=True).stdout.split()
        missing = [m for m in (self.forward_mode, self.backward_mode) if m not in modes]
        if missing:
            pkg = f"apertium-{self.source}-{self.pivot}"
            raise BackTranslationError(
                f"apertium has no mode {', '.join(missing)} (installed: {', '.join(modes) or 'none'}); "
                f"install the language pair, e.g. `apt-get install -y {pkg}` (English-Spanish: "
                f"{APERTIUM_INSTALL}; `apt-cache search apertium` lists the pairs)"
            )

    def config(self) -> dict:
        return {"backend": self.name, "forward_mode": self.forward_mode, "backward_mode": self.backward_mode,
                "strip_marks": "#@"}

    def paraphrase(self, sentences: Sequence[str], k: int, seed: int) -> list[list[str | None]]:
        back = _chain(self.translate(sentences, "forward"), lambda ok: self.translate(ok, "backward"))
        return [list(back) for _ in range(k)]

    def translate(self, lines: Sequence[str], direction: str = "forward", seed: int = 0) -> list[str | None]:
        """Translate one line per input string; line counts in and out always match.
        ``seed`` is ignored (deterministic)."""
        mode = (self.forward_mode, self.backward_mode)[_direction_index(direction)]
        lines = [" ".join(line.split()) for line in lines]  # no embedded newlines
        out: list[str | None] = []
        for start in range(0, len(lines), self.batch_size):
            chunk = lines[start : start + self.batch_size]
            got = self._run(mode, chunk)
            if got is None:
                logger.warning("apertium %s returned a different number of lines for %d inputs; "
                               "falling back to one call per line", mode, len(chunk))
                got = []
                for line in chunk:
                    single = self._run(mode, [line], exact=False)
                    got.append(" ".join(part for part in single or [] if part) or None)
            out.extend(_strip_markers(src, dst) for src, dst in zip(chunk, got))
        return out

    def _run(self, mode: str, lines: list[str], exact: bool = True) -> list[str | None] | None:
        if not lines:
            return []
        proc = subprocess.run([self.binary, "-u", mode], input="\n".join(lines) + "\n",
                              capture_output=True, text=True, encoding="utf-8", errors="replace")
        if proc.returncode != 0:
            raise BackTranslationError(f"apertium -u {mode} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
        got = proc.stdout.split("\n")
        if got and got[-1] == "":
            got.pop()
        if exact and len(got) != len(lines):
            return None
        return [" ".join(s.split()) or None for s in got]


# ---------------------------------------------------------------------------------------
# Sharded, resumable driver
# ---------------------------------------------------------------------------------------


def _texts_digest(texts: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for t in texts:
        b = b"\x00" if t is None else str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def paraphrase_texts(texts: Sequence[Any], paraphrasers: Sequence[Paraphraser], k: int,
                     seed: int) -> tuple[list[list[Any]], dict]:
    """Back-translate ``texts`` with every paraphraser: returns ``len(paraphrasers) * k``
    columns aligned with ``texts`` and counters. ``seed`` is used as is (the driver derives
    one per pivot and shard)."""
    sentences: list[str] = []
    spans: list[tuple[int, int] | None] = []
    for t in texts:
        sents = split_sentences(t) if isinstance(t, str) else []
        if sents:
            spans.append((len(sentences), len(sentences) + len(sents)))
            sentences.extend(sents)
        else:
            spans.append(None)
    columns: list[list[Any]] = []
    kept_rows: set[int] = set()
    n_cells_kept = 0
    for p_idx, para in enumerate(paraphrasers):
        outs = para.paraphrase(sentences, k, _derive_seed(seed, p_idx)) if sentences else [[] for _ in range(k)]
        if len(outs) != k or any(len(o) != len(sentences) for o in outs):
            raise BackTranslationError(f"backend {para.name} returned a misaligned result")
        for out in outs:
            col = []
            for row, (text, span) in enumerate(zip(texts, spans)):
                parts = out[span[0] : span[1]] if span else None
                if not parts or any(not p for p in parts):
                    col.append(text)
                    kept_rows.add(row)
                    n_cells_kept += 1
                else:
                    col.append(join_sentences(parts))
            columns.append(col)
    stats = {"n_texts": len(texts), "n_sentences": len(sentences), "n_kept_original": len(kept_rows),
             "n_cells_kept_original": n_cells_kept}
    return columns, stats


def back_translate(
    dataset,
    out_dir: str | os.PathLike,
    paraphrasers: Sequence[Paraphraser],
    *,
    text_column: str = "text",
    num_paraphrases: int = 1,
    seed: int = 0,
    shard_size: int = 512,
    overwrite: bool = False,
    accelerator=None,
) -> dict:
    """Add ``aug_*`` back-translation columns to ``dataset`` (a ``datasets.Dataset``) and save
    the result in ``out_dir`` (see the module docstring). Returns the summary (also written
    to ``out_dir/summary.json``). Safe to call again after an interruption: finished shards
    are kept. ``overwrite=True`` discards earlier shards, even from another configuration.
    ``accelerator``: an ``Accelerator`` or ``PartialState`` (default :func:`process_state`).

    Summary fields: ``n_texts``; ``n_sentences`` (source sentences after splitting);
    ``n_kept_original`` (texts for which at least one ``aug_*`` column holds the original:
    empty or untranslatable); ``n_cells_kept_original`` (such cells); ``seconds`` (translation
    time summed over all shards, earlier interrupted runs included, model loading excluded;
    with N processes the wall time is about seconds / N); ``sentences_per_second``
    (``n_sentences / seconds``, one source sentence counting once for all its pivots and
    paraphrases); ``backend``; ``pivot`` (list, one per pivot)."""
    if accelerator is None:
        accelerator = process_state()
    if not paraphrasers:
        raise BackTranslationError("no backend/pivot given")
    if num_paraphrases < 1:
        raise BackTranslationError(f"--num-paraphrases must be >= 1, got {num_paraphrases}")
    if shard_size < 1:
        raise BackTranslationError(f"--shard-size must be >= 1, got {shard_size}")
    if text_column not in dataset.column_names:
        raise BackTranslationError(
            f"text column {text_column!r} not in the data (columns: {', '.join(dataset.column_names)}); "
            "choose one with --text-column, or name the columns of a header-less CSV with --column-names"
        )
    if len(dataset) == 0:
        raise BackTranslationError("the input has no rows")
    clash = [c for c in dataset.column_names if c.startswith(AUG_PREFIX)]
    if clash:
        raise BackTranslationError(f"the input already has augmentation columns {clash}; drop them first")

    out = Path(out_dir)
    shard_dir = out / "shards"
    manifest_path = out / "manifest.json"
    texts = list(dataset[text_column])
    n = len(texts)
    n_cols = len(paraphrasers) * num_paraphrases
    aug_names = [f"{AUG_PREFIX}{i}" for i in range(n_cols)]
    config = {
        "format_version": FORMAT_VERSION,
        "text_column": text_column,
        "num_paraphrases": num_paraphrases,
        "seed": seed,
        "shard_size": shard_size,
        "pivots": [p.pivot for p in paraphrasers],
        "backends": [p.config() for p in paraphrasers],
        "n_rows": n,
        "texts_sha256": _texts_digest(texts),
    }
    fingerprint = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    shards = Shards(shard_dir, n, shard_size, fingerprint, _META_KEY)
    ranges, files = shards.ranges, shards.files

    # 1. every process checks an earlier run's manifest before anything is written
    if not overwrite and manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("fingerprint") != fingerprint:
            raise BackTranslationError(
                f"{out} holds a back-translation run with another configuration or input "
                f"(fingerprint {old.get('fingerprint')} != {fingerprint}); use a fresh --out or pass --overwrite"
            )
    accelerator.wait_for_everyone()

    def write_manifest(stats_by_shard: list[dict | None], complete: bool) -> None:
        _atomic_write_json(manifest_path, {
            "fingerprint": fingerprint,
            "config": config,
            "columns": aug_names,
            "complete": complete,
            "shards": [
                {"index": i, "start": s, "end": e, "file": f"shards/{f.name}", "done": st is not None,
                 **({k: st[k] for k in ("n_sentences", "n_kept_original", "n_cells_kept_original", "seconds")}
                    if st else {})}
                for i, ((s, e), f, st) in enumerate(zip(ranges, files, stats_by_shard))
            ],
        })

    # 2. the main process prepares the folder
    known: list[dict | None] = []
    if accelerator.is_main_process:
        if overwrite:
            shutil.rmtree(shard_dir, ignore_errors=True)
            manifest_path.unlink(missing_ok=True)
        shard_dir.mkdir(parents=True, exist_ok=True)
        shards.remove_partial_writes()
        known = shards.scan()
        write_manifest(known, False)
    accelerator.wait_for_everyone()

    # 3. every process computes its missing shards
    rank, world = accelerator.process_index, accelerator.num_processes
    todo = shards.todo(rank, world)
    logger.info("process %d/%d: %d of its %d shards to compute", rank, world, len(todo), len(range(rank, len(shards), world)))
    if todo:
        for p in paraphrasers:
            if hasattr(p, "prepare"):
                p.prepare()
        if num_paraphrases > 1 and any(p.name == "apertium" for p in paraphrasers):
            logger.warning("apertium is deterministic: the %d paraphrases per pivot are identical", num_paraphrases)
    for done_count, i in enumerate(todo, 1):
        s, e = ranges[i]
        t0 = time.perf_counter()
        cols, stats = paraphrase_texts(texts[s:e], paraphrasers, num_paraphrases, _derive_seed(seed, i))
        stats["seconds"] = time.perf_counter() - t0
        table = pa.table({name: pa.array(col, type=pa.string()) for name, col in zip(aug_names, cols)})
        stats = shards.write(i, table, stats)
        logger.info("shard %d [%d, %d): %d sentences in %.1fs (%d/%d)", i, s, e, stats["n_sentences"],
                    stats["seconds"], done_count, len(todo))
        if accelerator.is_main_process:  # other processes' shards show up in the final rescan
            known[i] = stats
            write_manifest(known, False)
    accelerator.wait_for_everyone()

    # 4. the main process merges in row order
    summary_path = out / "summary.json"
    if accelerator.is_main_process:
        all_stats = shards.scan()
        try:
            aug = shards.merged()
        except MissingShardsError as err:
            raise BackTranslationError(f"after the run: {err}") from err
        merged = dataset
        for name in aug_names:
            merged = merged.add_column(name, aug.column(name).to_pylist())
        for old in out.glob("data-*-of-*.arrow"):
            old.unlink()
        merged.save_to_disk(str(out))
        merged.to_parquet(str(out / "data.parquet"))
        seconds = sum(st["seconds"] for st in all_stats)
        n_sent = sum(st["n_sentences"] for st in all_stats)
        summary = {
            "n_texts": n,
            "n_sentences": n_sent,
            "n_kept_original": sum(st["n_kept_original"] for st in all_stats),
            "n_cells_kept_original": sum(st["n_cells_kept_original"] for st in all_stats),
            "seconds": round(seconds, 3),
            "sentences_per_second": round(n_sent / seconds, 2) if seconds > 0 else None,
            "backend": ",".join(sorted({p.name for p in paraphrasers})),
            "pivot": [p.pivot for p in paraphrasers],
            "num_paraphrases": num_paraphrases,
            "columns": aug_names,
            "num_processes": world,
            "fingerprint": fingerprint,
        }
        if num_paraphrases > 1 and any(p.name == "apertium" for p in paraphrasers):
            summary["note"] = "apertium is deterministic: the paraphrase columns of an apertium pivot are identical"
        _atomic_write_json(summary_path, summary)
        write_manifest(all_stats, True)
    accelerator.wait_for_everyone()
    return json.loads(summary_path.read_text(encoding="utf-8"))
