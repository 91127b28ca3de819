"""Benchmarks (``clv bench ...``): each measures against a reference in the same run and writes
one JSON document (:mod:`clv_models.bench.common`)."""
