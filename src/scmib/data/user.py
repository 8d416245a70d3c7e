"""A user's paired file as a common dataset: find its parts, check them, say what was picked.

:func:`file_parts` lists the candidate modalities of a file from its metadata
alone (cheap: the planner calls it to know a dataset's modalities),
:func:`detect_layout` picks the GEX and the second modality among them (by the
options, else by ``feature_types``, names and feature names), and
:func:`load_common` reads the data and builds the ``(rna, mod2)`` pair of the
common format, printing every guess and every filter (see
:mod:`scmib.data.filters`).
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import read_elem

from scmib.contracts import count_problems
from scmib.data.common import DatasetMeta, as_counts, drop_closed_peaks, make_common
from scmib.data.filters import FilterLog
from scmib.data.normalize import MIN_CELLS_PER_PEAK
from scmib.data.user_options import DataOptions
from scmib.errors import ContractError
from scmib.processing.trajectory import MIN_LINEAGE_CELLS

#: ``var.feature_types`` values (lower case) and what they mean.
FEATURE_TYPES = {
    "gene expression": "GEX",
    "gex": "GEX",
    "rna": "GEX",
    "antibody capture": "ADT",
    "adt": "ADT",
    "protein": "ADT",
    "peaks": "ATAC",
    "atac": "ATAC",
    "chromatin accessibility": "ATAC",
}
#: Words in a modality's name that say what it is, checked in this order ("protein_expression" is ADT).
NAME_WORDS = {
    "ATAC": ("atac", "peak", "chromatin", "access"),
    "ADT": ("prot", "adt", "antibod", "cite", "surface"),
    "GEX": ("rna", "gex", "gene", "express"),
}
#: Feature names like chr1:100-200, chr1-100-200 or chr1_100_200 are ATAC peaks.
PEAK_NAME = re.compile(r"^(chr)?[0-9A-Za-z._]+[:_-]\d+[_-]\d+$")
#: With no other clue, a modality with at most this many features is an antibody panel.
MAX_ADT_FEATURES = 1000
#: Parts that are the GEX by their position (an .h5ad's X, the first of two files).
POSITIONAL_GEX = ("X", "file 1")
#: Columns tried, in order and case-insensitively, when the options name none.
BATCH_KEYS = ("batch", "sample", "donor", "sample_id", "batch_id", "orig.ident", "library", "lane")
CELL_TYPE_KEYS = ("cell_type", "celltype", "cell_type_l1", "celltype_l1", "celltype.l1", "cell_types")
CELL_TYPE_KEYS += ("cell_ontology_class", "annotation", "cell_label")
SPLIT_KEYS = ("is_train", "split")
SYMBOL_KEYS = ("gene_symbol", "gene_symbols", "gene_name", "gene_names", "symbol", "feature_name")
COUNT_LAYERS = ("counts", "raw_counts", "raw", "umi", "umis")
#: At least this share of feature names that are Ensembl ids means var names are ids, not symbols.
ID_SHARE = 0.5


@dataclass
class Part:
    """One candidate modality of a user file, as far as its metadata tells."""

    name: str  # h5mu modality, "X" of an .h5ad, "file 2" of a pair or "obsm:<key>"
    var_names: pd.Index
    feature_types: list[str] = field(default_factory=list)


@dataclass
class Layout:
    """Where the GEX and the second modality are, and how that was decided."""

    rna: str
    mod2: str
    mod2_modality: str
    notes: list[str]


def _var_part(name: str, var: pd.DataFrame) -> Part:
    for column in ("feature_types", "feature_type", "modality"):
        if column in var:
            return Part(name, var.index, sorted(var[column].astype(str).unique()))
    return Part(name, var.index)


def _obsm_parts(handle: h5py.File) -> list[Part]:
    parts = []
    for key, node in handle.get("obsm", {}).items():
        if key.startswith("X_"):  # embeddings (X_pca, X_umap), not a modality
            continue
        if isinstance(node, h5py.Group) and "column-order" in node.attrs:
            names = pd.Index([str(c) for c in node.attrs["column-order"]])
        elif isinstance(node, h5py.Group) and "shape" in node.attrs:
            names = _obsm_names(handle, key, int(node.attrs["shape"][1]))
        elif isinstance(node, h5py.Dataset) and node.ndim == 2:
            names = _obsm_names(handle, key, node.shape[1])
        else:
            continue
        parts.append(Part(f"obsm:{key}", names))
    return parts


def _obsm_names(handle: h5py.File, key: str, n: int) -> pd.Index:
    """Feature names of an ``obsm`` matrix: ``uns["<key>_names"]`` when it has them, else numbered."""
    stored = handle.get("uns", {}).get(f"{key}_names")
    if stored is not None and len(stored) == n:
        return pd.Index([str(v) for v in read_elem(stored)])
    return pd.Index([f"{key}_{i}" for i in range(n)])


def file_parts(options: DataOptions) -> list[Part]:
    """The candidate modalities of ``options``'s file(s), read from metadata only."""
    path = Path(options.path)
    if not h5py.is_hdf5(path):
        raise ContractError(f"data file '{path}': is not an HDF5 file (.h5mu or .h5ad)")
    with h5py.File(path, "r") as handle:
        if options.mod2_path is None and "mod" in handle:
            return [_var_part(name, read_elem(group["var"])) for name, group in handle["mod"].items()]
        if "var" not in handle:
            raise ContractError(f"data file '{path}': neither MuData ('mod' group) nor AnnData ('var' group)")
        first = _var_part("file 1" if options.mod2_path else "X", read_elem(handle["var"]))
        if options.mod2_path is None:
            return [first, *_obsm_parts(handle)]
    with h5py.File(options.mod2_path, "r") as handle:
        if "var" not in handle:
            raise ContractError(f"data file '{options.mod2_path}': not AnnData (no 'var' group)")
        return [first, _var_part("file 2", read_elem(handle["var"]))]


