"""The NeurIPS 2021 competition's reference numbers (phase 2, full data; benchmark.md)."""

from __future__ import annotations

#: Predict modality RMSE per subtask: controls, the organisers' best baseline, the winner.
PREDICT_MODALITY_RMSE: dict[str, dict[str, float | str]] = {
    "gex2adt": {
        "mean_per_feature": 0.657,
        "knn_regression": 0.427,
        "winner": 0.385,
        "winner_name": "Guanlab",
    },
    "adt2gex": {"mean_per_feature": 0.365, "knn_regression": 0.330, "winner": 0.318, "winner_name": "Novel"},
    "gex2atac": {
        "mean_per_feature": 0.180,
        "knn_regression": 0.178,
        "winner": 0.177,
        "winner_name": "LS lab",
    },
    "atac2gex": {"mean_per_feature": 0.240, "knn_regression": 0.240, "winner": 0.217, "winner_name": "Cajal"},
}


def is_neurips(dataset_id: str) -> bool:
    """Datasets made of the competition's own cells (the starter subsets and the GEO data)."""
    return dataset_id.startswith("neurips2021_")
