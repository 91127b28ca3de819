"""Batch scoring: predictions, deciles and segments written to ``clv_scores``."""
