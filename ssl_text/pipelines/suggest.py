"""`ssl-text suggest`: which texts of a pool to label next (active learning), from a finished run (warm start: its
model's predictions and embeddings) or from sentence embeddings alone (cold start: no model yet).

OUT/ holds the whole loop; give the same folder every round:
  round_<k>/suggestions.csv, .jsonl   the N texts to label, best first: pool_index, text, the strategy's score and,
                                      with a model, its predicted label and probabilities (the CSV has an empty
                                      `label` column: filled in, `ssl-text import-labels` reads it)
  round_<k>/label_studio_tasks.json   the same as Label Studio tasks, the model's labels as pre-annotations
  round_<k>/label_config.xml          a Label Studio labeling config for the classes (when they are known)
  round_<k>/stop_set.json             the model's labels for the stopping sample (below)
  rounds.jsonl                        one line per round: model, labeled set, strategy, the stopping signal
  cache/                              the pool's per-row features as Parquet shards (ssl_text/data/shards.py), keyed
                                      by the model's and the pool's fingerprints: computed once, reused by every
                                      later call on the same model and pool
A round is one (model, labeled set): a call with the same model and labels as the last round redoes that round.

Stopping signal, stabilizing predictions (Bloodgood & Vijay-Shanker 2009): each round with a model labels a fixed
seeded sample of the pool; the share of it whose label changed since the previous model, and Cohen's kappa between
the two, are recorded and printed. They suggest stopping once kappa averages >= 0.99 over 3 rounds.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import quoteattr

import numpy as np
import pyarrow as pa
import torch
from accelerate import PartialState
from sklearn.metrics import cohen_kappa_score
from transformers import AutoConfig, AutoModel, AutoTokenizer

from ssl_text.active.strategies import STRATEGIES, PoolView, Strategy, get_strategy
from ssl_text.config import ConfigError, DatasetSpec
from ssl_text.config.keys import LABELED_ROWS_FILE
from ssl_text.config.seeds import GLOBAL_SEED_BITS, derive_seed
from ssl_text.data.annotations import LabeledText, labeled_positions, load_pool, read_labeled
from ssl_text.data.batching import pad_ids
from ssl_text.data.loading import DataError, valid_unicode
from ssl_text.data.shards import Shards
from ssl_text.data.text_data import text_hash
from ssl_text.models.projection import pool as mean_pool
from ssl_text.models.resolve import resolve_model_path
from ssl_text.pipelines.predict import _load_model, load_run
from ssl_text.tasks import build_task
from ssl_text.training.inference import softmax
from ssl_text.training.lifecycle import check_launch
from ssl_text.training.run_dir import write_text_atomic

DEFAULT_ENCODER = "packaged:all-MiniLM-L6-v2"
COLD_MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
MODEL_NEEDS = frozenset({"probs", "mc_probs"})  # what only a trained model gives a strategy
MC_PASSES = 10  # forward passes with dropout on, for BALD
MC_SEED = 0
SHARD_ROWS = 2048  # pool rows per cached shard: what a stopped pass keeps, and the unit shared out to processes
CACHE, HISTORY, STOP_SET = "cache", "rounds.jsonl", "stop_set.json"
SUGGESTIONS, LABEL_STUDIO_TASKS, LABEL_CONFIG = "suggestions", "label_studio_tasks.json", "label_config.xml"
META_KEY = b"ssl_text_suggest"
STOP_SAMPLE, STOP_SEED = 1000, 0  # the fixed sample of the pool whose predictions are compared between rounds
STOP_KAPPA, STOP_WINDOW = 0.99, 3  # Bloodgood & Vijay-Shanker 2009: mean kappa of the last 3 rounds >= 0.99
LS_CHOICES, LS_TEXT = "label", "text"  # the Choices and Text tags of label_config.xml, named by the pre-annotations


@dataclass
class PoolModel:
    """The model that embeds (and, warm, classifies) the pool."""

    name: str  # as rounds.jsonl and the Label Studio predictions name it
    folder: str
    label_names: list[str] | None
    load: Callable[[], tuple[torch.nn.Module, Callable[[list[str]], list[list[int]]], int]]  # model, tokenize, pad id
    labeled: list[LabeledText]  # the texts a run trained on
    warm: bool

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the folder's files (names and bytes): a retrained model is another model."""
        digest = hashlib.sha256()
        for path in sorted(p for p in Path(self.folder).iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()


def get_checked_strategy(name: str) -> Strategy:
    try:
        return get_strategy(name)
    except ValueError:
        raise ConfigError(f"--strategy {name!r} is not a strategy; choose one of {', '.join(STRATEGIES)}.") from None


def cold_model(encoder: str, strategy: Strategy, labels: list[str] | None) -> PoolModel:
    """The sentence encoder of a cold start; refuses a strategy that needs a model's predictions."""
    if strategy.needs & MODEL_NEEDS:
        usable = ", ".join(name for name, s in STRATEGIES.items() if not s.needs & MODEL_NEEDS)
        raise ConfigError(
            f"--strategy {strategy.name} ranks texts by a model's predictions, and there is no model yet (no --run); "
            f"train one on the labels you have (`ssl-text train`) and pass --run RUN_DIR, or pick a strategy that "
            f"needs none: {usable}."
        )
    try:
        folder = resolve_model_path(encoder)
    except ValueError as err:
        raise ConfigError(f"--encoder: {err}") from None
    if not Path(folder).is_dir():
        raise ConfigError(f"--encoder {encoder!r} is not a model folder here; give a local folder or packaged:NAME.")

    def load():
        # our own loop rather than SentenceTransformer.encode: the same pass gives a classifier's logits (_forward)
        tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
        length = min(COLD_MAX_LENGTH, getattr(model.config, "max_position_embeddings", COLD_MAX_LENGTH))

        def tokenize(texts: list[str]) -> list[list[int]]:
            return tokenizer([valid_unicode(t) for t in texts], truncation=True, max_length=length)["input_ids"]

        return model, tokenize, tokenizer.pad_token_id

    return PoolModel(f"cold:{encoder}", folder, labels, load, [], warm=False)


def _token_ids(task, tokenizer, max_length: int, texts: list[str]) -> list[list[int]]:
    return task.tokenize(tokenizer, texts, max_length)["input_ids"]


def warm_model(run_dir: str, labels: list[str] | None) -> PoolModel:
    """The selected model of a finished text-classification run, with the labeled texts it trained on."""
    cfg, model_dir = load_run(run_dir)
    if build_task(cfg.task).token_level:
        raise DataError(
            f"--run {run_dir} is a `{cfg.task}` run, which labels every token; suggest ranks texts that take one label "
            "each: pass the output_dir of a text-classification run (`task: text_classification`)."
        )
    id2label = AutoConfig.from_pretrained(model_dir).id2label
    label_names = [id2label[i] for i in range(len(id2label))]
    if labels and labels != label_names:
        raise ConfigError(f"--labels {','.join(labels)} differs from the classes of --run {run_dir} "
                          f"({','.join(label_names)}); drop --labels: the run's classes are used.")
    rows = Path(run_dir) / LABELED_ROWS_FILE

    def load():
        task, tokenizer, model, _ = _load_model(cfg, model_dir)
        tokenize = functools.partial(_token_ids, task, tokenizer, cfg.data.max_length)
        return model, tokenize, tokenizer.pad_token_id

    labeled = read_labeled(rows, "--run") if rows.is_file() else []
    return PoolModel(str(run_dir), str(model_dir), label_names, load, labeled, warm=True)


# ---------------------------------------------------------------------------------------
# Pool features: computed once per model and pool, cached in shards
# ---------------------------------------------------------------------------------------


def _forward(model, ids: list[list[int]], pad_token_id: int, batch_size: int, device, passes: int = 0) -> dict:
    """Rows (token ids) through `model`, longest first: the L2-normalised mean of the encoder's last hidden states
    ("embedding", mean pooled like sentence-transformers; a hook on `model.base_model` catches them, so one pass
    gives a classifier's "logits" too). With `passes`, instead "mc_logits": that many passes with dropout on."""
    order = np.argsort([-len(x) for x in ids], kind="stable")
    hidden, out = {}, {}
    hook = model.base_model.register_forward_hook(lambda module, args, output: hidden.update(last=output[0]))
    model.train(passes > 0)
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                input_ids, mask = (t.to(device) for t in pad_ids([ids[r] for r in rows], pad_token_id))
                if passes:
                    logits = [model(input_ids=input_ids, attention_mask=mask).logits for _ in range(passes)]
                    found = {"mc_logits": torch.stack(logits, dim=1)}
                else:
                    output = model(input_ids=input_ids, attention_mask=mask)
                    embedding = mean_pool(hidden["last"], mask, "mean")
                    found = {"embedding": torch.nn.functional.normalize(embedding, dim=-1)}
                    if getattr(output, "logits", None) is not None:
                        found["logits"] = output.logits
                for name, value in found.items():
                    value = value.float().cpu().numpy().reshape(len(rows), -1)
                    out.setdefault(name, np.empty((len(ids), value.shape[1]), np.float32))[rows] = value
    finally:
        hook.remove()
        model.eval()
    return out


def cached_features(folder: Path, key: dict, num_rows: int, compute: Callable[[int, int], dict]) -> tuple[dict, int]:
    """Per-row float arrays of the pool from Parquet shards in `folder`, named by `key` (everything that changes
    them); `compute(start, end)` fills a missing shard. Under `accelerate launch` the missing shards are shared out to
    the processes and every process reads them all back. Returns (arrays, rows computed by this call)."""
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    shards = Shards(folder / fingerprint, num_rows, SHARD_ROWS, fingerprint, META_KEY)
    state = PartialState()
    missing = [i for i, stats in enumerate(shards.scan()) if stats is None]
    if state.is_main_process:
        shards.remove_partial_writes()
    state.wait_for_everyone()
    for i in missing[state.process_index :: state.num_processes]:
        arrays = compute(*shards.ranges[i])
        columns = {k: pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), a.shape[1]) for k, a in arrays.items()}
        shards.write(i, pa.table(columns), {"process": state.process_index})
    state.wait_for_everyone()
    table = shards.merged()
    arrays = {k: table[k].combine_chunks().flatten().to_numpy().reshape(num_rows, -1) for k in table.column_names}
    return arrays, sum(end - start for start, end in (shards.ranges[i] for i in missing))


