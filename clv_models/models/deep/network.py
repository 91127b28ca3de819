"""The network of the deep CLV model: a temporal convolution over the weekly sequences, embeddings
of the categoricals and an MLP ending in the zero-inflated lognormal head
(:mod:`clv_models.models.ziln`), plus the device and batching helpers of its training loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from clv_models.core.errors import ConfigError
from clv_models.models.ziln import ziln_loss

INFERENCE_BATCH = 16_384


def resolve_device(requested: str = "auto") -> torch.device:
    """``cuda`` when requested or available (for ``auto``), else ``cpu``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("deep.device is 'cuda' but torch sees no CUDA device "
                           "(see README, 'GPU' for installing a CUDA build of torch)")
    return torch.device(requested)


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


def fill_unseen_unknown(net: ZILNNet, vocab: dict) -> None:
    """Give an "unknown" index no training row used the frequency-weighted mean embedding, so
    an unseen category is treated as an average one rather than by a random vector."""
    with torch.no_grad():
        for emb, v in zip(net.embeddings, vocab.values(), strict=True):
            if v["unknown_count"] == 0 and v["counts"]:
                w = torch.tensor(v["counts"], dtype=torch.float32)
                emb.weight[0] = (w / w.sum()) @ emb.weight[1:]


def init_head(net: ZILNNet, y: np.ndarray) -> None:
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


@torch.no_grad()
def validation_loss(net: nn.Module, x: Inputs, y: torch.Tensor, amp: bool) -> float:
    net.eval()
    total = 0.0
    for lo in range(0, len(y), INFERENCE_BATCH):
        b = x.take(slice(lo, lo + INFERENCE_BATCH))
        with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(b.num, b.cat, b.seq)
        total += float(ziln_loss(out, y[lo: lo + INFERENCE_BATCH])) * len(out)
    return total / max(len(y), 1)


def fits_on_gpu(nbytes: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes * 2 < free * 0.5
