"""The deep CLV model: numeric features, categorical embeddings and a temporal convolution over
the weekly activity sequences, combined by an MLP that ends in a zero-inflated lognormal (ZILN)
head.

Inputs (the columns of the feature service ``clv_v2``) fall into three kinds, told apart by
their values unless given explicitly:

* **numeric** columns: log-compressed (``sign(x) * log1p(|x|)``; money and counts are
  heavy-tailed) and standardised with training statistics; missing values become the training
  mean (0 after standardisation);
* **categorical** columns (strings, e.g. ``country``, ``acquisition_channel``): an index into a
  vocabulary learned at fit time, index 0 reserved for missing, rare (< ``MIN_CATEGORY_COUNT``
  training rows) and unseen values, then an embedding;
* **sequence** columns (one array per row, e.g. ``weekly_net_revenue_52w`` and
  ``weekly_views_52w``, week 0 = the most recent): stacked into ``[n, weeks, channels]``,
  log-compressed, standardised per channel and encoded by a small 1-D temporal convolution
  (fast on CPU and GPU alike; its strided layers keep the position of each week, so recency
  matters) into ``sequence_dim`` numbers.

The network outputs ``(logit p, mu, sigma)`` (:mod:`clv_models.models.ziln`). Explanations are
integrated gradients of the expected CLV from a baseline at the training mean, in currency units.
"""

from __future__ import annotations

import copy
import json
import platform
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from clv_models import metrics
from clv_models.config import DeepConfig
from clv_models.features import SEQUENCE_SERVICE, sequence_array
from clv_models.models.base import (
    CLVModel,
    Features,
    Prediction,
    n_rows,
    numeric_matrix,
    object_column,
    top_drivers,
)
from clv_models.models.ziln import (
    split_outputs,
    ziln_loss,
    ziln_mean,
    ziln_mean_torch,
    ziln_quantile,
)

WEIGHTS_FILE = "weights.pt"
NORMALISATION_FILE = "normalisation.json"
MIN_CATEGORY_COUNT = 5  # rarer categories share the reserved "unknown" index 0
MAX_CATEGORIES = 1_000  # the most frequent ones; the rest are "unknown" too
IMPORTANCE_ROWS = 2_048  # validation rows (a seeded sample) behind the global importance
INFERENCE_BATCH = 16_384
EXPLAIN_BATCH = 16_384  # interpolated rows per integrated-gradients pass


