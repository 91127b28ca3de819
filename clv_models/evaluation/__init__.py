"""Honest evaluation: metric definitions, the evaluation of trained models on held-out as-of
dates, and the HTML report."""
