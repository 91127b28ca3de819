"""The deep CLV model: a PyTorch network with a zero-inflated lognormal (ZILN) head."""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from clv_models.config import DeepConfig
from clv_models.models.base import CLVModel, Prediction
from clv_models.models.ziln import split_outputs, ziln_loss, ziln_mean, ziln_quantile

WEIGHTS_FILE = "weights.pt"
NORMALISATION_FILE = "normalisation.json"


def resolve_device(requested: str = "auto") -> torch.device:
    """``cuda`` when requested or available (for ``auto``), else ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("deep.device is 'cuda' but torch sees no CUDA device "
                           "(see README, 'GPU' for installing a CUDA build of torch)")
    return torch.device(requested)


class ZILNNet(nn.Module):
    """An MLP over normalised tabular features ending in three ZILN outputs."""

    def __init__(self, n_features: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class DeepCLV(CLVModel):
    """Deep regressor with a ZILN head: expected CLV, ``p_purchase`` and quantiles.

    Features are log-compressed (``sign(x) * log1p(|x|)``, amounts and counts are heavy-tailed)
    and standardised with training statistics that are saved with the weights. Training uses
    AdamW with early stopping on the validation loss (a later as-of date) and restores the best
    epoch. On CUDA it trains in bfloat16 autocast with the whole training set on the GPU when it
    fits; on CPU in float32. Seeded: the same data and seed give the same weights on CPU.

    Parameters
    ----------
    params
        Hyper-parameters; see :class:`clv_models.config.DeepConfig`.
    seed
        Seed for weight initialisation, dropout and batch order.
    """

    name = "deep_ziln"

    def __init__(self, params: DeepConfig | None = None, seed: int = 0) -> None:
        self.params = params or DeepConfig()
        self.seed = seed
        self.feature_names: list[str] = []
        self.metadata = {}

    # -- preprocessing ------------------------------------------------------------------------
    def _compress(self, X: pd.DataFrame) -> np.ndarray:
        values = self._check_features(X)
        return np.sign(values) * np.log1p(np.abs(values))

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        z = (self._compress(X) - self._mean) / self._std
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    # -- training -----------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame | None = None,
            y_val: np.ndarray | None = None) -> DeepCLV:
        """Train on ``(X, y)``, stopping early on ``(X_val, y_val)`` (required)."""
        if X_val is None or y_val is None:
            raise ValueError("DeepCLV.fit needs a validation set for early stopping")
        p = self.params
        torch.manual_seed(self.seed)
        device = resolve_device(p.device)
        self.feature_names = list(X.columns)
        z = self._compress(X)
        with warnings.catch_warnings():  # a feature that is null in every row gets mean 0, std 1
            warnings.simplefilter("ignore", RuntimeWarning)
            self._mean = np.nanmean(z, axis=0)
            self._std = np.nanstd(z, axis=0)
        self._std[~(self._std > 1e-9)] = 1.0
        self._mean = np.nan_to_num(self._mean)

        y = np.asarray(y, dtype=np.float32)
        xt = torch.from_numpy(self._transform(X))
        yt = torch.from_numpy(y)
        xv = torch.from_numpy(self._transform(X_val))
        yv = torch.from_numpy(np.asarray(y_val, dtype=np.float32))
        on_device = device.type == "cpu" or _fits_on_gpu(xt, device)
        if on_device:
            xt, yt = xt.to(device), yt.to(device)
        xv, yv = xv.to(device), yv.to(device)

        net = ZILNNet(len(self.feature_names), p.hidden, p.dropout).to(device)
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
                xb = xt[idx].to(device, non_blocking=True)
                yb = yt[idx].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = net(xb)
                loss = ziln_loss(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
            epochs_run += 1
            val = self._loss(net, xv, yv, amp)
            history.append(round(val, 6))
            if val < best - 1e-5:
                best, best_epoch = val, epoch
                best_state = copy.deepcopy(net.state_dict())
            elif epoch - best_epoch >= p.patience:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        net.load_state_dict(best_state)
        self.net = net.to("cpu").eval()
        self.device = device
        self.metadata = {
            "params": vars(self.params), "seed": self.seed, "device": str(device),
            "epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_loss": best,
            "val_loss_history": history, "train_rows": len(y),
            "train_seconds": round(seconds, 3),
            "samples_per_second": round(len(y) * epochs_run / max(seconds, 1e-9), 1),
            "torch_version": torch.__version__,
        }
        return self

    @torch.no_grad()
    def _loss(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool) -> float:
        net.eval()
        total = 0.0
        for lo in range(0, len(y), 65_536):
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
                out = net(x[lo: lo + 65_536])
            total += float(ziln_loss(out, y[lo: lo + 65_536])) * len(out)
        return total / max(len(y), 1)

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def raw_outputs(self, X: pd.DataFrame, batch_size: int = 65_536) -> np.ndarray:
        """(logit, mu, sigma) per row, computed in batches on the CPU."""
        x = torch.from_numpy(self._transform(X))
        outs = []
        for lo in range(0, len(x), batch_size):
            logit, mu, sigma = split_outputs(self.net(x[lo: lo + batch_size]).float())
            outs.append(torch.stack([logit, mu, sigma], dim=1))
        if not outs:
            return np.zeros((0, 3))
        return torch.cat(outs).numpy().astype(np.float64)

    def predict(self, X: pd.DataFrame, explain: bool = False) -> Prediction:
        """Expected CLV, ``p_purchase`` and the p10/p50/p90 quantiles of the ZILN mixture."""
        logit, mu, sigma = self.raw_outputs(X).T
        return Prediction(
            predicted_clv=ziln_mean(logit, mu, sigma),
            p_purchase=1 / (1 + np.exp(-logit)),
            clv_p10=ziln_quantile(0.1, logit, mu, sigma),
            clv_p50=ziln_quantile(0.5, logit, mu, sigma),
            clv_p90=ziln_quantile(0.9, logit, mu, sigma),
        )

    # -- persistence --------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        torch.save(self.net.state_dict(), directory / WEIGHTS_FILE)
        (directory / NORMALISATION_FILE).write_text(json.dumps({
            "feature_names": self.feature_names, "mean": self._mean.tolist(),
            "std": self._std.tolist(), "hidden": self.params.hidden,
            "dropout": self.params.dropout}, indent=2))

    def _load_weights(self, directory: Path) -> None:
        norm = json.loads((directory / NORMALISATION_FILE).read_text())
        self.params = DeepConfig(**self.metadata.get("params", {}))
        self.seed = self.metadata.get("seed", 0)
        self._mean = np.asarray(norm["mean"])
        self._std = np.asarray(norm["std"])
        self.net = ZILNNet(len(self.feature_names), norm["hidden"], norm["dropout"])
        # weights_only=True: tensors only, never arbitrary pickled objects.
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()


def _fits_on_gpu(x: torch.Tensor, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return x.element_size() * x.nelement() * 2 < free * 0.5


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
