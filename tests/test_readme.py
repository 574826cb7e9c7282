"""Every command and code block of README.md, run on tiny data: a documented command that does nothing fails here.

README.md's ```bash blocks are split into commands (comments dropped, `\\` continuations joined) and its ```python
blocks are run whole. Each command runs in a fresh folder of its own, a workspace, holding:

* the checkout's configs/, examples/ and scripts/ (links), so that README's relative paths work as written;
* stand-ins for the data the configs name outside the checkout (`write_shared_data`: `../shared/data/...` is a
  sibling of every workspace; AG News files are the shipped 1,000-row sample, FASTA and CoNLL files are tiny synthetic
  ones), and the inputs README's commands read (`INPUTS`);
* copies of the runs it reads, made by the README command that makes them (`PRODUCED_BY`), each run once.

Then the tables below make it tiny and offline: `CONFIGS` (per config: a tiny model and a few steps, appended as
dotted overrides; README's own overrides win, except the step budget), `PLACEHOLDERS` (README's `CONFIG`, `RUN`,
`your-name/...`), `NOT_RUN` (the few commands CI cannot run, each with its reason and, where one exists, the cheaper
equivalent that runs instead) and `CHECKS` (what each sub-command promises: a command passes only when it exits 0
AND left the artifacts it documents, well-formed). `ssl-text` runs in-process through `ssl_text.cli.main.main`;
scripts and `accelerate launch` run as subprocesses. Pushes go to `tests/hub_server.py`, never to the real Hub.

A README command whose program, sub-command, config or placeholder has no entry here fails with a message that names
the table to extend, so that a new command cannot go untested.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ssl_text.config import apply_overrides, read_yaml
from ssl_text.config.keys import BEST, CHECKPOINTS, METRICS_FILE
from tests.hub_server import point_hub_clients_at
from tests.toy_data import make_texts

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKED = ("configs", "examples", "scripts")  # the checkout's folders every workspace sees

# A few optimizer steps, an evaluation and a checkpoint after each (the resume case restarts from step 1).
TINY_TRAINER = ["trainer.max_steps=2", "trainer.eval_every=1", "trainer.save_every=1", "trainer.log_every=1"]
BUDGET_KEYS = ("max_steps",)  # overrides whose README value is replaced by the tiny one (others: README wins)

# config file (as README names it) -> overrides that make it tiny; `{tiny_bert}` is the conftest's random BERT.
CONFIGS: dict[str, list[str]] = {
    "configs/quickstart.yaml": ["model.name_or_path={tiny_bert}", *TINY_TRAINER, "recipe.student_steps=2",
                                "recipe.warm_start_iterations=1"],
    "configs/amp_pretrain.yaml": ["model.name_or_path=new:tiny", "trainer.lb_batch_size=8", *TINY_TRAINER],
    "configs/amp_benchmark.yaml": ["model.name_or_path=new:tiny", *TINY_TRAINER],
    "configs/active_train.yaml": ["model.name_or_path={tiny_bert}", *TINY_TRAINER],
    "configs/simclrv2_agnews.yaml": [
        "pretrain.model.name_or_path={tiny_bert}", "distill.student.num_layers=1", "report.repeats=1", "report.warmup=0",
        *(f"{stage}.{o}" for stage in ("pretrain", "finetune", "distill") for o in TINY_TRAINER),
    ],
}

# README's placeholder words -> what they stand for here. `CONFIG` depends on the sub-command (_placeholder_configs).
PLACEHOLDERS = {"RUN": "runs/simclrv2/pretrain", "BRANCH": "experiment"}
HUB_USER_PLACEHOLDER = "your-name/"  # README's Hub namespace -> the stand-in Hub's user


def _quickstart_based(**changes) -> dict:
    raw = read_yaml(ROOT / "configs" / "quickstart.yaml")
    raw.update(changes)
    return raw


def _placeholder_configs(tiny_bert: str) -> dict[str, dict]:
    """`ssl-text <sub> CONFIG`: the config each sub-command gets for README's `CONFIG` (SimCLRv2 section)."""
    steps = {"max_steps": 2, "eval_every": 1, "save_every": 1, "log_every": 1, "lb_batch_size": 8, "progress_bar": False}
    ag = read_yaml(ROOT / "configs" / "quickstart.yaml")["data"]["labeled"]
    finetune = _quickstart_based(output_dir="runs/simclrv2/finetune", algorithm={"name": "supervised"})
    finetune["model"] = {}  # `--pretrained RUN` names the encoder
    finetune["trainer"].update(steps)
    distill = _quickstart_based(output_dir="runs/simclrv2/distill", algorithm={"name": "supervised"})
    distill["model"] = {"name_or_path": tiny_bert}
    distill["trainer"].update(steps)
    distill["distill"] = {"teacher": "runs/simclrv2/finetune", "student": {"init": "alternate_layers", "num_layers": 1}}
    return {
        "pretrain": {
            "output_dir": "runs/simclrv2/pretrain",
            "model": {"name_or_path": tiny_bert},
            "data": {"unlabeled": [{**ag, "label_column": None}], "validation_fraction": 0.05, "max_length": 32},
            "pretrain": {"objective": "mlm"},
            "trainer": steps,
        },
        "finetune": finetune,
        "distill": distill,
    }


