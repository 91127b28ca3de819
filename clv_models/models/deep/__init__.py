"""The PyTorch deep regressor with a zero-inflated lognormal head."""

from clv_models.models.deep.estimator import DeepCLV, resolve_device

__all__ = ["DeepCLV", "resolve_device"]