def resolve_device(requested: str = "auto") -> torch.device:
    """``cuda`` when requested or available (for ``auto``), else ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("deep.device is 'cuda' but torch sees no CUDA device "
                           "(see README, 'GPU' for installing a CUDA build of torch)")
    return torch.device(requested)


# -- network ----------------------------------------------------------------------------------
@dataclass
class Inputs:
    """The network's three input blocks, row-aligned.

    ``num``: standardised numeric features ``float32 [n, p]``; ``cat``: category indices
    ``int64 [n, k]`` (0 = unknown); ``seq``: standardised sequences ``float32 [n, weeks, c]``.
    """

    num: torch.Tensor
    cat: torch.Tensor
    seq: torch.Tensor

    def __len__(self) -> int:
        return len(self.num)

    def take(self, idx: torch.Tensor | slice) -> Inputs:
        return Inputs(self.num[idx], self.cat[idx], self.seq[idx])

    def to(self, device: torch.device, non_blocking: bool = False) -> Inputs:
        return Inputs(*(t.to(device, non_blocking=non_blocking)
                        for t in (self.num, self.cat, self.seq)))

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in (self.num, self.cat, self.seq))


class SequenceEncoder(nn.Module):
    """1-D temporal convolution over ``[n, weeks, channels]`` to a ``out_dim`` vector.

    Kernel-4, stride-2 convolutions halve the time axis while it is at least 8 long (52 -> 26 ->
    13 -> 6 weeks; receptive field 22 weeks), then a linear layer over the flattened map, so the
    encoder sees both patterns and when they happened. Strided from the first layer because
    small convolutions are slow on the CPU (about 2x faster than a stride-1 first layer there;
    a GRU of hidden 32 was 6x slower).
    """

    def __init__(self, channels_in: int, length: int, channels: int, out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = channels_in
        while length >= 8 or (not layers and length >= 2):
            layers += [nn.Conv1d(width, channels, 4, stride=2, padding=1), nn.GELU()]
            width, length = channels, length // 2
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Sequential(nn.Linear(width * length, out_dim), nn.GELU())

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(seq.transpose(1, 2)).flatten(1))


class ZILNNet(nn.Module):
    """Numeric features, embeddings and the sequence encoding, concatenated, through an MLP
    (Linear, LayerNorm, GELU, dropout) into three ZILN outputs.

    With no categoricals and no sequences it is the plain MLP of earlier versions (same
    parameter names), so their saved weights still load.
    """

    def __init__(self, n_numeric: int, hidden: list[int], dropout: float,
                 cardinalities: list[int] | None = None,
                 embedding_dims: list[int] | None = None, sequence_channels: int = 0,
                 sequence_length: int = 0, conv_channels: int = 16,
                 sequence_dim: int = 32) -> None:
        super().__init__()
        cardinalities, embedding_dims = cardinalities or [], embedding_dims or []
        self.embeddings = nn.ModuleList(nn.Embedding(c, d)
                                        for c, d in zip(cardinalities, embedding_dims,
                                                        strict=True))
        self.sequence = (SequenceEncoder(sequence_channels, sequence_length, conv_channels,
                                         sequence_dim) if sequence_channels else None)
        width = n_numeric + sum(embedding_dims) + (sequence_dim if self.sequence else 0)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 3)

    def embed(self, cat: torch.Tensor) -> torch.Tensor:
        """Concatenated embeddings ``[n, sum(dims)]`` of the category indices."""
        if not len(self.embeddings):
            return torch.zeros((len(cat), 0), device=cat.device)
        return torch.cat([e(cat[:, j]) for j, e in enumerate(self.embeddings)], dim=1)

    def forward_embedded(self, num: torch.Tensor, emb: torch.Tensor,
                         seq: torch.Tensor) -> torch.Tensor:
        """Outputs from already embedded categoricals (integrated gradients move in that
        continuous space)."""
        parts = [num, emb]
        if self.sequence is not None:
            parts.append(self.sequence(seq))
        return self.head(self.body(torch.cat(parts, dim=1)))

    def forward(self, num: torch.Tensor, cat: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(num, self.embed(cat), seq)


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


# -- estimator --------------------------------------------------------------------------------
class DeepCLV(CLVModel):
    """Deep regressor with a ZILN head: expected CLV, ``p_purchase`` and quantiles.

    Numeric, categorical and sequence inputs are prepared as the module docstring says, with
    statistics and vocabularies learned at fit time and saved with the weights. Training uses
    AdamW with early stopping on the validation loss (a later as-of date) and restores the best
    epoch. On CUDA it trains in bfloat16 autocast with the whole training set on the GPU when it
    fits; on CPU in float32. Seeded: the same data and seed give the same weights on CPU.
    Inference runs in batches, in float32, on CUDA when present.

    After fitting, ``metadata["feature_importance"]`` holds the mean absolute integrated-gradient
    attribution (currency units of expected CLV) of each input feature over a seeded sample of
    up to ``IMPORTANCE_ROWS`` validation rows.

    Parameters
    ----------
    params
        Hyper-parameters; see :class:`clv_models.config.DeepConfig`.
    seed
        Seed for weight initialisation, dropout and batch order.
    categorical_features, sequence_features
        Column names of those kinds; ``None`` tells them apart by value (strings are
        categorical, arrays/lists are sequences, everything else is numeric).
    """

    name = "deep_ziln"
    feature_service = SEQUENCE_SERVICE

    def __init__(self, params: DeepConfig | None = None, seed: int = 0,
                 categorical_features: list[str] | None = None,
                 sequence_features: list[str] | None = None) -> None:
        self.params = params or DeepConfig()
        self.seed = seed
        self.categorical_features = categorical_features
        self.sequence_features = sequence_features
        self.feature_names: list[str] = []
        self.metadata = {}

    # -- preprocessing ------------------------------------------------------------------------
    def _learn_preprocessing(self, X: pd.DataFrame) -> None:
        """Column kinds, normalisation statistics and vocabularies from the training rows."""
        self.feature_names = list(X.columns)
        kinds = {c: _column_kind(X[c]) for c in X.columns}
        for c in self.categorical_features or []:
            kinds[c] = "categorical"
        for c in self.sequence_features or []:
            kinds[c] = "sequence"
        self._numeric = [c for c in X.columns if kinds[c] == "numeric"]
        self._categorical = [c for c in X.columns if kinds[c] == "categorical"]
        self._sequence = [c for c in X.columns if kinds[c] == "sequence"]

        z = _compress(X[self._numeric].to_numpy(dtype=np.float64, na_value=np.nan))
        self._mean, self._std = _nan_stats(z, axis=0)

        self._vocab = {c: _vocabulary(X[c]) for c in self._categorical}
        self._emb_dims = [max(1, min(self.params.embedding_dim, (len(v["values"]) + 2) // 2))
                          for v in self._vocab.values()]

        self._seq_len = max((_first_length(X[c]) for c in self._sequence), default=0)
        if self._sequence:
            raw = _compress(self._stack_sequences(X))  # float32, no NaN (missing weeks are 0)
            flat = raw.reshape(-1, raw.shape[2])
            self._seq_mean = flat.mean(axis=0, dtype=np.float64)
            self._seq_std = flat.std(axis=0, dtype=np.float64)
            self._seq_std[~(self._seq_std > 1e-9)] = 1.0
            self._seq_baseline = ((raw.mean(axis=0, dtype=np.float64) - self._seq_mean)
                                  / self._seq_std).astype(np.float32)
        else:
            self._seq_mean = self._seq_std = np.zeros(0)
            self._seq_baseline = np.zeros((0, 0), dtype=np.float32)

    def _stack_sequences(self, X: Features) -> np.ndarray:
        return np.stack([sequence_array(object_column(X, c), self._seq_len)
                         for c in self._sequence], axis=2)

    def _prepare(self, X: Features) -> Inputs:
        """The network's input tensors (CPU) for the rows of ``X`` (a DataFrame or a mapping
        of columns: the same tensors either way)."""
        self._require_columns(X)
        n = n_rows(X)
        z = (_compress(numeric_matrix(X, self._numeric)) - self._mean) / self._std
        num = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        cat = np.zeros((n, len(self._categorical)), dtype=np.int64)
        for j, c in enumerate(self._categorical):
            cat[:, j] = _encode(object_column(X, c), self._codes(c))
        if self._sequence:
            s = ((_compress(self._stack_sequences(X)) - self._seq_mean.astype(np.float32))
                 / self._seq_std.astype(np.float32))
            seq = np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            seq = np.zeros((n, 0, 0), dtype=np.float32)
        return Inputs(torch.from_numpy(num), torch.from_numpy(cat), torch.from_numpy(seq))

    def _build_net(self) -> ZILNNet:
        p = self.params
        return ZILNNet(len(self._numeric), list(p.hidden), p.dropout,
                       cardinalities=[len(v["values"]) + 1 for v in self._vocab.values()],
                       embedding_dims=self._emb_dims, sequence_channels=len(self._sequence),
                       sequence_length=self._seq_len, conv_channels=p.conv_channels,
                       sequence_dim=p.sequence_dim)

    # -- training -----------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> DeepCLV:
        """Train on ``(X, y)``, stopping early on ``(X_val, y_val)`` (required)."""
        if X_val is None or y_val is None:
            raise ValueError("DeepCLV.fit needs a validation set for early stopping")
        p = self.params
        torch.manual_seed(self.seed)
        device = resolve_device(p.device)
        self._learn_preprocessing(X)
        y = np.asarray(y, dtype=np.float32)
        y_val = np.asarray(y_val, dtype=np.float32)
        train, val = self._prepare(X), self._prepare(X_val)
        yt, yv = torch.from_numpy(y), torch.from_numpy(y_val)
        on_device = device.type == "cpu" or _fits_on_gpu(train.nbytes + yt.nbytes, device)
        if on_device:
            train, yt = train.to(device), yt.to(device)
        val_d, yv_d = val.to(device), yv.to(device)

        net = self._build_net().to(device)
        _init_head(net, y)
        opt = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        amp = device.type == "cuda"
        gen = torch.Generator().manual_seed(self.seed)
        best, best_state, best_epoch, history = float("inf"), None, -1, []
        start = time.perf_counter()
        epochs_run = 0
        for epoch in range(p.epochs):
            net.train()
            order = torch.randperm(len(yt), generator=gen)
            if on_device:
                order = order.to(device)
            for lo in range(0, len(order), p.batch_size):
                idx = order[lo: lo + p.batch_size]
                xb = train.take(idx).to(device, non_blocking=True)
                yb = yt[idx].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(xb.num, xb.cat, xb.seq)
                loss = ziln_loss(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
            epochs_run += 1
            loss_val = _loss(net, val_d, yv_d, amp)
            history.append(round(loss_val, 6))
            if loss_val < best - 1e-5 or best_state is None:
                best, best_epoch = loss_val, epoch
                best_state = copy.deepcopy(net.state_dict())
            elif epoch - best_epoch >= p.patience:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        net.load_state_dict(best_state)
        self.net = net.to("cpu").eval()
        _fill_unseen_unknown(self.net, self._vocab)
        self.device = device

        pred = self._predict_inputs(val)
        sample = np.random.default_rng(self.seed).permutation(len(val))[:IMPORTANCE_ROWS]
        importance = np.abs(self._attributions(val.take(torch.from_numpy(np.sort(sample))))
                            .values).mean(axis=0) if len(sample) else np.zeros(0)
        self.metadata = {
            "params": vars(self.params), "seed": self.seed, "device": str(device),
            "feature_service": self.feature_service,
            "numeric_features": self._numeric, "categorical_features": self._categorical,
            "sequence_features": self._sequence, "sequence_length": self._seq_len,
            "parameters": sum(t.numel() for t in self.net.parameters()),
            "epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_loss": best,
            "val_loss_history": history, "train_rows": len(y),
            "validation_metrics": {
                "ziln_loss": best,
                "normalized_gini": _round(metrics.normalized_gini(y_val, pred.predicted_clv)),
                "auc": _round(metrics.roc_auc(y_val > 0, pred.p_purchase)),
                "total_ratio": _round(float(pred.predicted_clv.sum()
                                            / max(float(y_val.sum()), 1e-9)))},
            "feature_importance": dict(sorted(
                ((n, round(float(v), 6)) for n, v in zip(self.feature_names, importance,
                                                         strict=True)),
                key=lambda kv: -kv[1])),
            "feature_importance_rows": int(len(sample)),
            "train_seconds": round(seconds, 3),
            "samples_per_second": round(len(y) * epochs_run / max(seconds, 1e-9), 1),
            "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(),
        }
        return self

    # -- inference ----------------------------------------------------------------------------
    def _inference_device(self) -> torch.device:
        """CUDA when present (unless the model is pinned to the CPU), in float32."""
        if self.params.device != "cpu" and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _eval_net(self, device: torch.device) -> ZILNNet:
        """The network on ``device`` in eval mode; moved (a walk over every parameter) only
        when the network or the device changed since the last call, since that walk costs
        more than a one-row forward pass."""
        placed = getattr(self, "_placed", None)
        if placed is None or placed[0] is not self.net or placed[1] != device:
            self.net.to(device).eval()
            self._placed = (self.net, device)
        return self.net

    def _codes(self, column: str) -> dict[str, int]:
        """``{value: index}`` of a categorical column's vocabulary (index 0: unknown), built
        once per vocabulary."""
        cache = self.__dict__.setdefault("_code_maps", {})
        values = self._vocab[column]["values"]
        hit = cache.get(column)
        if hit is None or hit[0] is not values:
            hit = cache[column] = (values, {v: i for i, v in enumerate(values, start=1)})
        return hit[1]

    @torch.no_grad()
    def _raw_outputs(self, inputs: Inputs) -> np.ndarray:
        device = self._inference_device()
        net = self._eval_net(device)
        outs = []
        for lo in range(0, len(inputs), INFERENCE_BATCH):
            b = inputs.take(slice(lo, lo + INFERENCE_BATCH)).to(device)
            logit, mu, sigma = split_outputs(net(b.num, b.cat, b.seq).float())
            outs.append(torch.stack([logit, mu, sigma], dim=1).cpu())
        if not outs:
            return np.zeros((0, 3))
        return torch.cat(outs).numpy().astype(np.float64)

    def raw_outputs(self, X: Features) -> np.ndarray:
        """(logit, mu, sigma) per row, computed in batches."""
        return self._raw_outputs(self._prepare(X))

    def _predict_inputs(self, inputs: Inputs) -> Prediction:
        logit, mu, sigma = self._raw_outputs(inputs).T
        return Prediction(
            predicted_clv=ziln_mean(logit, mu, sigma),
            p_purchase=1 / (1 + np.exp(-logit)),
            clv_p10=ziln_quantile(0.1, logit, mu, sigma),
            clv_p50=ziln_quantile(0.5, logit, mu, sigma),
            clv_p90=ziln_quantile(0.9, logit, mu, sigma),
        )

    def predict(self, X: Features, explain: bool = False) -> Prediction:
        """Expected CLV, ``p_purchase`` and the p10/p50/p90 quantiles of the ZILN mixture;
        ``explain`` adds the top 3 drivers by integrated gradients (see :meth:`attributions`)."""
        inputs = self._prepare(X)
        pred = self._predict_inputs(inputs)
        if explain:
            pred.top_drivers = self._attributions(inputs).top_drivers()
        return pred

    # -- explanations -------------------------------------------------------------------------
    def attributions(self, X: Features, steps: int | None = None) -> Attributions:
        """Integrated gradients of the expected CLV per row and input feature.

        The path runs from a baseline at the training mean (0 for the standardised numeric
        features, the per-week mean of the standardised sequences, the frequency-weighted mean
        embedding of each categorical) to the row's input, with ``steps`` midpoint-rule steps
        (default ``params.explain_steps``). Values are in currency units of expected CLV and
        sum, per row, to about ``predicted_clv - baseline``.
        """
        return self._attributions(self._prepare(X), steps)

    def _baseline(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The baseline input: numeric ``[p]``, embedding ``[e]``, sequence ``[weeks, c]``."""
        num = torch.zeros(len(self._numeric), device=device)
        embs = []
        for emb, vocab in zip(self.net.embeddings, self._vocab.values(), strict=True):
            w = torch.tensor([vocab["unknown_count"], *vocab["counts"]], dtype=torch.float32)
            w = w / w.sum() if w.sum() > 0 else torch.full_like(w, 1 / len(w))
            embs.append(w.to(device) @ emb.weight.detach())
        emb = torch.cat(embs) if embs else torch.zeros(0, device=device)
        return num, emb, torch.from_numpy(self._seq_baseline).to(device)

    def _attributions(self, inputs: Inputs, steps: int | None = None) -> Attributions:
        steps = max(1, int(steps or self.params.explain_steps))
        device = self._inference_device()
        net = self._eval_net(device)
        base_num, base_emb, base_seq = self._baseline(device)
        with torch.no_grad():
            baseline = float(ziln_mean_torch(net.forward_embedded(
                base_num[None], base_emb[None], base_seq[None]))[0])
        alphas = ((torch.arange(steps, device=device) + 0.5) / steps)
        dims = np.cumsum([0, *self._emb_dims])
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
                              for j in range(len(self._categorical))], axis=1) \
                if self._categorical else np.zeros((len(a_num), 0))
            a_seq = a_seq.sum(axis=1) if self._sequence else np.zeros((len(a_num), 0))
            parts.append(np.concatenate([a_num, a_cat, a_seq], axis=1))
        order = self._numeric + self._categorical + self._sequence
        values = np.concatenate(parts) if parts else np.zeros((0, len(order)))
        position = {name: j for j, name in enumerate(order)}
        values = values[:, [position[c] for c in self.feature_names]]
        return Attributions(values=values, feature_names=list(self.feature_names),
                            baseline=baseline)

    # -- persistence --------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save(state, directory / WEIGHTS_FILE)
        (directory / NORMALISATION_FILE).write_text(json.dumps({
            "feature_names": self.feature_names, "numeric_features": self._numeric,
            "categorical_features": self._categorical, "sequence_features": self._sequence,
            "mean": self._mean.tolist(), "std": self._std.tolist(),
            "vocabularies": self._vocab, "embedding_dims": self._emb_dims,
            "sequence_length": self._seq_len, "sequence_mean": self._seq_mean.tolist(),
            "sequence_std": self._seq_std.tolist(),
            "sequence_baseline": self._seq_baseline.tolist(),
            "hidden": list(self.params.hidden), "dropout": self.params.dropout,
            "conv_channels": self.params.conv_channels,
            "sequence_dim": self.params.sequence_dim}, indent=2))

    def _load_weights(self, directory: Path) -> None:
        norm = json.loads((directory / NORMALISATION_FILE).read_text())
        self.params = DeepConfig(**self.metadata.get("params", {}))
        self.seed = self.metadata.get("seed", 0)
        # Artefacts from before categoricals and sequences: every feature is numeric.
        self._numeric = norm.get("numeric_features", self.feature_names)
        self._categorical = norm.get("categorical_features", [])
        self._sequence = norm.get("sequence_features", [])
        self.categorical_features, self.sequence_features = self._categorical, self._sequence
        self._mean = np.asarray(norm["mean"])
        self._std = np.asarray(norm["std"])
        self._vocab = norm.get("vocabularies", {})
        self._emb_dims = norm.get("embedding_dims", [])
        self._seq_len = norm.get("sequence_length", 0)
        self._seq_mean = np.asarray(norm.get("sequence_mean", []))
        self._seq_std = np.asarray(norm.get("sequence_std", []))
        self._seq_baseline = np.asarray(norm.get("sequence_baseline", np.zeros((0, 0))),
                                        dtype=np.float32).reshape(self._seq_len,
                                                                  len(self._sequence))
        self.params.hidden, self.params.dropout = norm["hidden"], norm["dropout"]
        self.params.conv_channels = norm.get("conv_channels", self.params.conv_channels)
        self.params.sequence_dim = norm.get("sequence_dim", self.params.sequence_dim)
        self.net = self._build_net()
        # weights_only=True: tensors only, never arbitrary pickled objects.
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()