# A run directory that commands read -> the README command that makes it ("yaml: X": README's yaml block holding X,
# trained with a tiny model into that folder). The command runs once, in its own workspace; readers get a copy.
PRODUCED_BY = {
    "runs/quickstart/fixmatch": "ssl-text train configs/quickstart.yaml",
    "runs/recipe": "ssl-text recipe configs/quickstart.yaml output_dir=runs/recipe",
    "runs/benchmark/protein/amp/pretrain_seed0": "ssl-text pretrain configs/amp_pretrain.yaml trainer.max_steps=1200",
    "runs/simclrv2/pretrain": "ssl-text pretrain CONFIG pretrain.objective=contrastive",
    "runs/simclrv2/finetune": "ssl-text finetune CONFIG --pretrained RUN model.projection_head_layers=1",
    "runs/ner": "yaml: task: ner",
    "runs/active/labels.jsonl": "ssl-text import-labels export.json --pool configs/active_pool.yaml "
                                "--labels World,Sports,Business,Sci/Tech --out runs/active/labels.jsonl",
    "runs/active/round_1": "ssl-text train configs/active_train.yaml",
}
# A config that reads what a README command makes (PRODUCED_BY) -> those paths.
CONFIG_READS = {"configs/active_train.yaml": ["runs/active/labels.jsonl"]}
WRITTEN_BY_FLAGS = ("--out", "--output")  # the value after these is written, not read

# Commands CI does not run: (pattern on the command, why, the cheaper equivalent that runs instead or None).
NOT_RUN = [
    (r"^python3 -m venv \.venv && .* && python scripts/quickstart\.py$",
     "creates a virtual environment and installs from the package index (CI's own set-up, .ci/run, does both); "
     "the quickstart it ends with runs with tiny settings", "python scripts/quickstart.py"),
    (r"^python3 -m venv \.venv && .*python -m pytest",
     "creates a virtual environment and runs this test suite, which is where this test runs", None),
    (r"^hf auth login$",
     "logs in to the real Hub; the push commands run against tests/hub_server.py with HF_TOKEN set instead", None),
]

# `python scripts/X.py`: the config it runs (None: its first argument), the check of what it promises and
# overrides that shrink its data further (SetFit's cost grows with the labeled texts, prediction with the test set).
SCRIPTS = {
    "quickstart": ("configs/quickstart.yaml", "quickstart", ["recipe.warm_start_iterations=1", "data.test.limit=40"]),
    "peers": (None, "peers", ["data.sampling.num_per_class=2", "data.test.limit=200"]),
}
# `accelerate launch scripts/X.py ...`: the `ssl-text` sub-command it is the entry point of.
LAUNCHED = {"train": "train", "pretrain": "pretrain", "distill": "distill", "augment": "augment"}
CONFIG_SUBS = ("train", "recipe", "finetune", "pretrain", "distill", "self-train", "pipeline")

SAMPLE_TEXTS = ["Stocks rose as the central bank held rates.", "The striker scored twice in the final."]
LONG_TEXT = " ".join(["the market report says the team won"] * 200)  # longer than any model's position limit here


# ---------------------------------------------------------------------------------------
# Reading README.md
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    line: int  # README.md line of the command or of the block's first line
    kind: str  # "bash" or the block's language
    text: str  # the command (words joined by spaces, comments dropped) or the block
    words: list[str] = field(default_factory=list)  # bash: the command's words, as the shell splits them

    @property
    def id(self) -> str:
        head = self.text.split("\n")[0] if self.kind != "bash" else self.text
        return f"L{self.line}-{self.kind}-" + re.sub(r"[^A-Za-z0-9_.=/-]+", "_", head)[:60]


def readme_blocks(text: str) -> list[Case]:
    """The fenced blocks of a markdown text: (first line, language, contents)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md:{i + 1}: the ```{fence.group(1)} block is never closed"
        blocks.append(Case(i + 2, fence.group(1), "\n".join(lines[i + 1 : end])))
        i = end + 1
    return blocks


def readme_cases(text: str) -> list[Case]:
    """One case per command of every bash block, one per python block."""
    cases = []
    for block in readme_blocks(text):
        if block.kind == "python":
            cases.append(block)
        elif block.kind in ("bash", "sh", "shell", "console"):
            pending, first = "", None
            for offset, line in enumerate(block.text.split("\n")):
                first = block.line + offset if first is None else first
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                words = shlex.split(pending + line, comments=True)
                if words:
                    cases.append(Case(first, "bash", " ".join(words), words))
                pending, first = "", None
    return cases


README_TEXT = README.read_text(encoding="utf-8")
CASES = readme_cases(README_TEXT)


# ---------------------------------------------------------------------------------------
# Planning: what runs for a README command, after the substitutions
# ---------------------------------------------------------------------------------------


def readme_command(text: str, why: str) -> Case:
    """README's command `text` (comments dropped), which this file names (`why`)."""
    case = next((c for c in CASES if c.kind == "bash" and c.text == text), None)
    if case is None:
        pytest.fail(f"README.md no longer has `{text}`, {why}: update tests/test_readme.py")
    return case


class Unmapped(Exception):
    """A README command that the tables of this file do not cover."""


