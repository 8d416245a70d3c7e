"""scmib: the single-cell multimodal integration benchmark.

The package holds everything shared by the components under ``components/``:
component specs and file contracts (:mod:`scmib.spec`, :mod:`scmib.contracts`),
the runtime every component script starts through (:mod:`scmib.component`),
data loading and normalisation (:mod:`scmib.data`), task processing
(:mod:`scmib.processing`), metric kernels (:mod:`scmib.metrics`) and the local
runner (:mod:`scmib.runner`).
"""

__version__ = "0.1.0"
