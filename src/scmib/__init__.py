"""scmib: the single-cell multimodal integration benchmark.

The package holds everything shared by the components under ``components/``:
component specs and file contracts (:mod:`scmib.spec`, :mod:`scmib.contracts`),
the runtime every component script starts through (:mod:`scmib.component`),
data loading and normalisation (:mod:`scmib.data`), task processing
(:mod:`scmib.processing`), metric kernels (:mod:`scmib.metrics`) and the local
runner (:mod:`scmib.runner`).
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# numba ignores OMP_NUM_THREADS and, once imported, its OpenMP layer sets its own thread
# count (every core by default) in the libgomp that torch's MKL shares: a job given
# OMP_NUM_THREADS=1 would then run torch's matrix products on every core, a second thread
# spinning at its barrier (LSL_AE trained 10x slower where another process held the other
# core of two). numba follows OMP_NUM_THREADS unless told otherwise; this runs before any
# scmib module imports numba (through scanpy) or torch. Only a count is passed on (numba
# refuses 0), and never once numba is loaded: it re-reads the variable at every compile and
# refuses a change after its threads started (a notebook that ran UMAP first).
_omp_threads = _os.environ.get("OMP_NUM_THREADS", "")
if _omp_threads.isdigit() and int(_omp_threads) > 0 and "numba" not in _sys.modules:
    _os.environ.setdefault("NUMBA_NUM_THREADS", _omp_threads)