def pool_features(out: Path, model: PoolModel, texts: list[str], pool_fingerprint: str, mc: bool,
                  batch_size: int) -> tuple[dict, int]:
    """The pool's "embedding" [N, D] (and warm: "logits" [N, C]; with `mc`: "mc_logits" [N, T*C]), cached under
    `out`; the model is loaded only when a shard is missing. Returns (arrays, rows computed)."""
    device = PartialState().device

    @functools.cache
    def loaded():
        net, tokenize, pad = model.load()
        return net.to(device), tokenize, pad

    def compute(start: int, end: int, passes: int = 0) -> dict:
        net, tokenize, pad = loaded()
        if passes:  # the dropout masks of a shard follow from its first row, whichever process runs it
            torch.manual_seed(derive_seed(MC_SEED, start, bits=GLOBAL_SEED_BITS))
        return _forward(net, tokenize(texts[start:end]), pad, batch_size, device, passes)

    key = {"model": model.fingerprint, "classifier": model.warm, "pool": pool_fingerprint}
    arrays, computed = cached_features(out / CACHE / "features", key, len(texts), compute)
    if mc:
        more, more_computed = cached_features(out / CACHE / "mc_dropout", {**key, "passes": MC_PASSES, "seed": MC_SEED},
                                              len(texts), functools.partial(compute, passes=MC_PASSES))
        arrays, computed = {**arrays, **more}, computed + more_computed
    return arrays, computed


