"""Read a joint-embedding prediction against its solution, and score degenerate embeddings."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.contracts import load_contract
from scmib.errors import ContractError
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import reorder, score_file

#: The bound the prediction's contract states (the one place it is written).
MAX_DIMENSIONS = load_contract("joint_embedding/prediction").slots.X.max_columns


@dataclass
class ScoredEmbedding:
    """An embedding (cells x dimensions, in the solution's cell order) and the solution's labels."""

    embedding: np.ndarray
    solution: ad.AnnData
    prediction: ad.AnnData

    @property
    def obs(self) -> pd.DataFrame:
        return self.solution.obs

    @property
    def degenerate(self) -> bool:
        """True when every cell sits at the same point: distances, graphs and PCs are undefined."""
        return is_degenerate(self.embedding)

    @property
    def one_batch(self) -> bool:
        """True when every cell is in the same batch: batch-mixing metrics do not apply."""
        return self.obs["batch"].nunique() < 2

    def score(
        self,
        values: dict[str, float],
        not_applicable: dict[str, str] | None = None,
        contributions: dict[str, Contributions] | None = None,
    ) -> ad.AnnData:
        """A score file of ``values``, with the per-cell ``contributions`` of those that have them
        (over the solution's cells)."""
        for name, why in (not_applicable or {}).items():
            print(f"{name}: not applicable ({why})", file=sys.stderr)
        return score_file(
            self.prediction, values, not_applicable, contributions, cells=self.solution.obs_names
        )

    def worst(
        self, values: dict[str, float], why: str, not_applicable: dict[str, str] | None = None
    ) -> ad.AnnData:
        """A score file with every metric at its worst value, saying why on stderr (kept in the run
        log); metrics in ``not_applicable`` stay not applicable, as for every other embedding."""
        not_applicable = not_applicable or {}
        values = {name: value for name, value in values.items() if name not in not_applicable}
        print(f"metric undefined ({why}); scored as the worst value: {values}", file=sys.stderr)
        out = score_file(self.prediction, values, not_applicable)
        out.uns["undefined"] = why
        return out


def is_degenerate(embedding: np.ndarray) -> bool:
    """True when every cell (row) sits at the same point: distances, graphs and PCs are undefined.

    Judged in float32, the precision of the kNN graph (scanpy's): cells that differ only below
    it (``1 + 1e-12 * noise``) are one point to the graph, and so to every metric.
    """
    return bool(np.all(np.ptp(np.asarray(embedding, dtype=np.float32), axis=0) == 0))


def checked_embedding(values, where: str) -> np.ndarray:
    """``values`` (cells x dimensions, dense or sparse) as float64, after checking there are 1 to
    :data:`MAX_DIMENSIONS` dimensions and only finite values; :class:`ContractError` naming
    ``where`` (the file and slot, say) otherwise."""
    values = np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float64)
    if values.ndim != 2 or not 1 <= values.shape[1] <= MAX_DIMENSIONS:
        raise ContractError(
            f"{where} has {values.shape[1] if values.ndim == 2 else values.ndim} dimensions"
            f"{'' if values.ndim == 2 else ' (axes)'}, expected 1 to {MAX_DIMENSIONS}"
        )
    if not np.all(np.isfinite(values)):
        raise ContractError(f"{where} holds NaN or infinite values")
    return values


def embedding_inputs(prediction: ad.AnnData, solution: ad.AnnData, path: str) -> ScoredEmbedding:
    """The prediction's ``X`` as float64 in the solution's cell order.

    Raises :class:`ContractError` naming ``path`` when cells differ, when there
    are not 1 to :data:`MAX_DIMENSIONS` dimensions, or when values are not finite.
    """
    if prediction.n_obs != solution.n_obs:
        raise ContractError(
            f"prediction '{path}': X has {prediction.n_obs} cells, the solution {solution.n_obs}"
        )
    values = checked_embedding(prediction.X, f"prediction '{path}': X")
    rows = reorder(prediction.obs_names.to_numpy(), solution.obs_names.to_numpy(), "obs", path)
    return ScoredEmbedding(values if rows is None else values[rows], solution, prediction)
