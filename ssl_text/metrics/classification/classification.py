"""Classification metrics for `evaluate`: accuracy, macro-F1 and Matthews correlation.

Shipped with ssl-text and loaded with `evaluate.load(<this folder>)`, so evaluation works
with no access to the Hub's metric scripts.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

_DESCRIPTION = "Accuracy, macro-averaged F1 and Matthews correlation coefficient of class predictions."
_KWARGS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
Returns:
    accuracy, macro_f1, mcc (floats in [0, 1], mcc in [-1, 1]).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, average="macro", zero_division=0)),
            "mcc": float(matthews_corrcoef(references, predictions)),
        }
