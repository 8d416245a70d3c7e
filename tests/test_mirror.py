"""``scmib fetch-data``: a data folder like ``shared/data``, every file checked by its sha256."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from scmib.data.mirror import make_mirror


def read_sums(path: Path) -> dict[str, str]:
    return {
        name.removeprefix("./"): sha for sha, name in (line.split() for line in path.read_text().splitlines())
    }


def test_fetch_data_rebuilds_the_shared_data_folder(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", "fetch-data", str(folder), "--data_mirror", str(data_dir),
         "--cache_dir", str(tmp_path / "cache")],
        cwd=REPO, capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "42 files, each checked by its sha256" in proc.stdout
    # The same files as the folder the tests are written against, byte for byte (by their sums).
    assert read_sums(folder / "SHA256SUMS") == read_sums(data_dir / "SHA256SUMS")
    assert (folder / "MANIFEST.md").is_file()  # what the tests look for in $SCMIB_TEST_DATA
    monkeypatch.setenv("SCMIB_TEST_DATA", str(folder))
    from conftest import shared_data_dir

    assert shared_data_dir() == folder

    # Again: correct files are kept as they are; a damaged one is replaced.
    kept, damaged = folder / "triana2021_bm_abseq/triana_data.rda", folder / "mop2021_snareseq2/genes.txt"
    mtime = kept.stat().st_mtime_ns
    damaged.write_text("not the genes")
    make_mirror(folder, mirror=str(data_dir), cache_dir=str(tmp_path / "cache"))
    assert kept.stat().st_mtime_ns == mtime
    assert damaged.read_bytes() == (data_dir / "mop2021_snareseq2/genes.txt").read_bytes()