def guess_modality(part: Part) -> tuple[str, str]:
    """``(GEX | ADT | ATAC, why)`` for one part, from its feature types, its name, then its features."""
    known = {FEATURE_TYPES.get(v.lower()) for v in part.feature_types} - {None}
    if len(known) == 1:
        return known.pop(), f"feature_types {part.feature_types}"
    name = part.name.removeprefix("obsm:").lower()
    if part.name not in ("X", "file 1", "file 2"):
        for modality, words in NAME_WORDS.items():
            if any(word in name for word in words):
                return modality, f"its name '{part.name}'"
    sample = part.var_names[:2000].astype(str)
    if len(sample) and np.mean([bool(PEAK_NAME.match(n)) for n in sample]) >= 0.5:
        return "ATAC", "its feature names are genomic ranges"
    if len(part.var_names) <= MAX_ADT_FEATURES:
        return "ADT", f"{len(part.var_names)} features (an antibody panel)"
    return "GEX", f"{len(part.var_names):,} features"


def detect_layout(parts: list[Part], options: DataOptions) -> Layout:
    """The GEX part and the second part (ADT or ATAC) of a file: from the options, else guessed."""
    by_name = {p.name: p for p in parts}
    for key, chosen in (("rna_key", options.rna_key), ("mod2_key", options.mod2_key)):
        wanted = chosen if chosen is None or chosen in by_name or chosen == "X" else f"obsm:{chosen}"
        if wanted is not None and wanted not in by_name:
            raise ContractError(
                f"{_where(options)}: {key} '{chosen}' is not one of its parts {sorted(by_name)}"
            )
    guesses = {p.name: guess_modality(p) for p in parts}
    notes = []
    rna = options.rna_key if options.rna_key in by_name else None
    if rna is None:
        gex = [name for name, (modality, _) in guesses.items() if modality == "GEX"]
        positional = [p.name for p in parts if p.name in POSITIONAL_GEX]
        # An .h5ad's X, or the first of two files, is the GEX unless its feature types say otherwise.
        first = by_name[positional[0]] if positional else None
        if first is not None and first.name not in gex and not first.feature_types:
            second = by_name.get("file 2")
            # A second file with more features and nothing saying it is ADT (Triana's GEX is a
            # 422-gene panel, its ADT 97 antibodies) is the GEX given second.
            larger = second is not None and guesses["file 2"][0] == "ADT" and not second.feature_types
            larger = larger and len(second.var_names) > len(first.var_names)
            if first.name == "file 1" and (gex == ["file 2"] or larger):
                if larger:
                    sizes = f"{len(second.var_names):,} features, the first {len(first.var_names):,}"
                    guesses["file 2"] = ("GEX", sizes)
                raise ContractError(
                    f"{_where(options)}: the first file looks like {guesses['file 1'][0]} "
                    f"({guesses['file 1'][1]}) and the second like GEX ({guesses['file 2'][1]}): "
                    "give the GEX file first (or, if the first is GEX, say so with rna_key 'file 1')"
                )
            guesses[first.name] = (
                "GEX",
                "the main matrix of the file" if first.name == "X" else "the first file",
            )
            gex = [first.name, *gex]
        rna = gex[0] if gex else None
        if rna is None:
            raise ContractError(
                f"{_where(options)}: no part looks like gene expression ({_say(guesses)}); "
                "name it with rna_key"
            )
        notes.append(f"GEX: '{rna}' ({guesses[rna][1]})")
    mod2 = options.mod2_key
    if mod2 is not None and mod2 not in by_name:
        mod2 = f"obsm:{mod2}"
    if mod2 is None:
        others = [n for n, (m, _) in guesses.items() if n != rna and m in ("ADT", "ATAC")]
        if options.mod2_modality:
            others = [n for n in others if guesses[n][0] == options.mod2_modality] or others
        # Feature types and names say more than a feature count (a stray obsm matrix of 50 columns).
        others.sort(key=lambda n: not guesses[n][1].startswith(("feature_types", "its name", "its feature")))
        if not others:
            order = " (for two files, give the GEX file first)" if options.mod2_path else ""
            raise ContractError(
                f"{_where(options)}: no second modality (ADT or ATAC) besides '{rna}' ({_say(guesses)}); "
                f"name it with mod2_key{order}"
            )
        mod2 = others[0]
        notes.append(f"second modality: '{mod2}' ({guesses[mod2][1]})")
    modality = options.mod2_modality or guesses[mod2][0]
    if modality not in ("ADT", "ATAC"):
        raise ContractError(
            f"{_where(options)}: '{mod2}' looks like {modality} ({guesses[mod2][1]}); "
            "say what it is with mod2_modality ADT or ATAC"
        )
    if options.mod2_modality is None:
        notes.append(f"second modality is {modality} ({guesses[mod2][1]})")
    return Layout(rna, mod2, modality, notes)


