"""A data mirror folder, in the layout of ``shared/data``, downloaded once.

``--data_mirror`` and the tests (``$SCMIB_TEST_DATA``, else ``../shared/data`` beside the
checkout) read such a folder: the files the bundled datasets' loaders fetch
(:mod:`scmib.data.sources`) and the NeurIPS 2021 organisers' own task files for the starter
cells, which the tests check the contracts and the task processor against and run every method
on. ``scmib fetch-data DIR`` downloads them
all (about 23 MB, each checked by its sha256) into that layout with a ``MANIFEST.md`` naming
where each came from, so a machine without ``shared/data`` can run the benchmark offline and the
tests. The full GEO data (profile ``full``, several GB) is not part of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scmib.data.cache import Source, fetch, sha256sum
from scmib.data.sources import SNARESEQ2_MOP, TRIANA2021, neurips2021_starter, neurips2021_starter_url
from scmib.io import atomic_path

#: The organisers' task files of the starter cells, as ``sha256sum`` lists them
#: (``<modality>/<task folder>/<file>``).
_TASK_FILES = """
c96dd74de6863863ab6e2d05fe2c264311a1659b35d690131f0201ab12054f23  cite/joint_embedding/mod1.h5ad
f8793523b4e5230c1fa7bd09128ed9687ffd8ee8082e7df83041e9a75c2c6e4f  cite/joint_embedding/mod2.h5ad
78f68b0721235b30cdba37b69f46da259f7a886522c90188486478610d93889a  cite/joint_embedding/prediction.h5ad
9c66794325719e2e2caab61efe5cdfc433d4ba474ee6f81d297cd8f159feb5b8  cite/joint_embedding/solution.h5ad
c196ade33e83d47c73e765ac1c966b5762369aa373645ca64b504f18f55f89b7  cite/match_modality/prediction.h5ad
b094d564c88d40e7bb5aaf02526d0d7996a199188373bcc85d5e8cbca91618cc  cite/match_modality/test_mod1.h5ad
b2a4f51cbd650465c4914425a01e6e00b6fbf3bf61d7f5b1387ee2c9c1e3c409  cite/match_modality/test_mod2.h5ad
75e9949481f5f4291b0774f43d5c3758b921f1951e0c76018e26c534a30ceda4  cite/match_modality/test_sol.h5ad
039ffdcc45dde1609de1a1ffc74c1cf813685a364e0fafdef05e900f5b8723df  cite/match_modality/train_mod1.h5ad
8443069e4f80414f5c781b00017d0444f979c36f7bde2d4ab2146541cb37005d  cite/match_modality/train_mod2.h5ad
884d092e2529b3985b150c8b42f32fabbd72c5f20a911180d197e3382c0d2be8  cite/match_modality/train_sol.h5ad
96aca42a1c0a10712327763c908308574bcb25a9dc910c95c16d3b552b3a9639  cite/predict_modality/prediction.h5ad
8300207f3478f4f4b931854a5337c6128433933f00e8ad662ef661b021af123d  cite/predict_modality/test_mod1.h5ad
76b1c4fd5370958db39426d16f6cf8f406a571baf1685aff408f2713ef794bab  cite/predict_modality/test_mod2.h5ad
059c7c9912f8aaee38694429816f6d0cb79452cb2e59389dee927dd2f964ebb4  cite/predict_modality/train_mod1.h5ad
df744042ae8cd61b7fcf8c8fabffe34cab6b87c5350907be9c617c6ef5d9d66e  cite/predict_modality/train_mod2.h5ad
c67ef8f63cd4de2ebcb13fbd563c08ad491c4c76a34ccbc125b45c3c70b35596  multiome/joint_embedding/mod1.h5ad
d59fac530b441ecfc9d0d8069944a4d900f874f3ef92634666c5a0752f2d95ed  multiome/joint_embedding/mod2.h5ad
6c53a885bcf3c4a3b71a88ce49bd3a331492032c8e6b0a30923160f307e6f171  multiome/joint_embedding/prediction.h5ad
e50ddaefae6f2197a036be34e36fb51dcce3703e4ac44babf616476aa1038db7  multiome/joint_embedding/solution.h5ad
5092f4288b21544ea1290a124dcfe7faae1b86a0e1ebfc5e0c7b56a4a7b602f7  multiome/match_modality/prediction.h5ad
023dfc6b3b51ac2ccf3c54abfd7b493b329f70198b1635439f169e84b05f562f  multiome/match_modality/test_mod1.h5ad
c8e3e13158f798ab407f4008c8aabc84919bf3ba6d6c6134fb9f0f08f165890b  multiome/match_modality/test_mod2.h5ad
4e18a2d4b17d677e6027e708313e751a16e083f1d54070053534f163bdb4f95c  multiome/match_modality/test_sol.h5ad
9743d2b69a8c0e9051960705899f69a91c4346bc4522d96af1b78d53f8deb008  multiome/match_modality/train_mod1.h5ad
36fc976b1f5bec10d8f7fbc27274c07f7e7a4047f45d9be3003b9bcd6ac1380d  multiome/match_modality/train_mod2.h5ad
434dfa211d5f8085a1185d25af86f50fcfbcab906d82ff1615261db73f0a5cb7  multiome/match_modality/train_sol.h5ad
ece8cfbff6b73ce73d0825b401a0807031c9b49ea669fea23a9789085b3d137c  multiome/predict_modality/prediction.h5ad
c5c790b34a10ffc615f3be4f208e39b3bd2228aeb07b07c9be184d14cb654f20  multiome/predict_modality/test_mod1.h5ad
bb9ffb0954b4a50a52b86d3949d885a86aa6e57ddf62b0e28466ec13e3ffc98d  multiome/predict_modality/test_mod2.h5ad
d1609adb433d2373bde165457da44447f4c2e0a89c989edb81cb3b65c498e237  multiome/predict_modality/train_mod1.h5ad
de443516a1d4c589deca405b2154f41b4ce6b4dc63549f3a3058bd99d433c231  multiome/predict_modality/train_mod2.h5ad
"""


def _task_file(relpath: str, sha256: str) -> Source:
    modality, task, name = relpath.split("/")
    url = neurips2021_starter_url(modality, task, name)
    return Source(relpath=f"neurips2021_starter/{relpath}", url=url, sha256=sha256)


def mirror_sources() -> list[Source]:
    """Every file of the tests' data folder, with its URL and sha256."""
    starter = [neurips2021_starter(m, part) for m in ("cite", "multiome") for part in ("rna", "mod2")]
    tasks = [_task_file(*reversed(line.split())) for line in _TASK_FILES.strip().splitlines()]
    return [*starter, *tasks, TRIANA2021, *SNARESEQ2_MOP.values()]