# ---------------------------------------------------------------------------------------
# Rounds and the stopping signal
# ---------------------------------------------------------------------------------------


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def read_history(out: Path) -> list[dict]:
    path = out / HISTORY
    if not path.is_file():
        return []
    rounds = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rounds.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path} line {number} is not JSON; remove the line (or the file, to start the rounds "
                            "afresh), or give another --out.") from None
    return rounds


def stop_sample(num_rows: int) -> np.ndarray:
    """The fixed sample of pool rows whose predicted labels are compared between rounds."""
    return np.sort(np.random.default_rng(STOP_SEED).choice(num_rows, min(STOP_SAMPLE, num_rows), replace=False))


def stopping_signal(out: Path, earlier: list[dict], now: dict, model_fingerprint: str) -> dict:
    """The stopping sample's labels now against those of the latest earlier round with another model."""
    previous = next((r for r in reversed(earlier) if r.get("stop_set") and r["model_fingerprint"] != model_fingerprint),
                    None)
    signal = {"sample": len(now["predicted_label"]), "compared_with_round": None, "changed_share": None, "kappa": None,
              "stop": False}
    if previous is None:
        return {**signal, "message": "the first round with a model: the next one compares its predictions with these"}
    before = json.loads((out / previous["stop_set"]).read_text())
    if before["pool"] != now["pool"]:
        return {**signal, "message": f"the pool changed since round {previous['round']}: nothing to compare"}
    a, b = np.asarray(before["predicted_label"]), np.asarray(now["predicted_label"])
    changed = float(np.mean(a != b))
    kappa = 1.0 if changed == 0 else float(cohen_kappa_score(a, b))
    kappas = [r["stopping"]["kappa"] for r in earlier if (r.get("stopping") or {}).get("kappa") is not None] + [kappa]
    stop = len(kappas) >= STOP_WINDOW and float(np.mean(kappas[-STOP_WINDOW:])) >= STOP_KAPPA
    advice = (f"stable: mean kappa of the last {STOP_WINDOW} rounds >= {STOP_KAPPA}, more labels are unlikely to "
              "change the model much" if stop else
              f"stop once kappa averages >= {STOP_KAPPA} over {STOP_WINDOW} rounds (Bloodgood & Vijay-Shanker 2009)")
    message = (f"{changed:.1%} of a fixed sample of {len(b)} pool texts changed their predicted label since round "
               f"{previous['round']} (Cohen's kappa {kappa:.3f}); {advice}")
    return {**signal, "compared_with_round": previous["round"], "changed_share": round(changed, 6),
            "kappa": round(kappa, 6), "stop": stop, "message": message}