def _where(options: DataOptions) -> str:
    return options.path if options.mod2_path is None else f"{options.path} + {options.mod2_path}"


def _say(guesses: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"'{n}' looks like {m} ({why})" for n, (m, why) in guesses.items())


# Reading ---------------------------------------------------------------------------------------------


def _obsm_modality(adata: ad.AnnData, key: str, names: pd.Index) -> ad.AnnData:
    values = adata.obsm[key]
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    return ad.AnnData(X=sp.csr_matrix(values), obs=adata.obs[[]].copy(), var=pd.DataFrame(index=names))


def read_parts(options: DataOptions, layout: Layout) -> tuple[ad.AnnData, ad.AnnData, pd.DataFrame]:
    """``(rna, mod2, obs)``: the two chosen parts (all their cells) and every per-cell annotation."""
    if options.mod2_path is not None:
        first, second = ad.read_h5ad(options.path), ad.read_h5ad(options.mod2_path)
        rna, mod2 = (first, second) if layout.rna == "file 1" else (second, first)
        obs = rna.obs.join(mod2.obs[mod2.obs.columns.difference(rna.obs.columns)], how="left")
        return rna, mod2, obs
    with h5py.File(options.path, "r") as handle:
        is_mudata = "mod" in handle
    if is_mudata:
        import mudata

        mdata = mudata.read_h5mu(options.path)
        rna, mod2 = mdata.mod[layout.rna], mdata.mod[layout.mod2]
        # Global columns (no "modality:" prefix) and each modality's own.
        shared = mdata.obs[[c for c in mdata.obs.columns if ":" not in c]]
        obs = rna.obs.join(shared[shared.columns.difference(rna.obs.columns)], how="left")
        return rna, mod2, obs.join(mod2.obs[mod2.obs.columns.difference(obs.columns)], how="left")
    if layout.rna != "X" or not layout.mod2.startswith("obsm:"):
        raise ContractError(
            f"{options.path}: in one .h5ad the gene expression must be X and the second modality an "
            f"obsm entry (rna_key '{layout.rna}', mod2_key '{layout.mod2}')"
        )
    adata = ad.read_h5ad(options.path)
    key = layout.mod2.removeprefix("obsm:")
    names = next(p.var_names for p in file_parts(options) if p.name == layout.mod2)
    return adata, _obsm_modality(adata, key, names), adata.obs