@dataclass
class Plan:
    case: Case
    runner: str  # "cli": ssl_text.cli.main.main in-process; "subprocess": the argv below
    sub: str  # the sub-command whose promise CHECKS verifies
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    config: str | None = None  # workspace-relative
    overrides: list[str] = field(default_factory=list)
    placeholder_config: str | None = None  # the sub-command whose PLACEHOLDER_CONFIGS entry is written as `config`
    processes: int = 1
    adapted: list[str] = field(default_factory=list)  # what was changed, in words (shown when the case fails)

    @property
    def reads(self) -> list[str]:
        written = {value for flag, value in zip(self.argv, self.argv[1:]) if flag in WRITTEN_BY_FLAGS}
        tokens = [t for t in [*self.argv, *self.overrides] if not t.startswith("output_dir=") and t not in written]
        tokens += CONFIG_READS.get(self.config, [])
        if self.placeholder_config == "distill":
            tokens.append("runs/simclrv2/finetune")  # the teacher that config names
        found = []
        for run in PRODUCED_BY:
            if any(t == run or t.startswith(run + "/") or t.endswith("=" + run) or f"={run}/" in t for t in tokens):
                found.append(run)
        return found


def adapt_overrides(given: list[str], tiny: list[str]) -> tuple[list[str], list[str]]:
    """README's overrides with the step budget replaced by the tiny one, then the tiny ones README does not set."""
    tiny_by_key = {item.split("=", 1)[0]: item for item in tiny}
    out, notes = [], []
    for item in given:
        key = item.split("=", 1)[0]
        if key in tiny_by_key and key.rsplit(".", 1)[-1] in BUDGET_KEYS:
            out.append(tiny_by_key[key])
            notes.append(f"{item} -> {tiny_by_key[key]}")
        else:
            out.append(item)
        tiny_by_key.pop(key, None)
    return out + list(tiny_by_key.values()), notes


def _split_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    rest, overrides = [], []
    for item in args:
        (overrides if "=" in item and not item.startswith("-") else rest).append(item)
    return rest, overrides


def _substitute(token: str) -> str:
    if "=" not in token:
        token = token.strip("[]")  # README's optional flags: [--private] [--revision BRANCH]
    token = PLACEHOLDERS.get(token, token)
    if token.startswith(HUB_USER_PLACEHOLDER):
        token = "tester/" + token[len(HUB_USER_PLACEHOLDER) :]
    return token


@dataclass
class Tiny:
    """The tiny stand-ins a plan substitutes: the random BERT folder, a random Marian pair, the GPUs at hand."""

    bert: str = "{tiny_bert}"
    marian: Callable[[], tuple[str, str]] = lambda: ("{forward}", "{backward}")  # built when a command needs it
    gpus: int = 0


def plan(case: Case, tiny: Tiny) -> Plan | str:
    """The plan for a README command, or the reason it is not run. Raises Unmapped for a command no table covers."""
    where = f"README.md:{case.line} `{case.text}`"
    tokens, adapted = list(case.words), []
    for pattern, reason, instead in NOT_RUN:
        if re.search(pattern, case.text):
            if instead is None:
                return reason
            tokens, adapted = shlex.split(instead), [f"runs `{instead}` instead: {reason}"]
    env = {}
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    if not tokens:
        raise Unmapped(f"{where}: no command to run.")
    program, args = tokens[0], tokens[1:]
    launcher, script, processes = None, None, 1
    if program == "ssl-text" and args:
        sub, argv = args[0], list(args)
    elif program in ("python", "python3") and args and args[0].startswith("scripts/"):
        name = Path(args[0]).stem
        if name not in SCRIPTS:
            raise Unmapped(f"{where}: add scripts/{name}.py to SCRIPTS in tests/test_readme.py (its config and check).")
        config, sub, smaller = SCRIPTS[name]
        rest, given = _split_overrides(args[1:])
        config = config or next((a for a in rest if a.endswith((".yaml", ".yml"))), None)
        if config not in CONFIGS:
            raise Unmapped(f"{where}: add {config} to CONFIGS in tests/test_readme.py (overrides that make it tiny).")
        overrides, notes = adapt_overrides(given, [o.format(tiny_bert=tiny.bert) for o in [*CONFIGS[config], *smaller]])
        return Plan(case, "subprocess", sub, [sys.executable, *args[:1], *rest, *overrides], env, config, overrides,
                    adapted=adapted + notes)
    elif program == "accelerate" and args[:1] == ["launch"]:
        at = next((i for i, a in enumerate(args) if a.endswith(".py")), None)
        if at is None or Path(args[at]).stem not in LAUNCHED:
            raise Unmapped(f"{where}: add the launched script to LAUNCHED in tests/test_readme.py.")
        script, sub = args[at], LAUNCHED[Path(args[at]).stem]
        launcher, env, processes, notes = adapt_launcher(args[1:at], env, tiny.gpus)
        adapted += notes
        argv = [sub, *args[at + 1 :]]
    else:
        raise Unmapped(
            f"{where}: tests/test_readme.py has no rule for `{program}`; add one (and a check in CHECKS), "
            "or list the command in NOT_RUN with the reason CI cannot run it."
        )
    if sub not in CHECKS:
        raise Unmapped(f"{where}: add a check for `ssl-text {sub}` to CHECKS in tests/test_readme.py (what it promises).")

    config, overrides, placeholder = None, [], None
    argv = [_substitute(a) for a in argv]
    if sub in CONFIG_SUBS:
        at = 2 if sub == "pipeline" else 1
        rest, given = _split_overrides(argv[at:])
        if not rest:
            raise Unmapped(f"{where}: no config file given.")
        if rest[0] == "CONFIG":
            if sub not in ("pretrain", "finetune", "distill"):
                raise Unmapped(f"{where}: README's `CONFIG` for `ssl-text {sub}`: add one to _placeholder_configs.")
            placeholder, config, tiny_overrides = sub, f"readme_{sub}.yaml", []
        elif rest[0] in CONFIGS:
            config, tiny_overrides = rest[0], [o.format(tiny_bert=tiny.bert) for o in CONFIGS[rest[0]]]
        else:
            raise Unmapped(f"{where}: add {rest[0]} to CONFIGS in tests/test_readme.py (overrides that make it tiny).")
        overrides, notes = adapt_overrides(given, tiny_overrides)
        adapted += notes
        argv = [*argv[:at], config, *rest[1:], *overrides]
    if sub == "augment":
        forward, backward = tiny.marian()
        tiny_marian = ["--forward-model", forward, "--backward-model", backward, "--max-new-tokens", "8"]
        argv += tiny_marian
        adapted.append("tiny random Marian models: " + " ".join(tiny_marian))
    if sub == "suggest" and "--run" not in argv:
        argv += ["--encoder", tiny.bert]
        adapted.append("the tiny random BERT as the cold start's sentence encoder")
    if launcher is None:
        return Plan(case, "cli", sub, argv, env, config, overrides, placeholder, processes, adapted)
    argv = [sys.executable, "-m", "accelerate.commands.launch", *launcher, script, *argv[1:]]
    return Plan(case, "subprocess", sub, argv, env, config, overrides, placeholder, processes, adapted)