# -- helpers ----------------------------------------------------------------------------------
def _compress(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: amounts and counts are heavy-tailed."""
    return np.sign(values) * np.log1p(np.abs(values))


def _nan_stats(z: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ignoring NaN; an all-null or constant column gets 0, 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(z, axis=axis), np.nanstd(z, axis=axis)
    std[~(std > 1e-9)] = 1.0
    return np.nan_to_num(mean), std


def _column_kind(col: pd.Series) -> str:
    """``numeric``, ``categorical`` (strings) or ``sequence`` (a list/array per row), by the
    dtype or else the first present value. An all-missing object column (e.g. ``country``
    without a customers table) is categorical: every row maps to "unknown", and values that
    appear later are looked up instead of failing a numeric conversion."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return "numeric"
    for v in col:
        if isinstance(v, (list, tuple, np.ndarray)):
            return "sequence"
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        return "numeric" if isinstance(v, (int, float, np.number)) else "categorical"
    return "categorical"


def _first_length(col: pd.Series) -> int:
    for v in col:
        if isinstance(v, (list, tuple, np.ndarray)):
            return len(v)
    return 0


def _vocabulary(col: pd.Series) -> dict:
    """Values seen at least ``MIN_CATEGORY_COUNT`` times (at most ``MAX_CATEGORIES``, most
    frequent first, then by value), their counts, and how many rows map to "unknown" (index 0:
    missing or rare values)."""
    counts = col.dropna().astype(str).value_counts()
    counts = counts[counts >= MIN_CATEGORY_COUNT]
    counts = counts.reset_index().set_axis(["value", "n"], axis=1)
    counts = counts.sort_values(["n", "value"], ascending=[False, True]).head(MAX_CATEGORIES)
    return {"values": counts["value"].tolist(), "counts": [int(n) for n in counts["n"]],
            "unknown_count": int(len(col) - counts["n"].sum())}


def _encode(col: Sequence[object], values: Sequence[str] | Mapping[str, int]) -> np.ndarray:
    """Index of each value (as text) in the vocabulary ``values`` plus 1; 0 for missing (None,
    NaN, NA) and unseen values. ``values`` may be given as ``{value: index + 1}`` already
    (:meth:`DeepCLV._codes`, built once per vocabulary)."""
    codes = values if isinstance(values, Mapping) else {v: i for i, v in
                                                         enumerate(values, start=1)}
    return np.fromiter((0 if _is_missing(v) else codes.get(str(v), 0) for v in col),
                       dtype=np.int64, count=len(col))


def _is_missing(value: object) -> bool:
    """Whether a categorical value is missing, as pandas' ``isna`` says for a scalar."""
    if value is None or isinstance(value, str):
        return value is None
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _fill_unseen_unknown(net: ZILNNet, vocab: dict) -> None:
    """Give an "unknown" index no training row used the frequency-weighted mean embedding, so
    an unseen category is treated as an average one rather than by a random vector."""
    with torch.no_grad():
        for emb, v in zip(net.embeddings, vocab.values(), strict=True):
            if v["unknown_count"] == 0 and v["counts"]:
                w = torch.tensor(v["counts"], dtype=torch.float32)
                emb.weight[0] = (w / w.sum()) @ emb.weight[1:]


@torch.no_grad()
def _loss(net: nn.Module, x: Inputs, y: torch.Tensor, amp: bool) -> float:
    net.eval()
    total = 0.0
    for lo in range(0, len(y), INFERENCE_BATCH):
        b = x.take(slice(lo, lo + INFERENCE_BATCH))
        with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(b.num, b.cat, b.seq)
        total += float(ziln_loss(out, y[lo: lo + INFERENCE_BATCH])) * len(out)
    return total / max(len(y), 1)


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _fits_on_gpu(nbytes: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes * 2 < free * 0.5


def _init_head(net: ZILNNet, y: np.ndarray) -> None:
    """Start at the marginal distribution: logit of the purchase share, mean log spend."""
    positive = y[y > 0]
    share = float(np.clip((y > 0).mean(), 1e-3, 1 - 1e-3))
    with torch.no_grad():
        net.head.weight.mul_(0.1)
        net.head.bias.copy_(torch.tensor([
            np.log(share / (1 - share)),
            float(np.log(positive).mean()) if len(positive) else 0.0,
            float(np.log(np.expm1(max(np.log(positive).std(), 0.1)))) if len(positive) > 1
            else 0.0,
        ]))
