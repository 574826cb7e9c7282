"""Entity-level precision, recall and F1 for BIO tag sequences, for `evaluate`.

Shipped with ssl-text and loaded with `evaluate.load(<this folder>)`, so NER evaluation works
with no access to the Hub's metric scripts. The scores are those of conlleval (via the
`seqeval` package, default mode): an entity counts when its type and both boundaries match.
"""

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report

_DESCRIPTION = "Entity-level micro precision, recall and F1 of BIO tag sequences, overall and per entity type."
_KWARGS = """
Args:
    predictions (list of list of str): predicted tags, one list per sentence.
    references (list of list of str): true tags, same shape.
Returns:
    precision, recall, f1 (micro over entities), accuracy (per word), and for each entity type
    TYPE_precision, TYPE_recall, TYPE_f1, TYPE_number (entities of that type in the references).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Seqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
        scores = {
            "precision": float(report["micro avg"]["precision"]),
            "recall": float(report["micro avg"]["recall"]),
            "f1": float(report["micro avg"]["f1-score"]),
            "accuracy": float(accuracy_score(references, predictions)),
        }
        for name, row in report.items():
            if name.endswith(" avg"):
                continue
            scores[f"{name}_precision"] = float(row["precision"])
            scores[f"{name}_recall"] = float(row["recall"])
            scores[f"{name}_f1"] = float(row["f1-score"])
            scores[f"{name}_number"] = int(row["support"])
        return scores
