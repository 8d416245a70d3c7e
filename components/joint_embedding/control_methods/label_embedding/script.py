"""Positive control: an embedding made from the labels."""

import numpy as np
import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs

#: Share of their cell-type offset lineage cells keep: any offset splits the lineage graph by type.
LINEAGE_TYPE_SHARE = 0.0


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run)
    solution = run.read("input_solution")[inputs.mod1.obs_names]
    obs, scale = solution.obs, run.par["type_scale"]
    types = scale * pd.get_dummies(obs["cell_type"].astype(str)).to_numpy(dtype=np.float64)
    times = obs[[c for c in obs if c.startswith("pseudotime_order_")]]
    pseudotime = times.mean(axis=1).to_numpy() if times.shape[1] else np.full(len(obs), np.nan)
    on_path = ~np.isnan(pseudotime)
    types[on_path] *= LINEAGE_TYPE_SHARE
    blocks = [types, scale * np.nan_to_num(pseudotime)[:, None]]
    if {"S_score", "G2M_score"} <= set(obs) and "cc_variance_before" in solution.uns:
        blocks.append(
            cell_cycle_block(obs, np.hstack(blocks), float(np.mean(solution.uns["cc_variance_before"])))
        )
    embedding = np.hstack(blocks)[:, :100]
    # A little seeded noise: cells of one type would otherwise coincide, and neighbour searches would
    # break the ties by cell order (which follows batch), faking batch structure.
    embedding += np.random.default_rng(run.par["seed"]).normal(0, 0.01 * scale, embedding.shape)
    run.write("output", inputs.output(embedding))


def cell_cycle_block(obs: pd.DataFrame, rest: np.ndarray, share: float) -> np.ndarray:
    """S/G2M scores scaled so they explain about ``share`` of the embedding's variance, as in the GEX."""
    cycle = obs[["S_score", "G2M_score"]].to_numpy(dtype=np.float64)
    cycle = cycle - cycle.mean(axis=0)
    ratio = share / max(1 - share, 1e-6) * rest.var(axis=0).sum() / max(cycle.var(axis=0).sum(), 1e-12)
    return np.sqrt(ratio) * cycle


if __name__ == "__main__":
    run_component(__file__, main)
