"""Explanations of the deep CLV model: integrated gradients of the expected CLV, in currency
units, from a baseline at the training mean."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from clv_models.models.base import top_drivers
from clv_models.models.deep.network import Inputs, ZILNNet
from clv_models.models.ziln import ziln_mean_torch

EXPLAIN_BATCH = 16_384  # interpolated rows per integrated-gradients pass


@dataclass
class Attributions:
    """Per-row attributions of the expected CLV to each input feature (currency units).

    Numeric features are attributed one by one; each categorical and each sequence column gets
    one aggregated value (summed over its embedding dimensions or its weeks). By completeness of
    integrated gradients a row's values sum to ``prediction - baseline`` up to the quadrature
    error of ``steps`` steps.
    """

    values: np.ndarray
    feature_names: list[str]
    baseline: float  # expected CLV at the baseline input (the training mean)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.feature_names)

    def top_drivers(self, k: int = 3) -> list[str]:
        """JSON text per row, as :func:`clv_models.models.base.top_drivers`."""
        return top_drivers(self.values, self.feature_names, k)

def integrated_gradients(net: ZILNNet, inputs: Inputs, baseline: tuple[torch.Tensor, ...],
                         steps: int, device: torch.device, emb_dims: list[int],
                         columns: tuple[list[str], list[str], list[str]],
                         feature_names: list[str]) -> Attributions:
    """Integrated gradients of the expected CLV per row and input feature.

    Parameters
    ----------
    net
        The network in evaluation mode, on ``device``.
    inputs
        The preprocessed rows.
    baseline
        The baseline input: numeric ``[p]``, embedding ``[e]``, sequence ``[weeks, c]``.
    steps
        Midpoint-rule steps along the path from the baseline to each row.
    device
        Where to compute.
    emb_dims
        The embedding width of each categorical column, in order.
    columns
        The numeric, categorical and sequence column names, in the network's order.
    feature_names
        The order of the returned attribution columns.
    """
    base_num, base_emb, base_seq = baseline
    numeric, categorical, sequence = columns
    with torch.no_grad():
        value0 = float(ziln_mean_torch(net.forward_embedded(
            base_num[None], base_emb[None], base_seq[None]))[0])
    alphas = ((torch.arange(steps, device=device) + 0.5) / steps)
    dims = np.cumsum([0, *emb_dims])
    chunk = max(1, EXPLAIN_BATCH // steps)
    parts = []
    for lo in range(0, len(inputs), chunk):
        b = inputs.take(slice(lo, lo + chunk)).to(device)
        with torch.no_grad():
            emb = net.embed(b.cat)
        path = []
        for x, x0 in ((b.num, base_num), (emb, base_emb), (b.seq, base_seq)):
            shape = (steps,) + (1,) * x.dim()
            xi = (x0 + alphas.view(shape) * (x - x0)).reshape(steps * len(x), *x.shape[1:])
            path.append(xi.requires_grad_(True))
        value = ziln_mean_torch(net.forward_embedded(*path))
        grads = torch.autograd.grad(value.sum(), path, allow_unused=True)
        attr = []
        for x, x0, g in zip((b.num, emb, b.seq), (base_num, base_emb, base_seq), grads,
                            strict=True):
            g = torch.zeros_like(x) if g is None else g.view(steps, *x.shape).mean(dim=0)
            attr.append((x - x0) * g)
        a_num, a_emb, a_seq = (a.detach().cpu().double().numpy() for a in attr)
        a_cat = np.stack([a_emb[:, dims[j]: dims[j + 1]].sum(axis=1)
                          for j in range(len(categorical))], axis=1) \
            if categorical else np.zeros((len(a_num), 0))
        a_seq = a_seq.sum(axis=1) if sequence else np.zeros((len(a_num), 0))
        parts.append(np.concatenate([a_num, a_cat, a_seq], axis=1))
    order = numeric + categorical + sequence
    values = np.concatenate(parts) if parts else np.zeros((0, len(order)))
    position = {name: j for j, name in enumerate(order)}
    values = values[:, [position[c] for c in feature_names]]
    return Attributions(values=values, feature_names=list(feature_names), baseline=value0)
