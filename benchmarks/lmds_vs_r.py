"""``scmib.methods.landmark_mds`` against R: base R's Spearman correlation and lmds' own code.

On a joint-embedding task's ``mod1.h5ad`` / ``mod2.h5ad`` (both modalities' normalised values
side by side, as ``lmds_concat`` reads them), with the same landmarks on both sides:

- the landmarks x cells distances ``(1 - r) / 2``: scmib's sparse ranks against R's
  ``cor(method = "spearman")`` of the dense matrix (``dynutils::calculate_distance`` where
  dynutils is installed);
- the embedding: ``lmds::cmdscale_landmarks`` on R's distances (the installed lmds, or its R
  source from a checkout of dynverse/lmds with dynutils' ``scale_uniform`` from a checkout of
  dynverse/dynutils, where the packages are not installed) against scmib's on its own distances,
  each dimension up to its sign (eigenvectors have none).

Needs Rscript with the packages Matrix, irlba, assertthat and magrittr::

    python benchmarks/lmds_vs_r.py --task scmib_output/joint_embedding/snareseq2_mop2021/gex_atac/data \\
        [--lmds-src lmds/ --dynutils-src dynutils/]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.methods.landmark_mds import cmdscale_landmarks, sample_landmarks, select_landmarks

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
folder <- args[[1]]; lmds_src <- args[[2]]; dynutils_src <- args[[3]]; n_dims <- as.integer(args[[4]])
suppressPackageStartupMessages({library(Matrix); library(assertthat); library(magrittr)})
read_vector <- function(name, what, size) {
  path <- file.path(folder, name)
  readBin(path, what, n = file.size(path) / size, size = size)
}
shape <- read_vector("shape.bin", "integer", 4)
x <- sparseMatrix(
  i = read_vector("i.bin", "integer", 4) + 1L, j = read_vector("j.bin", "integer", 4) + 1L,
  x = read_vector("x.bin", "double", 8), dims = shape
)
landmarks <- read_vector("landmarks.bin", "integer", 4) + 1L
if (requireNamespace("dynutils", quietly = TRUE)) {
  dist_2lm <- as.matrix(dynutils::calculate_distance(x[landmarks, , drop = FALSE], x, method = "spearman"))
  source_of_distance <- "dynutils::calculate_distance"
} else {
  dense <- as.matrix(x)
  dist_2lm <- 1 - (cor(t(dense[landmarks, , drop = FALSE]), t(dense), method = "spearman") + 1) / 2
  source_of_distance <- "base R cor(method = 'spearman')"
}
dist_2lm <- zapsmall(dist_2lm)
attr(dist_2lm, "landmark_ix") <- landmarks
if (lmds_src == "" && requireNamespace("lmds", quietly = TRUE)) {
  cmdscale_landmarks <- lmds::cmdscale_landmarks
  source_of_mds <- paste("lmds", utils::packageVersion("lmds"))
} else {
  # lmds' and dynutils' own R code, with the dynutils:: prefix dropped (the package is absent).
  sources <- c(file.path(dynutils_src, "R", "scaling.R"), file.path(lmds_src, "R", "cmdscale_landmarks.R"))
  for (file in sources) {
    eval(parse(text = gsub("dynutils::", "", readLines(file), fixed = TRUE)))
  }
  source_of_mds <- paste("lmds source,", lmds_src)
}
started <- proc.time()[["elapsed"]]
dimred <- cmdscale_landmarks(dist_2lm, ndim = n_dims)
# irlba's eigenvectors converge to its tolerance, 1e-5 by default; ours are exact.
dimred_tight <- cmdscale_landmarks(dist_2lm, ndim = n_dims, tol = 1e-12)
cat(sprintf("R: distances from %s; MDS from %s (%.2f s)\n", source_of_distance, source_of_mds,
            proc.time()[["elapsed"]] - started))
writeBin(as.vector(dist_2lm), file.path(folder, "r_dist.bin"), size = 8)
writeBin(as.vector(dimred), file.path(folder, "r_dimred.bin"), size = 8)
writeBin(as.vector(dimred_tight), file.path(folder, "r_dimred_tight.bin"), size = 8)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, required=True, help="folder with mod1.h5ad and mod2.h5ad")
    parser.add_argument(
        "--lmds-src", default="", help="checkout of dynverse/lmds (else the installed package)"
    )
    parser.add_argument("--dynutils-src", default="", help="checkout of dynverse/dynutils (with --lmds-src)")
    parser.add_argument("--n-landmarks", type=int, default=500)
    parser.add_argument("--n-dims", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    mods = [ad.read_h5ad(args.task / f"{name}.h5ad") for name in ("mod1", "mod2")]
    # The organisers' files keep the normalised values in .X.
    blocks = [m.layers.get("normalized", m.X) for m in mods]
    values = sp.hstack([sp.csr_matrix(block) for block in blocks], format="csr")
    n_cells = values.shape[0]
    landmarks = sample_landmarks(n_cells, args.n_landmarks, args.seed)
    print(
        f"{n_cells} cells x {values.shape[1]} features, {values.nnz} stored values, "
        f"{landmarks.size} landmarks"
    )

    started = time.perf_counter()
    ours_dist = select_landmarks(values, landmarks, "spearman")
    ours = cmdscale_landmarks(ours_dist, landmarks, args.n_dims)
    print(f"scmib: {time.perf_counter() - started:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        coo = values.tocoo()
        np.asarray(values.shape, dtype="<i4").tofile(folder / "shape.bin")
        coo.row.astype("<i4").tofile(folder / "i.bin")
        coo.col.astype("<i4").tofile(folder / "j.bin")
        coo.data.astype("<f8").tofile(folder / "x.bin")
        landmarks.astype("<i4").tofile(folder / "landmarks.bin")
        (folder / "compare.R").write_text(R_SCRIPT)
        command = ["Rscript", str(folder / "compare.R"), str(folder), args.lmds_src, args.dynutils_src]
        subprocess.run([*command, str(args.n_dims)], check=True)
        r_dist = np.fromfile(folder / "r_dist.bin", dtype="<f8").reshape(ours_dist.shape, order="F")
        r_dimred, r_tight = (
            np.fromfile(folder / name, dtype="<f8").reshape((n_cells, -1), order="F")
            for name in ("r_dimred.bin", "r_dimred_tight.bin")
        )

    print(f"distances: max |scmib - R| = {np.abs(ours_dist - r_dist).max():.2e}")
    for label, theirs in (("irlba's default tolerance", r_dimred), ("irlba tol = 1e-12", r_tight)):
        if theirs.shape != ours.shape:
            raise SystemExit(f"embedding shapes differ: scmib {ours.shape}, R {theirs.shape}")
        signs = np.sign(np.sum(ours * theirs, axis=0))
        difference = np.abs(ours * signs - theirs).max()
        print(
            f"embedding ({ours.shape[1]} dims, range 1), R with {label}: max |scmib - R| = {difference:.2e}"
        )


if __name__ == "__main__":
    main()
