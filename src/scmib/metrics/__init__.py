"""Metric kernels: small pure vectorised functions, one module per metric family."""