# ---------------------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------------------


def suggestion_records(rows: np.ndarray, scores: np.ndarray, texts: list[str], probs, label_names) -> list[dict]:
    records = []
    for rank, (row, score) in enumerate(zip(rows.tolist(), scores.tolist()), start=1):
        record = {"rank": rank, "pool_index": row, "score": round(score, 6), "text": texts[row]}
        if probs is not None:
            record["predicted_label"] = label_names[int(probs[row].argmax())]
            record["probabilities"] = {name: round(float(p), 6) for name, p in zip(label_names, probs[row])}
        records.append(record)
    return records


def suggestions_csv(records: list[dict], label_names) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    with_model = bool(records) and "probabilities" in records[0]
    probs = [f"p_{name}" for name in label_names] if with_model else []
    model_columns = ["predicted_label", *probs] if with_model else []
    writer.writerow(["rank", "pool_index", "score", *model_columns, "text", "label"])
    for r in records:
        model = [r["predicted_label"], *r["probabilities"].values()] if with_model else []
        writer.writerow([r["rank"], r["pool_index"], r["score"], *model, r["text"], ""])
    return out.getvalue()


def label_studio_tasks(records: list[dict], model_version: str) -> list[dict]:
    """Label Studio's task format: `data` (the text and its pool row) and, with a model, `predictions` whose choice is
    the predicted label (shown as a pre-annotation; `score` its probability, which Label Studio sorts by)."""
    tasks = []
    for r in records:
        task = {"data": {LS_TEXT: r["text"], "pool_index": r["pool_index"]}}
        if "predicted_label" in r:
            choice = {"from_name": LS_CHOICES, "to_name": LS_TEXT, "type": "choices",
                      "value": {"choices": [r["predicted_label"]]}}
            task["predictions"] = [{"model_version": model_version, "score": max(r["probabilities"].values()),
                                    "result": [choice]}]
        tasks.append(task)
    return tasks


def label_config_xml(label_names: list[str]) -> str:
    choices = "".join(f"    <Choice value={quoteattr(name)}/>\n" for name in label_names)
    return (f'<View>\n  <Text name="{LS_TEXT}" value="${LS_TEXT}"/>\n'
            f'  <Choices name="{LS_CHOICES}" toName="{LS_TEXT}" choice="single" showInline="true">\n{choices}'
            "  </Choices>\n</View>\n")


# ---------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------


