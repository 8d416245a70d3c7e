"""What compressing an ``.h5ad`` file costs: write and read time, file size, per setting.

Every component writes its outputs through :func:`scmib.io.write_h5ad_atomic`
(gzip level 1, :data:`scmib.io.COMPRESSION`);
this script writes one AnnData file (read whole into memory first) again with
each HDF5 compression setting and reads it back, in this process, one setting
at a time, and prints wall and CPU seconds of the write and the read, the file
size and the process's peak memory:

    python benchmarks/h5ad_compression.py DATASET.h5ad [--repeats 2]

gzip level 4 is h5py's default for ``compression="gzip"``; ``lzf`` is h5py's own
fast filter (readable only where h5py's LZF plugin is, not by R's rhdf5 by
default); ``none`` is anndata's default.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from functools import partial
from pathlib import Path

import anndata as ad
import pandas as pd

SETTINGS: dict[str, dict] = {
    "gzip 4": {"compression": "gzip"},
    "gzip 1": {"compression": "gzip", "compression_opts": 1},
    "lzf": {"compression": "lzf"},
    "none": {},
}


def timed(function) -> tuple[float, float]:
    """Wall and CPU seconds of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="an .h5ad file")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many writes and reads")
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}"
    )
    args = parser.parse_args()
    adata = ad.read_h5ad(args.input)
    print(f"{args.input}: {adata.n_obs} x {adata.n_vars}, layers {list(adata.layers)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.input.parent) as scratch:
        for name in args.settings.split(","):
            path = Path(scratch) / f"{name.replace(' ', '_')}.h5ad"
            options = SETTINGS[name]
            write = min(timed(partial(adata.write_h5ad, path, **options)) for _ in range(args.repeats))
            read = min(timed(partial(ad.read_h5ad, path)) for _ in range(args.repeats))
            rows.append(
                {
                    "setting": name,
                    "write wall s": round(write[0], 2),
                    "write CPU s": round(write[1], 2),
                    "read wall s": round(read[0], 2),
                    "read CPU s": round(read[1], 2),
                    "size MB": round(path.stat().st_size / 1e6, 1),
                }
            )
            path.unlink()
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = table.set_index("setting").loc["gzip 4"] if "gzip 4" in table["setting"].values else None
    if base is not None:
        table["write vs gzip 4"] = (table["write wall s"] / base["write wall s"]).round(2)
        table["read vs gzip 4"] = (table["read wall s"] / base["read wall s"]).round(2)
    print(table.to_string(index=False))
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")


if __name__ == "__main__":
    main()