def raw_counts(adata: ad.AnnData, layer: str | None, where: str, option: str) -> tuple[sp.csr_matrix, str]:
    """Raw counts (CSR, float32) of ``adata`` and where they were found: ``layer``, else the first
    integer-valued of the usual layers, ``.X`` and ``.raw.X``. Raises :class:`ContractError` saying what
    each place held when none holds counts."""
    places: list[tuple[str, object]] = []
    if layer is not None:
        if layer == "X":
            places.append(("X", adata.X))
        elif layer not in adata.layers:
            raise ContractError(f"{where}: no layer '{layer}' ({option}); layers are {sorted(adata.layers)}")
        else:
            places.append((f"layers['{layer}']", adata.layers[layer]))
    else:
        places += [(f"layers['{n}']", adata.layers[n]) for n in COUNT_LAYERS if n in adata.layers]
        places.append(("X", adata.X))
        if adata.raw is not None and adata.raw.shape == adata.shape:
            places.append(("raw.X", adata.raw.X))
    problems = []
    if layer is None and adata.raw is not None and adata.raw.shape != adata.shape:
        problems.append(f"raw.X has {adata.raw.n_vars:,} features, X {adata.n_vars:,} (not used)")
    for name, matrix in places:
        if matrix is None:
            problems.append(f"{name} is empty")
            continue
        if not (found := count_problems(matrix)):
            return as_counts(matrix), name
        problems.append(f"{name} holds no {found[0].replace('found ', '', 1)}")
    raise ContractError(
        f"{where}: no raw counts found ({'; '.join(problems)}); scmib needs integer counts: {option}"
    )


def _counts_hint(option: str, part: str) -> str:
    if part.startswith("obsm:"):
        return f"store raw counts in {part} (an obsm entry has no layers)"
    return f"name the layer that holds them with --{option}"


def find_key(
    obs: pd.DataFrame, chosen: str | None, guesses: tuple[str, ...], what: str, where: str, table: str = "obs"
):
    """The column of ``obs`` (or var: ``table``) for ``what``: ``chosen`` (which must exist), else the
    first of ``guesses`` present (case-insensitively), else None."""
    if chosen is not None:
        if chosen not in obs:
            columns = list(obs.columns)
            raise ContractError(
                f"{where}: no column '{chosen}' for the {what} in {table}; columns: {columns}"
            )
        return chosen
    lower = {str(c).lower(): c for c in obs.columns}
    return next((lower[g] for g in guesses if g in lower), None)


def guess_organism(var_names: pd.Index, symbols: pd.Series | None) -> tuple[str | None, str]:
    """human or mouse from Ensembl id prefixes, else from the case of gene symbols."""
    names = pd.Series(var_names.astype(str))
    if names.str.startswith("ENSMUSG").mean() >= ID_SHARE:
        return "mouse", "Ensembl ids ENSMUSG..."
    if names.str.startswith("ENSG").mean() >= ID_SHARE:
        return "human", "Ensembl ids ENSG..."
    genes = (symbols if symbols is not None else names).astype(str)
    genes = genes[genes.str.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,}")]
    if len(genes) < 50:
        return None, "too few gene symbols to tell"
    upper, title = (genes == genes.str.upper()).mean(), (genes == genes.str.capitalize()).mean()
    if upper >= 0.6:
        return "human", f"{upper:.0%} of gene symbols upper case"
    if title >= 0.6:
        return "mouse", f"{title:.0%} of gene symbols capitalised"
    return None, "gene symbols neither mostly upper case nor capitalised"


def names_are_ids(var_names: pd.Index) -> bool:
    return bool(pd.Series(var_names.astype(str)).str.match(r"ENS[A-Z]*G\d").mean() >= ID_SHARE)


def auto_min_cells_per_peak(n_cells: int) -> int:
    """The organisers' 15 cells at 5,000 cells or more, proportionally fewer below (at least 1)."""
    return max(1, min(MIN_CELLS_PER_PEAK, round(MIN_CELLS_PER_PEAK * n_cells / 5000)))


def say(line: str) -> None:
    print(line, file=sys.stderr)


# The common dataset -----------------------------------------------------------------------------------

#: A user's pseudotime must order the lineage's types at least this well (Spearman) to be used.
MIN_ORDER_RHO = 0.3
#: And it must place at least this many cells.
MIN_PSEUDOTIME_CELLS = 30


