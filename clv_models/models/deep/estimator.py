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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from clv_models.core import metrics
from clv_models.core.config import DeepConfig
from clv_models.features.store import SEQUENCE_SERVICE, sequence_array
from clv_models.models.base import (
    CLVModel,
    Features,
    Prediction,
    n_rows,
    numeric_matrix,
    object_column,
)
from clv_models.models.btyd import BTYD_INPUTS, DATE_COLUMN, BTYDInputs, input_names
from clv_models.models.deep.explain import Attributions, integrated_gradients
from clv_models.models.deep.network import (
    INFERENCE_BATCH,
    Inputs,
    ZILNNet,
    fill_unseen_unknown,
    fits_on_gpu,
    init_head,
    resolve_device,
    validation_loss,
)
from clv_models.models.deep.preprocessing import (
    column_kind,
    compress,
    encode,
    first_length,
    nan_stats,
    vocabulary,
)
from clv_models.models.ziln import (
    split_outputs,
    ziln_loss,
    ziln_mean,
    ziln_mixture_quantile,
)

WEIGHTS_FILE = "weights.pt"
NORMALISATION_FILE = "normalisation.json"
IMPORTANCE_ROWS = 2_048  # validation rows (a seeded sample) behind the global importance


@dataclass(frozen=True)
class EpochProgress:
    """Where training stands after an epoch (for progress displays).

    ``seconds_left`` assumes every remaining epoch runs; early stopping may end sooner.
    """

    epoch: int
    max_epochs: int
    validation_loss: float
    best_epoch: int
    seconds: float
    stopping: bool

    @property
    def seconds_left(self) -> float:
        return 0.0 if self.stopping else self.seconds / self.epoch * (self.max_epochs - self.epoch)


