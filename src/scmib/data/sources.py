"""Where each dataset's source files live online, with their checksums.

Paths relative to the mirror follow ``shared/data`` (see its MANIFEST.md); the
URLs serve byte-identical files from the repositories the MANIFEST names.
"""

from __future__ import annotations

from scmib.data.cache import Source

_NEURIPS_REPO = "https://raw.githubusercontent.com/openproblems-bio/neurips2021_multimodal_viash"
_NEURIPS_COMMIT = {
    "cite": "75281c039ab98b459edbf52058a18597e710ed4d",
    "multiome": "edaa879332ce91af98f9a6eac3b3606b6fd860b2",
}
_STARTER_SHA256 = {
    ("cite", "rna"): "e111b6ad48f7236b9291dab56d0aa2ebcc1a5f8d1d402fa232d9bfe3d1af6f61",
    ("cite", "mod2"): "ad4df05778c27c930bdb9764452af0fa381cbd9b3fb8de669420148f20fb1fed",
    ("multiome", "rna"): "53efc0c9c9fb205587d18087e9010846c7532d8de23daea26ff5a410b029cea6",
    ("multiome", "mod2"): "f6d6368518a7e5ed0e19eb67f87370b017a1d98d735b9aedbad78dd93c84a068",
}


def neurips2021_starter_url(modality: str, folder: str, name: str) -> str:
    """URL of the organisers' starter file ``name`` in ``resources_test/<folder>`` for
    ``modality`` (``cite`` or ``multiome``), at the commit the MANIFEST names."""
    stem = f"openproblems_bmmc_{modality}_starter"
    return f"{_NEURIPS_REPO}/{_NEURIPS_COMMIT[modality]}/resources_test/{folder}/{stem}/{stem}.{name}"


def neurips2021_starter(modality: str, part: str) -> Source:
    """The organisers' starter common files (``part`` is ``rna`` or ``mod2``)."""
    return Source(
        relpath=f"neurips2021_starter/{modality}/common/output_{part}.h5ad",
        url=neurips2021_starter_url(modality, "common", f"output_{part}.h5ad"),
        sha256=_STARTER_SHA256[(modality, part)],
    )


_GEO = "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE194nnn/GSE194122/suppl"


def neurips2021_geo(modality: str) -> Source:
    """The full NeurIPS 2021 BMMC data from GEO GSE194122 (one h5ad with both modalities).

    The CITE checksum is the one scvi-tools' model hub pins for the same file; the
    Multiome checksum is not published anywhere we could verify, so that file is
    checked by being a readable AnnData with the expected slots instead; every
    run says so and prints the file's own sha256, which the loader's
    ``source_sha256`` argument then pins (``--datasets neurips2021_bmmc_multiome
    --component_args neurips2021_bmmc.source_sha256=...``: the argument is the
    loader's, so it would apply to the CITE file too).
    """
    name = f"GSE194122_openproblems_neurips2021_{modality}_BMMC_processed.h5ad.gz"
    sha = {"cite": "b9b50fade9349719cba23c97c6515d3501a32ee3735fe95fe51221d2e8a5f361"}
    return Source(relpath=f"neurips2021_geo/{name}", url=f"{_GEO}/{name}", sha256=sha.get(modality))


TRIANA2021 = Source(
    relpath="triana2021_bm_abseq/triana_data.rda",
    url="https://raw.githubusercontent.com/HsiaoChiLiao/EXTruvIIInb/"
    "eaeb835ce2420fd58e97a7019769c3e9cf898894/data/triana_data.rda",
    sha256="cf7f34f2cec98cdde536265d2ad49dc43e794bb14266d1fdd8b3ca41c66c0a37",
)

_SNARE = (
    "https://raw.githubusercontent.com/PeterZZQ/scMoMaT/"
    "dbd954de4b1be415cdea543baf2856df0fda6992/data/real/MOp_5batches"
)
SNARESEQ2_MOP = {
    name: Source(relpath=f"mop2021_snareseq2/{name}", url=f"{_SNARE}/{name}", sha256=sha)
    for name, sha in {
        "GxC1.npz": "44e48e6243954feafe0541f33b6b116093ca1ed4a25fc2f3ca146d89d1ab1bab",
        "RxC1.npz": "59d6f46dc4e908194bfc859b7773bc666d96ab74d9386b0a8f92d6b29dfcacf7",
        "genes.txt": "9d722d1d281f5ff152dc8a1fb257fec883b8aa28ea3f4f79783d0595dd8b4833",
        "regions.txt": "d77319b1ad8a51af2c97ffa5d23d5458e95356b1926e9ae4e0ab821cc7e492a3",
        "meta_c1.csv": "05ea13be8042f66ee51516ccf9fd28ca43972498a69748a9e89b5b1ca280b037",
    }.items()
}
