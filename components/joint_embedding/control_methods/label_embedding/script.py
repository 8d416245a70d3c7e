"""Positive control: an embedding made from the labels."""

import numpy as np
import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.metrics.embedding.cell_cycle import cell_cycle_conservation

#: Share of their cell-type offset lineage cells keep: any offset splits the lineage graph by type.
LINEAGE_TYPE_SHARE = 0.0
#: Scales of the cell-cycle block tried (times its share-of-variance guess), then refined around the best.
CYCLE_GRID = np.concatenate([[0.0], 2.0 ** np.arange(-6, 6.5, 0.5)])


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run, layers=())  # the cells' annotations only
    solution = run.read("input_solution", layers=())[inputs.mod1.obs_names]
    obs, scale = solution.obs, run.par["type_scale"]
    rng = np.random.default_rng(run.par["seed"])
    types = scale * pd.get_dummies(obs["cell_type"].astype(str)).to_numpy(dtype=np.float64)
    times = obs[[c for c in obs if c.startswith("pseudotime_order_")]]
    pseudotime = times.mean(axis=1).to_numpy() if times.shape[1] else np.full(len(obs), np.nan)
    types[~np.isnan(pseudotime)] *= LINEAGE_TYPE_SHARE
    # Types last: past 100 dimensions (the contract's bound) only the rarest type axes are cut.
    rest = np.hstack([scale * np.nan_to_num(pseudotime)[:, None], types])
    # A little seeded noise: cells of one type would otherwise coincide, and neighbour searches would
    # break the ties by cell order (which follows batch), faking batch structure.
    rest += rng.normal(0, 0.01 * scale, rest.shape)
    blocks = [rest]
    if {"S_score", "G2M_score"} <= set(obs) and "cc_variance_before" in solution.uns:
        before = dict(zip(solution.uns["cc_batches"], solution.uns["cc_variance_before"], strict=True))
        blocks.insert(0, calibrated_cycle_block(obs, rest, before))
    run.write("output", inputs.output(np.hstack(blocks)[:, :100]))


def calibrated_cycle_block(obs: pd.DataFrame, rest: np.ndarray, before: dict[str, float]) -> np.ndarray:
    """S/G2M scores scaled so the embedding keeps the GEX's cell-cycle variance, by ``cc_cons`` itself.

    The first guess scales the scores to the share of variance they explain in
    the GEX; but cell types that cycle (proliferating cells) carry cell-cycle
    variance of their own, and each batch has its own share. So within each
    batch (the metric compares batch by batch) the scale is chosen on a grid
    of multiples of that guess, refined between the best one's neighbours, to
    maximise the metric's own value. Only the spread of the centred scores
    changes, never where a batch sits.
    """
    scores = obs[["S_score", "G2M_score"]].to_numpy(dtype=np.float64)
    cycle = scores - scores.mean(axis=0)
    share = float(np.mean(list(before.values())))
    ratio = share / max(1 - share, 1e-6) * rest.var(axis=0).sum() / max(cycle.var(axis=0).sum(), 1e-12)
    block = np.sqrt(ratio) * cycle
    batches = obs["batch"].astype(str).to_numpy()
    for batch, reference in before.items():
        cells = batches == batch

        def value(factor: float, cells=cells, batch=batch, reference=reference) -> float:
            embedding = np.hstack([factor * block[cells], rest[cells]])[:, :100]
            return cell_cycle_conservation({batch: reference}, embedding, batches[cells], scores[cells])

        values = [value(f) for f in CYCLE_GRID]
        best = int(np.argmax(values))
        low, high = CYCLE_GRID[max(best - 1, 0)], CYCLE_GRID[min(best + 1, len(CYCLE_GRID) - 1)]
        block[cells] *= max(np.linspace(low, high, 9), key=value)
    return block


if __name__ == "__main__":
    run_component(__file__, main)