def adapt_launcher(launcher: list[str], env: dict, gpus: int) -> tuple[list[str], dict, int, list[str]]:
    """`accelerate launch` options for this machine: a GPU-only launch (more processes than GPUs, no
    ACCELERATE_USE_CPU) runs as one CPU process; several CPU processes get a free port."""
    launcher, env, notes = list(launcher), dict(env), []
    processes = 1
    if "--num_processes" in launcher:
        processes = int(launcher[launcher.index("--num_processes") + 1])
    elif "--config_file" in launcher:
        processes = int(read_yaml(ROOT / launcher[launcher.index("--config_file") + 1]).get("num_processes", 1))
    on_cpu = env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if processes > 1 and not on_cpu and gpus < processes:
        env["ACCELERATE_USE_CPU"] = "true"
        launcher = [a for a in launcher if a != "--multi_gpu"]
        if "--num_processes" in launcher:
            launcher[launcher.index("--num_processes") + 1] = "1"
        else:
            launcher += ["--num_processes", "1"]
        notes.append(f"needs {processes} GPUs: runs as one CPU process (ACCELERATE_USE_CPU=true, --num_processes 1); "
                     "README's CPU launches run two processes")
        processes = 1
    if processes > 1:
        launcher += ["--main_process_port", str(free_port())]
    return launcher, env, processes, notes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# What each sub-command promises
# ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    plan: Plan
    ws: Path  # the workspace it ran in
    stdout: str
    output_dir: Path | None  # the config's output_dir, in the workspace
    hub: object = None  # the stand-in Hub (tests/hub_server.py)


def _metrics(run_dir: Path) -> dict:
    path = run_dir / METRICS_FILE
    assert path.is_file(), f"{path} was not written"
    return json.loads(path.read_text())


def check_train(o: Outcome) -> None:
    metrics = _metrics(o.output_dir)
    assert metrics.get("test") and isinstance(next(iter(metrics["test"].values())), float), metrics.get("test")
    assert (o.output_dir / BEST / "config.json").is_file(), f"{o.output_dir / BEST} holds no model"
    assert metrics["hardware"].startswith(f"{o.plan.processes} x"), (o.plan.processes, metrics["hardware"])
    if "--resume" in o.plan.argv:
        assert (o.output_dir / CHECKPOINTS / "step_0000002").is_dir(), "the resumed run did not reach its last step"


def check_recipe(o: Outcome) -> None:
    summary = json.loads((o.output_dir / "recipe.json").read_text())
    assert set(summary["seconds"]) == {"warm_start", "pool", "student"}, summary["seconds"]
    assert (o.output_dir / "warm_start" / "modules.json").is_file() and summary["pool"]["kept"] > 0
    metrics = _metrics(o.output_dir / "student")
    assert metrics["test"] == summary["student"]["test"] and (o.output_dir / "student" / BEST / "config.json").is_file()


def check_pretrain(o: Outcome) -> None:
    from ssl_text.pipelines.pretrain import ENCODER

    _metrics(o.output_dir)
    assert (o.output_dir / ENCODER / "config.json").is_file(), f"{o.output_dir / ENCODER} holds no encoder"


def check_distill(o: Outcome) -> None:
    from ssl_text.pipelines.distill import MANIFEST, TEACHER_TARGETS

    check_train(o)
    assert _metrics(o.output_dir)["algorithm"] == "distill"
    assert (o.output_dir / TEACHER_TARGETS / MANIFEST).is_file(), "no teacher targets were cached"


def check_pipeline(o: Outcome) -> None:
    from ssl_text.pipelines.simclrv2 import REPORT_MD, STAGES

    assert (o.output_dir / REPORT_MD).read_text().strip(), "empty report"
    for stage in STAGES:
        _metrics(o.output_dir / stage)


def check_self_train(o: Outcome) -> None:
    from ssl_text.pipelines.self_training import ROUNDS_FILE

    assert json.loads((o.output_dir / ROUNDS_FILE).read_text()), "no rounds recorded"


