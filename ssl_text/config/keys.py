"""The names every layer shares: batch keys, dataset columns and the files of a run directory.

Defined once here (the config layer imports nothing), so data, tasks, algorithms and the trainer
agree on them without importing one another.
"""

# Batch keys: model inputs per view, and the targets beside them.
LB = "lb"  # labeled inputs
ULB_WEAK = "ulb_weak"  # weak view of the unlabeled inputs
ULB_STRONG = "ulb_strong"  # strong view of the unlabeled inputs
KNOWN_VIEWS = (LB, ULB_WEAK, ULB_STRONG)  # the views an algorithm may ask for; the collator builds exactly these
LB_LABELS = "lb_labels"  # [B] class ids, or [B, L] tag ids with -100 where no label applies
ULB_INDEX = "ulb_index"  # [mu*B] stable positions of the unlabeled rows (per-example state)
ULB_TOKEN_MASK = "ulb_token_mask"  # [mu*B, L] token positions of the unlabeled rows that count (NER)
ULB_KNN_VOTES = "ulb_knn_votes"  # [mu*B, C] the unlabeled rows' kNN votes (`algorithm.knn_agreement`)
IDS = "input_ids"
MASK = "attention_mask"

# Dataset columns.
TEXT = "text"
LABEL = "label"
INDEX = "index"  # stable position of an unlabeled row
ANALYSIS_LABEL = "analysis_label"  # true label of an unlabeled row, for logging only
PSEUDO_TARGET = "pseudo_target"  # a target vector [C] of an unlabeled row, e.g. from a teacher model
KNN_VOTE = "knn_vote"  # [C] an unlabeled row's kNN label-spreading vote in the start model's embedding space
AUG_PREFIX = "aug_"  # precomputed paraphrase columns: aug_0, aug_1, ...

# Files and folders of a run directory.
CONFIG_FILE = "config.yaml"  # the resolved config the run trained with
METRICS_FILE = "metrics.json"  # final metrics, training time and hardware
CHECKPOINTS = "checkpoints"  # step_<n>/ folders, the newest `trainer.keep_checkpoints`
CHECKSUMS_FILE = "SHA256SUMS"  # in every checkpoint folder: `sha256sum -c SHA256SUMS` checks it by hand
BEST = "best"  # the selected model: a plain `transformers` folder, tokenizer and model card included
MODEL_CARD_FILE = "README.md"  # the model card in best/ (the Hub reads a repo's README.md as its card)
LABELED_ROWS_FILE = "labeled_rows.jsonl"  # the labeled rows the run drew: index, sha256 of the text, label
LOCK = "run.lock"  # held while a process writes the run directory
PLOTS_DIR = "plots"