def make_mirror(folder: Path, mirror: str | None = None, cache_dir: str | None = None) -> list[Path]:
    """Download (or copy from ``mirror``) every file of :func:`mirror_sources` into ``folder``.

    Each file is checked by its sha256 and written atomically, so an interrupted call resumes where
    it stopped; files already there with the right hash are kept. ``SHA256SUMS`` and a
    ``MANIFEST.md`` listing each file's URL are written last: the tests take the folder for data
    only once they exist.
    """
    folder = Path(folder)
    written = []
    for source in mirror_sources():
        target = folder / source.relpath
        if not (target.is_file() and sha256sum(target) == source.sha256):
            local = fetch(source, mirror=mirror, cache_dir=cache_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(local, tmp)
        written.append(target)
    sums = "".join(f"{s.sha256}  ./{s.relpath}\n" for s in mirror_sources())
    rows = "".join(f"| `{s.relpath}` | {s.url} |\n" for s in mirror_sources())
    with atomic_path(folder / "SHA256SUMS") as tmp:
        Path(tmp).write_text(sums)
    with atomic_path(folder / "MANIFEST.md") as tmp:
        Path(tmp).write_text(
            "# scmib test data\n\nDownloaded by `scmib fetch-data`: each file checked by its sha256 "
            "(`sha256sum -c SHA256SUMS`). Provenance and licences: the README's Datasets section.\n\n"
            f"| file | source |\n|---|---|\n{rows}"
        )
    return written