def _split(column: pd.Series, key: str, where: str) -> np.ndarray:
    """``is_train`` from a boolean column or one holding train/test (validation counts as train);
    every cell must have a value and both sides must have cells."""
    if column.isna().any():
        raise ContractError(
            f"{where}: split column '{key}' has no value for {int(column.isna().sum())} cells"
        )
    words = column.astype(str).str.lower()
    known = {"train": True, "training": True, "valid": True, "validation": True, "test": False}
    known |= {"true": True, "false": False}
    unknown = sorted(set(words) - set(known))
    if unknown:
        raise ContractError(
            f"{where}: split column '{key}' holds {unknown[:5]}; expected train/test or True/False"
        )
    is_train = words.map(known).to_numpy(dtype=bool)
    if is_train.all() or not is_train.any():
        side = "training" if is_train.all() else "test"
        raise ContractError(f"{where}: split column '{key}' makes every cell a {side} cell")
    return is_train


def checked_lineage(lineage: list[str], cell_types: pd.Series | None, where: str) -> list[str]:
    """The user's lineage (ordered cell types, earliest first), each present in the data."""
    if cell_types is None:
        raise ContractError(f"{where}: a lineage needs cell types; the data has none (see cell_type_key)")
    counts = cell_types.astype(str).value_counts()
    missing = [t for t in lineage if t not in counts.index]
    if missing or len(lineage) < 2 or len(set(lineage)) < len(lineage):
        raise ContractError(
            f"{where}: lineage {lineage} must name at least two different cell types of the data; "
            f"not found: {missing}; the data's types: {sorted(counts.index)[:30]}"
        )
    on_lineage = int(counts[list(lineage)].sum())
    if on_lineage < MIN_LINEAGE_CELLS:
        raise ContractError(
            f"{where}: lineage {lineage} has {on_lineage} cells; at least {MIN_LINEAGE_CELLS} are needed"
        )
    return list(lineage)


def checked_pseudotime(
    values: pd.Series, key: str, cell_types: pd.Series | None, lineage: list[str] | None, where: str
) -> np.ndarray:
    """A user's pseudotime in [0, 1] (NaN off the trajectory), checked: numeric, on enough cells and,
    with a lineage, increasing along it (Spearman rho >= :data:`MIN_ORDER_RHO`)."""
    from scipy.stats import spearmanr

    numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
    numbers[~np.isfinite(numbers)] = np.nan
    if values.notna().sum() > numbers.notna().sum():
        raise ContractError(f"{where}: pseudotime column '{key}' holds values that are not numbers")
    placed = numbers.notna().to_numpy()
    if placed.sum() < MIN_PSEUDOTIME_CELLS:
        raise ContractError(
            f"{where}: pseudotime column '{key}' places {placed.sum()} cells; "
            f"at least {MIN_PSEUDOTIME_CELLS} needed"
        )
    if lineage is not None and cell_types is not None:
        stage = pd.Categorical(cell_types.astype(str), categories=lineage).codes
        on = placed & (stage >= 0)
        rho = spearmanr(numbers.to_numpy()[on], stage[on]).statistic if on.sum() > 2 else np.nan
        if not rho >= MIN_ORDER_RHO:
            raise ContractError(
                f"{where}: pseudotime column '{key}' does not order the lineage {lineage} "
                f"(Spearman rho {rho:.2f} over {on.sum()} cells; at least {MIN_ORDER_RHO} expected)"
            )
        say(f"pseudotime: obs '{key}' orders the lineage (Spearman rho {rho:.2f} over {on.sum()} cells)")
    else:
        say(f"pseudotime: obs '{key}' on {placed.sum():,} cells, not checked against an order (no lineage)")
    low, high = np.nanmin(numbers), np.nanmax(numbers)
    if high <= low:
        raise ContractError(f"{where}: pseudotime column '{key}' is constant")
    return ((numbers - low) / (high - low)).to_numpy()


