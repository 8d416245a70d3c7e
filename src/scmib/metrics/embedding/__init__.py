"""Joint-embedding metrics with scib 1.x semantics, one module per metric family.

Every function takes plain arrays (the embedding, labels, a kNN graph) and
returns a float; :mod:`scmib.metrics.embedding.inputs` reads and aligns the
task files. The functions are checked against scib on real cells in
``tests/test_joint_embedding_metrics.py``.
"""