def check_evaluate(o: Outcome) -> None:
    scores = json.loads(o.stdout)
    assert isinstance(scores.get("accuracy"), float) and 0.0 <= scores["accuracy"] <= 1.0, scores


def _label_names(run_dir: Path) -> set[str]:
    return set(json.loads((run_dir / BEST / "config.json").read_text())["id2label"].values())


def check_predict(o: Outcome) -> None:
    argv = o.plan.argv
    given = (o.ws / argv[argv.index("--input") + 1]).read_text().splitlines()
    out = o.stdout if "--output" not in argv else (o.ws / argv[argv.index("--output") + 1]).read_text()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["text"] for r in records] == [t for t in given if t.strip()], "one record per input text, in order"
    names = _label_names(o.ws / argv[1])
    for r in records:
        assert r["label"] in names and abs(sum(r["probabilities"].values()) - 1.0) < 1e-4, r


def check_push(o: Outcome) -> None:
    argv, hub = o.plan.argv, o.hub
    revision = argv[argv.index("--revision") + 1] if "--revision" in argv else "main"
    files = hub.files(argv[2], revision)
    assert {"model.safetensors", "config.json", "README.md", METRICS_FILE} <= set(files), sorted(files)
    assert hub.repos[("model", argv[2])].private == ("--private" in argv)


def check_push_dataset(o: Outcome) -> None:
    argv, hub = o.plan.argv, o.hub
    files = hub.files(argv[2], repo_type="dataset")
    assert "README.md" in files and any(f.startswith("data/") and f.endswith(".parquet") for f in files), sorted(files)
    assert hub.repos[("dataset", argv[2])].private == ("--private" in argv)


def check_augment(o: Outcome) -> None:
    import datasets

    argv = o.plan.argv
    out = o.ws / argv[argv.index("--out") + 1]
    source = datasets.load_dataset("csv", data_files=str(o.ws / argv[argv.index("--data") + 1]), split="train")
    written = datasets.load_from_disk(str(out))
    assert (out / "data.parquet").is_file() and len(written) == len(source), (len(written), len(source))
    assert all(isinstance(t, str) for t in written["aug_0"])