def load_common(options: DataOptions) -> tuple[ad.AnnData, ad.AnnData]:
    """The ``(rna, mod2)`` common dataset of a user's file(s), every guess and filter printed.

    Cells in one modality only, cells without a cell type (when there are cell
    types), ATAC peaks open in too few cells (``min_cells_per_peak``, default
    :func:`auto_min_cells_per_peak`) and cells left without counts in either
    modality are removed and recorded in ``uns["filters"]``. With no batch
    column all cells are one batch; with no cell-type column there is no
    ``obs.cell_type`` (label-based metrics then do not apply).
    """
    where = _where(options)
    layout = detect_layout(file_parts(options), options)
    for note in layout.notes:
        say(f"picked {note}")
    rna, mod2, obs = read_parts(options, layout)
    for part, adata in (("GEX", rna), (layout.mod2_modality, mod2)):
        if not adata.obs_names.is_unique:
            raise ContractError(f"{where}: {part} cell names are not unique")
    filters = FilterLog()
    paired = rna.obs_names.intersection(mod2.obs_names, sort=False)
    mod2_name = layout.mod2_modality
    filters.record("cells", rna.n_obs, rna.n_obs - len(paired), f"measured in GEX only, not in {mod2_name}")
    filters.record("cells", mod2.n_obs, mod2.n_obs - len(paired), f"measured in {mod2_name} only")
    if len(paired) == 0:
        raise ContractError(f"{where}: no cell name is in both modalities")

    batch_key = find_key(obs, options.batch_key, BATCH_KEYS, "batch", where)
    cell_type_key = find_key(obs, options.cell_type_key, CELL_TYPE_KEYS, "cell type", where)
    split_key = find_key(obs, options.split_key, SPLIT_KEYS, "train/test split", where)
    obs = obs.loc[paired]
    table = pd.DataFrame(index=paired)
    if batch_key is None:
        say(f"batch: no column among {list(BATCH_KEYS)}; all cells are one batch (name one with batch_key)")
        table["batch"] = "batch1"
    else:
        table["batch"] = obs[batch_key].astype(str).where(obs[batch_key].notna())
        say(f"batch: obs '{batch_key}' ({table['batch'].nunique()} batches)")
    if cell_type_key is None:
        say(
            f"cell type: no column among {list(CELL_TYPE_KEYS)}; label-based methods and metrics, and "
            "the joint-embedding task, will not apply"
        )
    else:
        table["cell_type"] = obs[cell_type_key].astype(str).where(obs[cell_type_key].notna())
        say(f"cell type: obs '{cell_type_key}' ({table['cell_type'].nunique()} types)")
    if split_key is not None:
        table["is_train"] = _split(obs[split_key], split_key, where)
        say(f"split: obs '{split_key}' ({int(table['is_train'].sum()):,} training cells)")
    keep = table["batch"].notna().to_numpy()
    if batch_key is not None:
        filters.record("cells", len(keep), int((~keep).sum()), f"no batch in obs '{batch_key}'")
    if "cell_type" in table:
        labelled = table["cell_type"].notna().to_numpy()
        unlabelled = int((keep & ~labelled).sum())
        filters.record("cells", int(keep.sum()), unlabelled, f"no cell type in obs '{cell_type_key}'")
        keep &= labelled

    rna_counts, found = raw_counts(
        rna[paired], options.counts_layer, f"{where} ({layout.rna})", _counts_hint("counts_layer", layout.rna)
    )
    say(f"GEX counts: {found}")
    mod2_counts, found = raw_counts(
        mod2[paired],
        options.mod2_counts_layer,
        f"{where} ({layout.mod2})",
        _counts_hint("mod2_counts_layer", layout.mod2),
    )
    say(f"{layout.mod2_modality} counts: {found}")
    mod2_var = pd.DataFrame(index=mod2.var_names.astype(str))
    if layout.mod2_modality == "ATAC":
        min_cells = options.min_cells_per_peak
        if min_cells is None:
            min_cells = auto_min_cells_per_peak(int(keep.sum()))
        mod2_counts, mod2_var = drop_closed_peaks(mod2_counts, mod2_var, min_cells, filters, cells=keep)
    for modality, counts in (("GEX", rna_counts), (layout.mod2_modality, mod2_counts)):
        empty = np.asarray(counts.sum(axis=1)).ravel() == 0
        filters.record("cells", int(keep.sum()), int((keep & empty).sum()), f"no {modality} counts")
        keep &= ~empty
    if not keep.any():
        raise ContractError(f"{where}: no cell is left after the filters above")

    rna_var = pd.DataFrame(index=rna.var_names.astype(str))
    symbols_key = find_key(rna.var, options.gene_symbols_key, SYMBOL_KEYS, "gene symbols", where, "var")
    if symbols_key is not None and (options.gene_symbols_key or names_are_ids(rna.var_names)):
        rna_var["gene_symbol"] = rna.var[symbols_key].astype(str).to_numpy()
        say(f"gene symbols: var '{symbols_key}'")
    elif names_are_ids(rna.var_names):
        say(
            "gene symbols: var names are Ensembl ids and no symbol column was found: cell-cycle genes "
            "cannot be matched (name the column with gene_symbols_key)"
        )
    organism = options.organism
    if organism is None:
        organism, why = guess_organism(rna.var_names, rna_var.get("gene_symbol"))
        if organism is None:
            raise ContractError(f"{where}: cannot tell the organism ({why}); give organism human or mouse")
        say(f"organism: {organism} ({why})")

    table = table[keep]
    lineage = pseudotime = None
    cell_types = table.get("cell_type")
    if options.lineage:
        lineage = checked_lineage(options.lineage, cell_types, where)
    if options.pseudotime_key:
        if options.pseudotime_key not in obs:
            raise ContractError(f"{where}: no obs column '{options.pseudotime_key}' for the pseudotime")
        pseudotime = checked_pseudotime(
            obs.loc[table.index, options.pseudotime_key], options.pseudotime_key, cell_types, lineage, where
        )
        for modality in ("GEX", layout.mod2_modality):
            table[f"pseudotime_order_{modality}"] = pseudotime
    common_rna, common_mod2 = make_common(
        rna_counts=rna_counts[keep],
        mod2_counts=mod2_counts[keep],
        obs=table,
        rna_var=rna_var,
        mod2_var=mod2_var,
        mod2_modality=layout.mod2_modality,
        meta=DatasetMeta(
            dataset_id=options.dataset_id,
            dataset_name=options.name or Path(options.path).name,
            organism=organism,
            source=where,
            reference="",
        ),
        min_cells_per_peak=None,
        filters=filters,
    )
    if lineage is not None:
        common_rna.uns["lineage"] = lineage
    return common_rna, common_mod2