def suggest(pool: DatasetSpec, out: str | Path, n: int, strategy: str, *, run_dir: str | None = None,
            labeled: str | None = None, labels: list[str] | None = None, encoder: str | None = None, seed: int = 0,
            batch_size: int = 64) -> dict | None:
    """Suggest the `n` texts of `pool` to label next and write them to a round folder of `out` (see the module
    docstring). Every input is checked before anything is written. Returns the round's record (None on the
    other processes of a launch)."""
    started, out = time.time(), Path(out)
    check_launch()  # the processes of `accelerate launch` join here (ACCELERATE_USE_CPU on CPUs)
    chosen = get_checked_strategy(strategy)
    if n < 1:
        raise ConfigError(f"--n {n}: ask for at least one text.")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder (the same one every round).")
    history = read_history(out)
    if run_dir is not None and encoder is not None:
        raise ConfigError("--encoder embeds the pool on a cold start; with --run the run's model embeds it: drop one.")
    model = warm_model(run_dir, labels) if run_dir else cold_model(encoder or DEFAULT_ENCODER, chosen, labels)

    texts = load_pool(pool)
    hashes = [text_hash(t) for t in texts]
    at = labeled_positions(model.labeled + (read_labeled(labeled) if labeled else []), hashes, "--labeled")
    label_names = model.label_names or sorted({label for label in at.values() if label is not None}) or None
    outside = sorted({label for label in at.values() if label is not None and label not in label_names})
    if outside:
        raise DataError(f"labeled texts of the pool have labels {outside}, outside the classes {label_names} (of --run "
                        "or --labels); pass the labeled file of this label set, or fix --labels.")
    seen, candidates = set(hashes[i] for i in at), []
    for i, h in enumerate(hashes):  # a text that recurs in the pool is a candidate once
        if h not in seen:
            seen.add(h)
            candidates.append(i)
    if n > len(candidates):
        raise DataError(f"--n {n} is more than the {len(candidates)} texts of the pool that are not labeled yet "
                        f"({len(texts)} rows, {len(at)} labeled, repeats counted once); lower --n or add texts to the "
                        "pool.")
    lb_rows = [i for i, label in sorted(at.items()) if label is not None]
    if not lb_rows and ("labeled" in chosen.needs or (chosen.name.startswith("balanced_") and not model.warm)):
        raise DataError(f"--strategy {chosen.name} compares the pool with labeled texts, and no text of the pool is "
                        "labeled yet; pass --labeled FILE (the file `ssl-text import-labels` writes) or a --run "
                        "trained on texts of this pool, or start with kmeans.")

    pool_fingerprint = _digest(hashes)
    features, computed = pool_features(out, model, texts, pool_fingerprint, "mc_probs" in chosen.needs, batch_size)
    if not PartialState().is_main_process:
        return None
    cand = np.asarray(candidates)
    probs = softmax(features["logits"]) if model.warm else None
    mc = features.get("mc_logits")
    view = PoolView(
        embeddings=features["embedding"][cand],
        probs=None if probs is None else probs[cand],
        mc_probs=None if mc is None else softmax(mc.reshape(len(texts), MC_PASSES, -1))[cand].transpose(1, 0, 2),
        labeled_embeddings=features["embedding"][lb_rows],
        labeled_labels=np.asarray([label_names.index(at[i]) for i in lb_rows], dtype=np.int64),
        labeled_probs=None if probs is None else probs[lb_rows],
    )
    try:
        selection = chosen.select(view, n, np.random.default_rng(seed))
    except ValueError as err:
        raise DataError(f"--strategy {chosen.name}: {err}") from err
    records = suggestion_records(cand[selection.indices], selection.scores, texts, probs, label_names)

    labeled_fingerprint = _digest([f"{i}:{label}" for i, label in sorted(at.items())])
    redo = bool(history) and (history[-1]["model_fingerprint"], history[-1]["labeled_fingerprint"]) == (
        model.fingerprint, labeled_fingerprint)
    earlier = history[:-1] if redo else history
    number = history[-1]["round"] if redo else len(history)
    folder = out / f"round_{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": f"{SUGGESTIONS}.csv", "jsonl": f"{SUGGESTIONS}.jsonl", "label_studio": LABEL_STUDIO_TASKS}
    write_text_atomic(folder / files["csv"], suggestions_csv(records, label_names))
    write_text_atomic(folder / files["jsonl"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    version = f"{Path(model.name).name}-{model.fingerprint[:8]}"
    tasks = label_studio_tasks(records, version)
    write_text_atomic(folder / LABEL_STUDIO_TASKS, json.dumps(tasks, ensure_ascii=False, indent=1))
    if label_names:
        files["label_config"] = LABEL_CONFIG
        write_text_atomic(folder / LABEL_CONFIG, label_config_xml(label_names))
    stopping = None
    if probs is not None:
        sample = stop_sample(len(texts))
        now = {"pool": pool_fingerprint, "pool_index": sample.tolist(),
               "predicted_label": [label_names[i] for i in probs[sample].argmax(axis=1)]}
        stopping = stopping_signal(out, earlier, now, model.fingerprint)
        write_text_atomic(folder / STOP_SET, json.dumps(now))
    record = {
        "round": number, "model": model.name, "model_fingerprint": model.fingerprint, "pool_size": len(texts),
        "pool_fingerprint": pool_fingerprint, "labeled": len(at), "labeled_fingerprint": labeled_fingerprint,
        "candidates": len(candidates), "strategy": chosen.name, "n": n, "seed": seed,
        "computed_rows": computed,  # 0: every feature came from the cache
        "files": {k: str(folder / v) for k, v in files.items()},
        "stop_set": str((folder / STOP_SET).relative_to(out)) if stopping is not None else None,
        "stopping": stopping, "seconds": round(time.time() - started, 2),
    }  # fmt: skip
    write_text_atomic(out / HISTORY, "".join(json.dumps(r) + "\n" for r in [*earlier, record]))
    return record

