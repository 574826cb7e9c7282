"""Publishing runs and augmented datasets on the Hugging Face Hub.

`ssl-text push RUN_DIR REPO_ID` (or `hub.push_to_hub: true` in a config) uploads, in one commit:

  the selected model with its tokenizer (RUN_DIR/best; label names live in config.json),
  training_config.yaml   the resolved config of the run (RUN_DIR/config.yaml),
  metrics.json           validation history, selected step, test metrics, timings,
  plots/*.png            training curves and confusion matrix, when the run has them,
  README.md              a model card generated from the run (see `ssl_text/hub/model_card.py`).

Every finished run also writes these files into RUN_DIR/best (`write_model_folder`), so best/ is the
same Hub-ready folder on disk; a push takes them from the run directory and regenerates the card
for the repo it names.

`ssl-text push-dataset DIR REPO_ID` uploads a `Dataset.save_to_disk` folder (for example the
output of back-translation) as a Hub dataset: one parquet file per split and shard under data/,
with a dataset card that declares the splits.

The token comes from the usual places (`HF_TOKEN`, then `hf auth login`; see
`huggingface_hub.get_token`). It is checked with `whoami` before anything is created or uploaded.
The endpoint is `HF_ENDPOINT` (huggingface.co by default).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from ssl_text.config.keys import BEST, CONFIG_FILE, METRICS_FILE, MODEL_CARD_FILE, PLOTS_DIR
from ssl_text.training.run_dir import write_text_atomic

TOKEN_HELP = (
    "create a token with write access at https://huggingface.co/settings/tokens, then either "
    "`export HF_TOKEN=hf_...` or run `hf auth login`"
)
RUN_FILES = {CONFIG_FILE: "training_config.yaml", METRICS_FILE: METRICS_FILE}
MAX_SHARD_BYTES = 500 * 2**20


class HubError(RuntimeError):
    """The Hub refused or could not be reached; the message says what to do."""


def _token_source(token: str) -> str:
    if token == (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or "").strip():
        return "the HF_TOKEN environment variable"
    return "the token saved by `hf auth login`"


def check_token(token: str | None = None, endpoint: str | None = None) -> tuple[HfApi, str, str]:
    """The API client, the token and the user name; a clear `HubError` when the token is missing or rejected.

    Nothing is created or uploaded here: this is the check that runs before any upload.
    """
    endpoint = endpoint or constants.ENDPOINT
    if constants.HF_HUB_OFFLINE:
        raise HubError(
            "the Hugging Face Hub is switched off here (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE to push."
        )
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token found, so nothing was uploaded; {TOKEN_HELP}.")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        user = api.whoami(token=token)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            raise HubError(
                f"the Hugging Face token from {_token_source(token)} was rejected by {endpoint} (401 Unauthorized: "
                f"invalid, expired or revoked), so nothing was uploaded; {TOKEN_HELP} "
                "(`hf auth login --force` replaces a saved token; HF_TOKEN takes precedence over it)."
            ) from None
        raise HubError(f"could not check the token with {endpoint}: {err}") from None
    except OfflineModeIsEnabled as err:
        raise HubError(f"{err}") from None
    except OSError as err:  # connection refused, DNS, timeouts (httpx errors are not OSError: see below)
        raise HubError(f"could not reach the Hugging Face Hub at {endpoint}: {err}") from None
    except Exception as err:
        if type(err).__module__.startswith(("httpx", "httpcore")):
            raise HubError(f"could not reach the Hugging Face Hub at {endpoint}: {err}") from None
        raise
    name = user.get("name")
    if not name:
        raise HubError(f"{endpoint} did not say who the token belongs to (whoami returned {user!r}).")
    return api, token, name


def _full_repo_id(repo_id: str, user: str) -> str:
    return repo_id if "/" in repo_id else f"{user}/{repo_id}"


def _prepare_repo(api: HfApi, repo_id: str, repo_type: str, private: bool, revision: str | None) -> None:
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if revision and revision != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 403:
            raise HubError(
                f"the token may not create or write {repo_type} repo {repo_id!r} (403 Forbidden): use a token with "
                "write access to that namespace, or push to your own namespace."
            ) from None
        raise HubError(f"could not create {repo_type} repo {repo_id!r}: {err}") from None


def _commit(api: HfApi, repo_id: str, repo_type: str, operations: list, message: str, revision: str | None) -> str:
    try:
        info = api.create_commit(
            repo_id, operations, commit_message=message, repo_type=repo_type, revision=revision
        )
    except HfHubHTTPError as err:
        raise HubError(f"uploading to {repo_type} repo {repo_id!r} failed: {err}") from None
    return info.commit_url


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


def _run_files(run_dir: Path, metrics_given: bool = False) -> list[tuple[str, Path]]:
    """(path in the repo, local file) for everything a run publishes, except the card: the model files of best/,
    then the config, metrics and plots of the run directory (best/ holds copies of these, which are skipped).
    `metrics_given`: the metrics are at hand, not yet in the run directory, and are left out."""
    from ssl_text.hub.model_card import missing_run_files

    missing = missing_run_files(run_dir, metrics_given)
    if missing:
        raise HubError(
            f"{run_dir} is not a finished ssl-text run (expected {BEST}/, {CONFIG_FILE} and {METRICS_FILE}; "
            f"missing: {missing}); pass the output_dir of a completed run."
        )
    best = run_dir / BEST
    copies = {MODEL_CARD_FILE, *RUN_FILES.values()}
    files = [
        (name, p)
        for p in sorted(best.rglob("*"))
        if p.is_file()
        and (name := p.relative_to(best).as_posix()) not in copies
        and not name.startswith(f"{PLOTS_DIR}/")
    ]
    if not any(name.endswith((".safetensors", ".bin")) for name, _ in files):
        raise HubError(f"{best} holds no model weights; the run did not save its selected model.")
    files += [
        (target, run_dir / name) for name, target in RUN_FILES.items() if not (metrics_given and name == METRICS_FILE)
    ]
    plots = run_dir / PLOTS_DIR
    if plots.is_dir():
        files += [(f"{PLOTS_DIR}/{p.name}", p) for p in sorted(plots.glob("*.png"))]
    return files


def write_model_folder(run_dir: str | Path, metrics: dict | None = None) -> Path:
    """Complete a finished run's best/ into a Hub-ready model folder: the model card (README.md), the resolved
    config (training_config.yaml), metrics.json and plots/ beside the model and tokenizer. Returns best/.

    `metrics`: the run's final metrics, which the run writes to its metrics file (as `json.dumps(metrics,
    indent=2)`) only after this folder is complete, since that file marks the run finished."""
    from ssl_text.hub.model_card import build_model_card

    run_dir = Path(run_dir)
    best = run_dir / BEST
    files = _run_files(run_dir, metrics_given=metrics is not None)
    shutil.rmtree(best / PLOTS_DIR, ignore_errors=True)  # plots of an earlier finish
    for name, path in files:
        target = best / name
        if path != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    if metrics is not None:
        write_text_atomic(best / RUN_FILES[METRICS_FILE], json.dumps(metrics, indent=2))
    write_text_atomic(best / MODEL_CARD_FILE, str(build_model_card(run_dir, metrics=metrics)))
    return best


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a finished run's selected model, config, metrics, plots and model card; returns the commit URL."""
    from ssl_text.hub.model_card import build_model_card

    run_dir = Path(run_dir)
    files = _run_files(run_dir)  # a broken run directory fails before the token is even looked at
    api, _, user = check_token(token, endpoint)
    repo_id = _full_repo_id(repo_id, user)
    card = build_model_card(run_dir, repo_id)
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in files]
    operations.append(CommitOperationAdd(path_in_repo=MODEL_CARD_FILE, path_or_fileobj=str(card).encode()))
    _prepare_repo(api, repo_id, "model", private, revision)
    message = commit_message or f"ssl-text: {metrics.get('algorithm', 'model')} run {run_dir.name}"
    return _commit(api, repo_id, "model", operations, message, revision)


# ---------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------


def _dataset_card(repo_id: str, splits: dict[str, list[str]], source: Path, dsdict) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        tags=["ssl-text"],
    )
    rows = "\n".join(
        f"| {split} | {dsdict[split].num_rows} | {', '.join(f'`{c}`' for c in dsdict[split].column_names)} |"
        for split in splits
    )
    body = f"""
# {repo_id.split('/')[-1]}

Uploaded with `ssl-text push-dataset` from the `save_to_disk` folder `{source.name}`.
Columns named `aug_0`, `aug_1`, ... hold precomputed augmentations (for example back-translations)
that ssl-text draws as views of the unlabeled text (`back_translation` in a view pipeline, or `views.strong.aug_columns`).

| split | rows | columns |
|---|---|---|
{rows}

```python
from datasets import load_dataset
ds = load_dataset("{repo_id}")
```
"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def push_dataset(
    path: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    split: str = "train",
) -> str:
    """Upload a `save_to_disk` folder as a parquet Hub dataset (one commit); returns the commit URL.

    A single `Dataset` becomes split `split`; a `DatasetDict` keeps its splits.
    """
    import datasets

    path = Path(path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise HubError(f"{path} is not a folder written by `Dataset.save_to_disk` ({err}).") from None
    dsdict = loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({split: loaded})
    api, _, user = check_token(token, endpoint)
    repo_id = _full_repo_id(repo_id, user)
    with tempfile.TemporaryDirectory(prefix="ssl_text_push_") as tmp:
        operations, splits = [], {}
        for name, ds in dsdict.items():
            nbytes = ds.data.nbytes if ds.num_rows else 0
            num_shards = max(1, -(-nbytes // MAX_SHARD_BYTES))
            splits[name] = []
            for index in range(num_shards):
                target = f"data/{name}-{index:05d}-of-{num_shards:05d}.parquet"
                local = Path(tmp) / target
                local.parent.mkdir(parents=True, exist_ok=True)
                ds.shard(num_shards, index, contiguous=True).to_parquet(str(local))
                operations.append(CommitOperationAdd(path_in_repo=target, path_or_fileobj=str(local)))
                splits[name].append(target)
        card = _dataset_card(repo_id, splits, path, dsdict)
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        _prepare_repo(api, repo_id, "dataset", private, revision)
        return _commit(api, repo_id, "dataset", operations, f"ssl-text: dataset from {path.name}", revision)