def obs_columns(options: DataOptions) -> set[str]:
    """Every per-cell annotation the dataset's files hold (their ``obs`` columns, and an ``.h5mu``'s
    modalities' own), read from metadata only."""

    def columns(group: h5py.Group | h5py.Dataset | None) -> set[str]:
        if isinstance(group, h5py.Dataset):  # an old AnnData's obs, one compound array
            return set(group.dtype.names or ())
        return set() if group is None else {str(c) for c in group.attrs.get("column-order", [])}

    found: set[str] = set()
    for path in (options.path, options.mod2_path):
        if path is None:
            continue
        with h5py.File(path, "r") as handle:
            found |= columns(handle.get("obs"))
            for modality in handle.get("mod", {}).values():
                found |= columns(modality.get("obs"))
    return found


def check_obs_keys(options: DataOptions) -> None:
    """Raise :class:`ContractError` before anything runs when a named per-cell column is not in the
    files (the loader would find out only inside its job)."""
    keys = {
        "batch_key": options.batch_key,
        "cell_type_key": options.cell_type_key,
        "split_key": options.split_key,
        "pseudotime_key": options.pseudotime_key,
    }
    given = {key: column for key, column in keys.items() if column is not None}
    if not given:
        return
    known = obs_columns(options)
    for key, column in given.items():
        if column not in known:
            close = difflib.get_close_matches(column, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ContractError(
                f"{_where(options)}: {key} '{column}' is not an obs column{hint}; columns: {sorted(known)}"
            )


def dataset_info(options: DataOptions):
    """The :class:`~scmib.spec.DatasetInfo` of a user's dataset (its modalities and organism), from
    its metadata; raises :class:`ContractError` before anything runs when its parts cannot be told."""
    from scmib.spec import DatasetInfo

    parts = file_parts(options)
    layout = detect_layout(parts, options)
    check_obs_keys(options)
    organism = options.organism
    if organism is None:
        rna = next(p for p in parts if p.name == layout.rna)
        organism, why = guess_organism(rna.var_names, None)
        if organism is None and not names_are_ids(rna.var_names):
            raise ContractError(f"{options.path}: cannot tell the organism ({why}); give it (human, mouse)")
    files = Path(options.path).name + (f" + {Path(options.mod2_path).name}" if options.mod2_path else "")
    return DatasetInfo(
        id=options.dataset_id,
        label=options.name or options.dataset_id,
        summary=f"your data: {files} (GEX '{layout.rna}' + {layout.mod2_modality} '{layout.mod2}')",
        modalities=["GEX", layout.mod2_modality],
        organism=organism or "human",
        args=options.loader_args(),
        profiles=["test", "default", "full", "scale"],
    )