def check_quickstart(o: Outcome) -> None:
    summary = json.loads((o.ws / "runs" / "quickstart" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and set(summary["test_accuracy"]) == {"supervised", "recipe"}, summary
    for arm, folder in (("supervised", ""), ("recipe", "student")):
        for seed in (0, 1, 2):
            metrics = _metrics(o.ws / "runs" / "quickstart" / f"seed_{seed}" / arm / folder)
            assert metrics["test_last_step"]["accuracy"] == summary["test_accuracy"][arm][seed], (arm, seed)
        assert re.search(rf"^{arm}(\s+\d\.\d{{3}}){{4}}$", o.stdout, re.M), f"no result line for {arm}"
        assert all(minutes > 0 for minutes in summary["cpu_minutes"][arm]), summary["cpu_minutes"]
    assert 0 < summary["wall_minutes_total"] and "minutes wall; the runs used" in o.stdout
    run_config = yaml.safe_load((o.ws / "runs" / "quickstart" / "seed_0" / "supervised" / "config.yaml").read_text())
    assert run_config["trainer"]["mixed_precision"] == summary["mixed_precision"] in ("bf16", "auto"), summary


def check_card(o: Outcome) -> None:
    assert o.stdout.startswith("---\n"), o.stdout[:200]
    _, front, body = o.stdout.split("---", 2)
    meta = yaml.safe_load(front)
    assert meta.get("library_name") == "transformers" and meta.get("model-index"), meta
    assert _metrics(o.ws / o.plan.argv[1])["algorithm"] in body, "the card does not name the run's algorithm"


def check_peers(o: Outcome) -> None:
    argv = o.plan.argv
    seeds = argv[argv.index("--seeds") + 1].split(",") if "--seeds" in argv else ["0", "1", "2"]
    out = argv[argv.index("--out") + 1] if "--out" in argv else f"runs/peers_{Path(o.plan.config).stem}.json"
    record = json.loads((o.ws / out).read_text())
    assert sorted(record["per_seed"]) == sorted(seeds), record["per_seed"].keys()
    for seed, scores in record["per_seed"].items():
        assert set(scores) == set(record["methods"]) and all(isinstance(s["accuracy"], float) for s in scores.values()), seed
        assert record["drawn"][seed]["num_labeled"] > 0


def check_suggest(o: Outcome) -> None:
    argv = o.plan.argv
    record = json.loads(o.stdout)
    rounds = [json.loads(line) for line in (o.ws / argv[argv.index("--out") + 1] / "rounds.jsonl").read_text().splitlines()]
    assert rounds[-1]["round"] == record["round"], rounds
    n = int(argv[argv.index("--n") + 1])
    suggested = [json.loads(line) for line in (o.ws / record["files"]["jsonl"]).read_text().splitlines()]
    tasks = json.loads((o.ws / record["files"]["label_studio"]).read_text())
    assert len({r["pool_index"] for r in suggested}) == n, suggested
    assert [t["data"]["pool_index"] for t in tasks] == [r["pool_index"] for r in suggested]
    if "--run" in argv:
        names = _label_names(o.ws / argv[argv.index("--run") + 1])
        assert all(t["predictions"][0]["result"][0]["value"]["choices"][0] in names for t in tasks), tasks[0]


def check_import_labels(o: Outcome) -> None:
    argv = o.plan.argv
    rows = [json.loads(line) for line in (o.ws / argv[argv.index("--out") + 1]).read_text().splitlines()]
    assert rows and json.loads(o.stdout)["labeled"] == len(rows), rows
    assert {r["label"] for r in rows} <= set(argv[argv.index("--labels") + 1].split(",")), rows


CHECKS = {
    "train": check_train, "recipe": check_recipe, "finetune": check_train, "pretrain": check_pretrain, "distill": check_distill,
    "pipeline": check_pipeline, "self-train": check_self_train, "evaluate": check_evaluate, "predict": check_predict,
    "push": check_push, "push-dataset": check_push_dataset, "augment": check_augment, "quickstart": check_quickstart,
    "card": check_card, "peers": check_peers, "suggest": check_suggest, "import-labels": check_import_labels,
}


# ---------------------------------------------------------------------------------------
# Workspaces: the data the configs name, the inputs README's commands read
# ---------------------------------------------------------------------------------------


def write_shared_data(data: Path) -> None:
    """Stand-ins for `../shared/data/...` (the benchmark data next to a checkout, never shipped)."""
    from tests.test_protein import make_peptides, write_fasta
    from tests.toy_ner import make_sentences, write_conll

    ag = ROOT / "examples" / "data" / "ag_news"  # the same header-less AG News format, 1,000 rows
    (data / "ag_news").mkdir(parents=True)
    shutil.copy(ag / "train.csv", data / "ag_news" / "train_sample5000.csv")
    shutil.copy(ag / "test.csv", data / "ag_news" / "test.csv")
    (data / "amp_veltri2018").mkdir()
    for split, n, seed in (("tr", 48, 1), ("eval", 8, 2), ("te", 8, 3)):
        for kind, prefix in (("amp", "AMP"), ("decoy", "DECOY")):
            write_fasta(data / "amp_veltri2018" / f"{prefix}.{split}.fa", make_peptides(n, kind, seed), prefix[:2])
    (data / "deeploc").mkdir()
    write_fasta(data / "deeploc" / "tiny.fasta", make_peptides(30, "decoy", 4), "DL")
    (data / "conll2003").mkdir()
    for split, n, seed in (("train", 200, 1), ("valid", 40, 2), ("test", 40, 3)):
        write_conll(data / "conll2003" / f"{split}.txt", make_sentences(n, seed))


def _write_texts_csv(path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *[[text] for _, text in make_texts(6, seed=5)]])


def _write_back_translated(path: Path) -> None:
    import datasets

    rows = make_texts(6, seed=6)
    datasets.Dataset.from_dict(
        {"text": [t for _, t in rows], "label": [y for y, _ in rows], "aug_0": [t.upper() for _, t in rows]}
    ).save_to_disk(str(path))


@functools.cache
def _label_studio_export() -> str:
    """A Label Studio JSON export of README's AG News pool (configs/active_pool.yaml): the first 3 texts of each class
    annotated with their true labels, as Label Studio exports annotated tasks."""
    from ssl_text.data.annotations import load_pool, pool_spec

    spec = read_yaml(ROOT / "configs" / "active_pool.yaml")
    texts = load_pool(pool_spec(json.dumps({**spec, "path": str(ROOT / spec["path"])})))
    names = read_yaml(ROOT / "configs" / "quickstart.yaml")["data"]["label_map"]
    with open(ROOT / spec["path"], newline="", encoding="utf-8") as f:
        labels = [names[int(row[0])] for row in csv.reader(f)]
    rows = [i for name in names.values() for i in [j for j, label in enumerate(labels) if label == name][:3]]
    return json.dumps([
        {"id": n, "data": {"text": texts[i], "pool_index": i}, "annotations": [
            {"id": n, "was_cancelled": False, "result": [{"type": "choices", "from_name": "label", "to_name": "text",
                                                          "value": {"choices": [labels[i]]}}]}]}
        for n, i in enumerate(rows, start=1)
    ])  # fmt: skip


# The files README's commands read, made in every workspace: path -> writer.
INPUTS = {
    "texts.txt": lambda path: path.write_text("\n".join(SAMPLE_TEXTS) + "\n", encoding="utf-8"),
    "texts.csv": _write_texts_csv,
    "runs/agnews_bt": _write_back_translated,  # a back-translated dataset (save_to_disk), as `ssl-text push-dataset` reads
    "runs/benchmark/agnews/validation.csv":  # scripts/benchmark.py writes it for the AG News configs
        lambda path: shutil.copy(ROOT / "examples" / "data" / "ag_news" / "validation.csv", path),
    "export.json": lambda path: path.write_text(_label_studio_export(), encoding="utf-8"),  # README's Label Studio export
}


@contextlib.contextmanager
def working_directory(path: Path):
    """`contextlib.chdir` of Python 3.11, for 3.10."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def hub_session(hub, home: Path):
    """huggingface_hub pointed at the stand-in Hub (environment and import-time constants), as tests/test_hub.py does."""
    with pytest.MonkeyPatch.context() as mp:
        point_hub_clients_at(hub, home, mp)
        yield


class Harness:
    """Runs README cases in workspaces under `root`; a case that makes a run (PRODUCED_BY) runs once."""

    def __init__(self, root: Path, tiny_bert: str, hub):
        import torch

        self.root, self.hub = root, hub
        self.tiny = Tiny(bert=tiny_bert, marian=self._tiny_marian, gpus=torch.cuda.device_count())
        self._marian: tuple[str, str] | None = None
        self.done: dict[tuple, Outcome | BaseException] = {}
        write_shared_data(root / "shared" / "data")

    def workspace(self, name: str) -> Path:
        ws = self.root / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        if ws.exists():
            shutil.rmtree(ws)
        ws.mkdir()
        for folder in LINKED:
            (ws / folder).symlink_to(ROOT / folder)
        for path, write in INPUTS.items():
            (ws / path).parent.mkdir(parents=True, exist_ok=True)
            write(ws / path)
        return ws

    def run(self, case: Case, memo: bool = True) -> Outcome:
        key = (case.line, case.kind, case.text)
        if memo and key in self.done:
            if isinstance(self.done[key], BaseException):
                pytest.fail(f"README.md:{case.line}, which this case needs, failed: {self.done[key]}")
            return self.done[key]
        try:
            outcome = self._run_python(case) if case.kind == "python" else self._run_command(case, memo)
        except (Exception, pytest.fail.Exception) as err:
            if memo:
                self.done[key] = err
            raise
        if memo:
            self.done[key] = outcome
        return outcome

    def produce(self, run: str) -> Outcome:
        """The outcome of the README command that makes `run` (PRODUCED_BY)."""
        source = PRODUCED_BY[run]
        if source.startswith("yaml: "):
            block = next((b for b in readme_blocks(README_TEXT) if b.kind == "yaml" and source[6:] in b.text), None)
            if block is None:
                pytest.fail(f"README.md has no yaml block with `{source[6:]}`, which makes {run}: update PRODUCED_BY")
            return self.run(Case(block.line, "yaml", block.text))
        return self.run(readme_command(source, f"which makes {run}"))

    def copy_run(self, run: str, ws: Path) -> Path:
        produced = self.produce(run)
        (ws / run).parent.mkdir(parents=True, exist_ok=True)
        if (produced.ws / run).is_file():
            shutil.copy(produced.ws / run, ws / run)
        else:
            shutil.copytree(produced.ws / run, ws / run, symlinks=True)
        return ws / run

    def _run_command(self, case: Case, memo: bool) -> Outcome:
        if case.kind == "yaml":  # a README config block that a run of PRODUCED_BY comes from
            run = next(r for r, source in PRODUCED_BY.items() if source.startswith("yaml: ") and source[6:] in case.text)
            argv = ["train", "readme_block.yaml", f"output_dir={run}", f"model.name_or_path={self.tiny.bert}", *TINY_TRAINER]
            p = Plan(case, "cli", "train", argv, config="readme_block.yaml", overrides=argv[2:],
                     adapted=["README's config block, trained with a tiny model"])
        else:
            p = plan(case, self.tiny)
            if isinstance(p, str):
                pytest.skip(f"not run in CI: {p}")
        ws = self.workspace(case.id if memo else case.id + "-again")
        if case.kind == "yaml":
            (ws / p.config).write_text(case.text, encoding="utf-8")
        if p.placeholder_config:
            (ws / p.config).write_text(yaml.safe_dump(_placeholder_configs(self.tiny.bert)[p.placeholder_config]))
        for run in p.reads:
            self.copy_run(run, ws)
        output_dir = None
        if p.config:
            output_dir = ws / apply_overrides(read_yaml(ws / p.config), list(p.overrides))["output_dir"]
        if "--resume" in p.argv:
            self._stopped_run(case, output_dir, ws)
        stdout = self.execute(p, ws)
        outcome = Outcome(p, ws, stdout, output_dir, self.hub)
        try:
            CHECKS[p.sub](outcome)
        except AssertionError as err:
            raise AssertionError(f"{describe(p)}\nexited 0 but did not do its job: {err}") from None
        return outcome

    def _tiny_marian(self) -> tuple[str, str]:
        if self._marian is None:
            pytest.importorskip("sentencepiece", reason="pip install sentencepiece (builds the tiny Marian tokenizer)")
            from ssl_text.augment.testing import build_tiny_marian_pair

            self._marian = build_tiny_marian_pair(self.root / "tiny_marian")
        return self._marian

    def _stopped_run(self, case: Case, output_dir: Path, ws: Path) -> None:
        """`--resume` continues a stopped run: the run that README makes there, cut back to its first checkpoint."""
        from tests.stopped_run import stopped_copy

        run = output_dir.relative_to(ws).as_posix()
        if run not in PRODUCED_BY:
            raise Unmapped(f"README.md:{case.line} resumes {run}: add the command that makes it to PRODUCED_BY.")
        produced = self.produce(run)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        stopped_copy(produced.ws / run, output_dir, step=1)

    def execute(self, p: Plan, ws: Path) -> str:
        if p.runner == "subprocess":
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                   "HF_DATASETS_OFFLINE": "1", **p.env}
            proc = subprocess.run(p.argv, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{describe(p)}\nexit {proc.returncode}:\n{proc.stderr[-3000:]}"
            return proc.stdout
        from accelerate.state import AcceleratorState

        from ssl_text.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        session = hub_session(self.hub, self.root / "hf_home") if p.sub in ("push", "push-dataset") else contextlib.nullcontext()
        with pytest.MonkeyPatch.context() as mp, session, working_directory(ws):
            for key, value in p.env.items():
                mp.setenv(key, value)
            # as in a fresh process: Accelerate keeps one state per process (e.g. its mixed precision)
            AcceleratorState._reset_state(reset_partial_state=True)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    rc = main(list(p.argv))
            finally:
                AcceleratorState._reset_state(reset_partial_state=True)
        assert rc == 0, f"{describe(p)}\nexit {rc}:\n{err.getvalue()[-3000:]}"
        return out.getvalue()

    def _run_python(self, case: Case) -> Outcome:
        from transformers import Pipeline

        ws = self.workspace(case.id)
        for run in PRODUCED_BY:
            if re.search(rf"[\"']{re.escape(run)}(/[^\"']*)?[\"']", case.text):
                self.copy_run(run, ws)
        namespace: dict = {"__name__": "__readme__"}
        with working_directory(ws):
            exec(compile(case.text, f"README.md:{case.line}", "exec"), namespace)
            pipelines = [v for v in namespace.values() if isinstance(v, Pipeline)]
            assert pipelines, (f"README.md:{case.line}: the block makes no `pipeline`; add a check for what it does "
                               "to tests/test_readme.py")
            for pipe in pipelines:
                check_pipeline_object(pipe)
        return Outcome(Plan(case, "python", "python", []), ws, "", None)


def check_pipeline_object(pipe) -> None:
    """A README `pipeline(...)` answers texts with the labels of its model."""
    names = set(pipe.model.config.id2label.values())
    if pipe.task == "text-classification":
        for prediction in pipe([*SAMPLE_TEXTS, LONG_TEXT]):  # README: a text beyond the position limit is cut
            assert prediction["label"] in names and 0.0 <= prediction["score"] <= 1.0, prediction
    elif pipe.task == "token-classification":
        spans = pipe("the president of the bank met the minister in space")
        types = {name.split("-", 1)[-1] for name in names}
        assert isinstance(spans, list) and all(s["entity_group"] in types for s in spans), spans
    else:
        raise AssertionError(f"a `{pipe.task}` pipeline: add what it should answer to check_pipeline_object")


def describe(p: Plan) -> str:
    ran = shlex.join(p.argv if p.runner != "cli" else ["ssl-text", *p.argv])
    notes = "".join(f"\n  ({note})" for note in p.adapted)
    return f"README.md:{p.case.line} `{p.case.text}`\nran: {ran}{notes}"


@pytest.fixture(scope="module")
def harness(tiny_bert_dir, tmp_path_factory):
    from tests.hub_server import FakeHub

    hub = FakeHub(max_requests=1000).start()
    try:
        yield Harness(tmp_path_factory.mktemp("readme"), tiny_bert_dir, hub)
    finally:
        hub.stop()


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------


def test_every_readme_command_runs_here_or_says_why():
    """Fast: every README command maps to a rule (a new one without a mapping fails here, naming the table)."""
    problems = []
    for case in CASES:
        if case.kind == "bash":
            try:
                plan(case, Tiny())
            except Unmapped as err:
                problems.append(str(err))
    assert not problems, "\n".join(problems)
    assert sum(c.kind == "bash" for c in CASES) >= 20 and sum(c.kind == "python" for c in CASES) >= 2, "README not parsed"


def test_a_command_without_a_mapping_fails_with_what_to_add():
    cases = readme_cases("```bash\nssl-text explain runs/x   # a new sub-command\nssl-text train configs/new.yaml \\\n"
                         "    trainer.max_steps=9\nmake all\n```\n")
    assert [c.text for c in cases] == ["ssl-text explain runs/x", "ssl-text train configs/new.yaml trainer.max_steps=9",
                                       "make all"]
    assert [c.line for c in cases] == [2, 3, 5]
    messages = []
    for case in cases:
        with pytest.raises(Unmapped) as err:
            plan(case, Tiny())
        messages.append(str(err.value))
    assert "add a check for `ssl-text explain` to CHECKS" in messages[0]
    assert "add configs/new.yaml to CONFIGS" in messages[1]
    assert "no rule for `make`" in messages[2] and "NOT_RUN" in messages[2]


def test_readme_overrides_keep_their_values_but_not_their_budget():
    (case,) = readme_cases("```bash\nssl-text train configs/quickstart.yaml algorithm.tau=0.9 trainer.max_steps=400\n```\n")
    p = plan(case, Tiny(bert="/tiny"))
    assert p.overrides[:2] == ["algorithm.tau=0.9", "trainer.max_steps=2"]
    assert "model.name_or_path=/tiny" in p.overrides and p.overrides.count("trainer.max_steps=2") == 1


def test_readme_yaml_blocks_parse():
    for block in readme_blocks(README_TEXT):
        if block.kind == "yaml":
            assert isinstance(yaml.safe_load(block.text), dict), f"README.md:{block.line}"


def test_a_command_that_exits_0_without_doing_its_job_fails(harness, monkeypatch):
    """`ssl-text train` made a no-op that returns no metrics: the README case must fail, not pass."""
    import ssl_text.pipelines.train as train_module

    monkeypatch.setattr(train_module, "train", lambda cfg, **kwargs: {})
    case = readme_command(PRODUCED_BY["runs/quickstart/fixmatch"], "which this test makes a no-op of")
    with pytest.raises(AssertionError, match="exited 0 but did not do its job: .*metrics.json was not written"):
        harness.run(case, memo=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.kind in ("bash", "python")], ids=lambda c: c.id)
def test_readme(case, harness):
    harness.run(case)