class DeepCLV(CLVModel):
    """Deep regressor with a ZILN head: expected CLV, ``p_purchase`` and quantiles.

    Numeric, categorical and sequence inputs are prepared as the module docstring says, with
    statistics and vocabularies learned at fit time and saved with the weights. Training uses
    AdamW with early stopping on the validation loss (a later as-of date) and restores the best
    epoch. On CUDA it trains in bfloat16 autocast with the whole training set on the GPU when it
    fits; on CPU in float32. Seeded: the same data and seed give the same weights on CPU.
    Inference runs in batches, in float32, on CUDA when present.

    With ``params.ensemble`` > 1, that many networks are trained on the same inputs from
    successive seeds (``seed``, ``seed + 1``, ...) and the forecast is their equal-weight
    mixture: the mean and ``p_purchase`` are the members' averages, the quantiles those of the
    mixture, the attributions the members' averages. On few customers one network's forecast
    depends on its seed; the mixture's varies less.

    With ``params.btyd_inputs`` the network also takes the BG/NBD + Gamma-Gamma forecast of each
    row as numeric inputs (:class:`~clv_models.models.btyd.BTYDInputs`, fitted per as-of date on
    the history before it, as for XGBoost): on few customers it then refines the BTYD forecast
    instead of relearning the purchase process.

    After fitting, ``metadata["feature_importance"]`` holds the mean absolute integrated-gradient
    attribution (currency units of expected CLV) of each input over a seeded sample of up to
    ``IMPORTANCE_ROWS`` validation rows.

    Parameters
    ----------
    params
        Hyper-parameters; see :class:`clv_models.core.config.DeepConfig`.
    seed
        Seed for weight initialisation, dropout and batch order.
    categorical_features, sequence_features
        Column names of those kinds; ``None`` tells them apart by value (strings are
        categorical, arrays/lists are sequences, everything else is numeric).
    horizon_days
        The prediction horizon (of the BTYD inputs).
    """

    name = "deep_ziln"
    feature_service = SEQUENCE_SERVICE
    takes_dates = True

    def __init__(self, params: DeepConfig | None = None, seed: int = 0,
                 categorical_features: list[str] | None = None,
                 sequence_features: list[str] | None = None,
                 on_epoch: Callable[[EpochProgress], None] | None = None,
                 horizon_days: int = 180) -> None:
        self.params = params or DeepConfig()
        self.seed = seed
        self.categorical_features = categorical_features
        self.sequence_features = sequence_features
        self.on_epoch = on_epoch
        self.horizon_days = horizon_days
        self.feature_names: list[str] = []
        self.btyd: BTYDInputs | None = None
        self.metadata = {}

    @property
    def input_names(self) -> list[str]:
        """The network's inputs: the features, then the BTYD inputs when used."""
        return input_names(self.feature_names, self.btyd)

    def _with_btyd(self, X: Features, values: np.ndarray | None = None) -> Features:
        """``X`` with the BTYD input columns (``values``, else from the stored fit) added."""
        if self.btyd is None:
            return X
        values = self.btyd.transform(X) if values is None else values
        columns = {c: values[:, j] for j, c in enumerate(BTYD_INPUTS)}
        if isinstance(X, pd.DataFrame):
            return X.assign(**columns)
        return {**X, **columns}

    # -- preprocessing ------------------------------------------------------------------------
    def _learn_preprocessing(self, X: pd.DataFrame) -> None:
        """Column kinds, normalisation statistics and vocabularies from the training rows
        (``X`` holds the network's inputs, BTYD inputs included)."""
        kinds = {c: column_kind(X[c]) for c in X.columns}
        for c in self.categorical_features or []:
            kinds[c] = "categorical"
        for c in self.sequence_features or []:
            kinds[c] = "sequence"
        self._numeric = [c for c in X.columns if kinds[c] == "numeric"]
        self._categorical = [c for c in X.columns if kinds[c] == "categorical"]
        self._sequence = [c for c in X.columns if kinds[c] == "sequence"]

        z = compress(X[self._numeric].to_numpy(dtype=np.float64, na_value=np.nan))
        self._mean, self._std = nan_stats(z, axis=0)

        self._vocab = {c: vocabulary(X[c]) for c in self._categorical}
        self._emb_dims = [max(1, min(self.params.embedding_dim, (len(v["values"]) + 2) // 2))
                          for v in self._vocab.values()]

        self._seq_len = max((first_length(X[c]) for c in self._sequence), default=0)
        if self._sequence:
            raw = compress(self._stack_sequences(X))  # float32, no NaN (missing weeks are 0)
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

    def _prepare(self, X: Features, btyd: np.ndarray | None = None) -> Inputs:
        """The network's input tensors (CPU) for the rows of ``X`` (a DataFrame or a mapping
        of columns: the same tensors either way), with the BTYD inputs ``btyd`` (by default
        from the stored fit) when the model uses them."""
        self._require_columns(X)
        X = self._with_btyd(X, btyd)
        n = n_rows(X)
        z = (compress(numeric_matrix(X, self._numeric)) - self._mean) / self._std
        num = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        cat = np.zeros((n, len(self._categorical)), dtype=np.int64)
        for j, c in enumerate(self._categorical):
            cat[:, j] = encode(object_column(X, c), self._codes(c))
        if self._sequence:
            s = ((compress(self._stack_sequences(X)) - self._seq_mean.astype(np.float32))
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
        """Train on ``(X, y)``, stopping early on ``(X_val, y_val)`` (required).

        ``X`` may carry an ``as_of_date`` column (one cross-section per date): the BTYD inputs
        are then fitted per date; it is never an input itself.
        """
        if X_val is None or y_val is None:
            raise ValueError("DeepCLV.fit needs a validation set for early stopping")
        p = self.params
        device = resolve_device(p.device)
        self.feature_names = [c for c in X.columns if c != DATE_COLUMN]
        X_val = X_val[self.feature_names]
        self.btyd, fit_btyd = BTYDInputs.for_learner(p.btyd_inputs, self.horizon_days, X, X_val)
        X = X[self.feature_names]
        self._learn_preprocessing(self._with_btyd(X, fit_btyd))
        y = np.asarray(y, dtype=np.float32)
        y_val = np.asarray(y_val, dtype=np.float32)
        train, val = self._prepare(X, fit_btyd), self._prepare(X_val)
        yt, yv = torch.from_numpy(y), torch.from_numpy(y_val)
        on_device = device.type == "cpu" or fits_on_gpu(train.nbytes + yt.nbytes, device)
        if on_device:
            train, yt = train.to(device), yt.to(device)
        val_d, yv_d = val.to(device), yv.to(device)

        members = max(1, int(p.ensemble))
        start = time.perf_counter()
        runs = [self._train_member(self.seed + k, k, members, train, yt, val_d, yv_d, device,
                                   on_device, y) for k in range(members)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        self.nets = [run.pop("net") for run in runs]
        self.device = device
        best, best_epoch, history = (runs[0]["best_val_loss"], runs[0]["best_epoch"],
                                     runs[0]["val_loss_history"])
        epochs_run = sum(run["epochs_run"] for run in runs)

        pred = self._predict_inputs(val)
        sample = np.random.default_rng(self.seed).permutation(len(val))[:IMPORTANCE_ROWS]
        importance = np.abs(self._attributions(val.take(torch.from_numpy(np.sort(sample))))
                            .values).mean(axis=0) if len(sample) else np.zeros(0)
        self.metadata = {
            "params": vars(self.params), "seed": self.seed, "device": str(device),
            "horizon_days": self.horizon_days,
            "btyd_inputs": None if self.btyd is None else self.btyd.state(),
            "feature_service": self.feature_service,
            "numeric_features": self._numeric, "categorical_features": self._categorical,
            "sequence_features": self._sequence, "sequence_length": self._seq_len,
            "parameters": sum(t.numel() for net in self.nets for t in net.parameters()),
            "epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_loss": best,
            "val_loss_history": history, "members": runs, "train_rows": len(y),
            "validation_metrics": {
                "ziln_loss": best,
                "normalized_gini": _round(metrics.normalized_gini(y_val, pred.predicted_clv)),
                "auc": _round(metrics.roc_auc(y_val > 0, pred.p_purchase)),
                "total_ratio": _round(float(pred.predicted_clv.sum()
                                            / max(float(y_val.sum()), 1e-9)))},
            "feature_importance": dict(sorted(
                ((n, round(float(v), 6)) for n, v in zip(self.input_names, importance,
                                                         strict=True)),
                key=lambda kv: -kv[1])),
            "feature_importance_rows": int(len(sample)),
            "train_seconds": round(seconds, 3),
            "samples_per_second": round(len(y) * epochs_run / max(seconds, 1e-9), 1),
            "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(),
        }
        return self

    def _train_member(self, seed: int, k: int, members: int, train: Inputs, yt: torch.Tensor,
                      val: Inputs, yv: torch.Tensor, device: torch.device, on_device: bool,
                      y: np.ndarray) -> dict:
        """Train one network from ``seed`` (member ``k`` of ``members``) with early stopping;
        returns it (on the CPU, best epoch restored) with its training history."""
        p = self.params
        torch.manual_seed(seed)
        net = self._build_net().to(device)
        init_head(net, y)
        opt = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        amp = device.type == "cuda"
        gen = torch.Generator().manual_seed(seed)
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
            loss_val = validation_loss(net, val, yv, amp)
            history.append(round(loss_val, 6))
            if loss_val < best - 1e-5 or best_state is None:
                best, best_epoch = loss_val, epoch
                best_state = copy.deepcopy(net.state_dict())
            stop = epoch - best_epoch >= p.patience
            if self.on_epoch is not None:
                self.on_epoch(EpochProgress(k * p.epochs + epoch + 1, members * p.epochs,
                                            loss_val, best_epoch + 1,
                                            time.perf_counter() - start,
                                            stop and k == members - 1))
            if stop:
                break
        net.load_state_dict(best_state)
        net = net.to("cpu").eval()
        fill_unseen_unknown(net, self._vocab)
        return {"net": net, "seed": seed, "epochs_run": epochs_run, "best_epoch": best_epoch,
                "best_val_loss": best, "val_loss_history": history}

    @property
    def net(self) -> ZILNNet:
        """The first network (the only one unless ``params.ensemble`` > 1)."""
        return self.nets[0]

    # -- inference ----------------------------------------------------------------------------
    def _inference_device(self) -> torch.device:
        """CUDA when present (unless the model is pinned to the CPU), in float32."""
        if self.params.device != "cpu" and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _eval_nets(self, device: torch.device) -> list[ZILNNet]:
        """The networks on ``device`` in eval mode; moved (a walk over every parameter) only
        when the networks or the device changed since the last call, since that walk costs
        more than a one-row forward pass."""
        placed = getattr(self, "_placed", None)
        if placed is None or placed[0] is not self.nets or placed[1] != device:
            for net in self.nets:
                net.to(device).eval()
            self._placed = (self.nets, device)
        return self.nets

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
        nets = self._eval_nets(device)
        outs = []
        for lo in range(0, len(inputs), INFERENCE_BATCH):
            b = inputs.take(slice(lo, lo + INFERENCE_BATCH)).to(device)
            members = []
            for net in nets:
                logit, mu, sigma = split_outputs(net(b.num, b.cat, b.seq).float())
                members.append(torch.stack([logit, mu, sigma], dim=1))
            outs.append(torch.stack(members, dim=2).cpu())
        if not outs:
            return np.zeros((0, 3, len(nets)))
        return torch.cat(outs).numpy().astype(np.float64)

    def raw_outputs(self, X: Features) -> np.ndarray:
        """``[n, 3, members]``: (logit, mu, sigma) of each row and network, in batches."""
        return self._raw_outputs(self._prepare(X))

    def _predict_inputs(self, inputs: Inputs) -> Prediction:
        logit, mu, sigma = self._raw_outputs(inputs).transpose(1, 0, 2)
        return Prediction(
            predicted_clv=ziln_mean(logit, mu, sigma).mean(axis=1),
            p_purchase=(1 / (1 + np.exp(-logit))).mean(axis=1),
            clv_p10=ziln_mixture_quantile(0.1, logit, mu, sigma),
            clv_p50=ziln_mixture_quantile(0.5, logit, mu, sigma),
            clv_p90=ziln_mixture_quantile(0.9, logit, mu, sigma),
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

    def _baseline(self, net: ZILNNet, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The baseline input of ``net``: numeric ``[p]``, embedding ``[e]``, sequence
        ``[weeks, c]``."""
        num = torch.zeros(len(self._numeric), device=device)
        embs = []
        for emb, vocab in zip(net.embeddings, self._vocab.values(), strict=True):
            w = torch.tensor([vocab["unknown_count"], *vocab["counts"]], dtype=torch.float32)
            w = w / w.sum() if w.sum() > 0 else torch.full_like(w, 1 / len(w))
            embs.append(w.to(device) @ emb.weight.detach())
        emb = torch.cat(embs) if embs else torch.zeros(0, device=device)
        return num, emb, torch.from_numpy(self._seq_baseline).to(device)

    def _attributions(self, inputs: Inputs, steps: int | None = None) -> Attributions:
        """The members' integrated gradients, averaged (the mixture's mean is their average,
        and integrated gradients are linear in the explained function)."""
        device = self._inference_device()
        parts = [integrated_gradients(
            net, inputs, self._baseline(net, device),
            steps=max(1, int(steps or self.params.explain_steps)), device=device,
            emb_dims=self._emb_dims, columns=(self._numeric, self._categorical, self._sequence),
            feature_names=self.input_names) for net in self._eval_nets(device)]
        if len(parts) == 1:
            return parts[0]
        return Attributions(values=sum(a.values for a in parts) / len(parts),
                            feature_names=parts[0].feature_names,
                            baseline=float(np.mean([a.baseline for a in parts])))

    # -- persistence --------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        states = [{k: v.detach().cpu() for k, v in net.state_dict().items()}
                  for net in self.nets]
        # One network: its state dict; a seed ensemble: the list of its members' state dicts.
        torch.save(states[0] if len(states) == 1 else states, directory / WEIGHTS_FILE)
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
        self.horizon_days = int(self.metadata.get("horizon_days", 180))
        self.btyd = BTYDInputs.from_state(self.horizon_days, self.metadata.get("btyd_inputs"))
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
        # weights_only=True: tensors only, never arbitrary pickled objects.
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.nets = []
        for member in state if isinstance(state, list) else [state]:
            net = self._build_net()
            net.load_state_dict(member)
            self.nets.append(net.eval())


# -- helpers ----------------------------------------------------------------------------------


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)
