"""The demand network: zone embedding + numeric features -> three quantiles.

The network predicts quantiles (5 %, 50 %, 95 %) of log1p(rides). Quantiles survive
monotone transforms, so expm1 of them are the quantiles of the ride count: the median
is the point prediction, the outer two the 90 % interval. The outer quantiles are the
median minus/plus a softplus, so lower <= demand <= upper always holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

QUANTILES = (0.05, 0.5, 0.95)


@dataclass(frozen=True)
class Architecture:
    n_zones: int
    n_features: int
    zone_embedding: int = 8
    hidden: int = 64

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Architecture:
        return Architecture(**{k: int(v) for k, v in data.items()})


class DemandNet(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.zone_embedding = nn.Embedding(arch.n_zones, arch.zone_embedding)
        self.body = nn.Sequential(
            nn.Linear(arch.zone_embedding + arch.n_features, arch.hidden),
            nn.ReLU(),
            nn.Linear(arch.hidden, arch.hidden),
            nn.ReLU(),
            nn.Linear(arch.hidden, 3),
        )

    def forward(self, zones: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Quantiles of log1p(rides), shape (n, 3), ordered as QUANTILES."""
        raw = self.body(torch.cat([self.zone_embedding(zones), features], dim=1))
        median = raw[:, 1]
        lower = median - nn.functional.softplus(raw[:, 0])
        upper = median + nn.functional.softplus(raw[:, 2])
        return torch.stack([lower, median, upper], dim=1)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    q = torch.tensor(QUANTILES, dtype=pred.dtype, device=pred.device)
    diff = target[:, None] - pred
    return torch.maximum(q * diff, (q - 1) * diff).mean()


def to_rides(log_quantiles: torch.Tensor) -> torch.Tensor:
    """Quantiles of log1p(rides) -> quantiles of rides, clamped at zero."""
    return torch.expm1(log_quantiles).clamp_min(0.0)


class FusedRides:
    """Inference-only form of ``to_rides(net(zones, features))``: same math, fewer ops.

    The zone embedding goes through the first layer once per zone at build time (a
    per-zone table that includes the bias), the layers run as ``addmm`` with in-place
    activations, and the quantile transform works on all three outputs at once. About
    a third of the eager module's per-batch cost on CPU (each op is a Python -> C++
    call that re-takes the GIL the HTTP event loop needs). Results agree with the
    eager module to float32 rounding (a test checks it). Build it from a trained
    network: later changes to the network's weights are not seen.

    ``dtype=torch.float16`` (``DP_HALF``) runs the three layers in half precision (on
    CUDA: tensor cores, half the weight bytes) and the output transform in float32.
    """

    def __init__(self, net: DemandNet, dtype: torch.dtype = torch.float32) -> None:
        with torch.no_grad():
            embedding = net.zone_embedding.weight.float()
            first, second, third = net.body[0], net.body[2], net.body[4]
            width = embedding.shape[1]
            w_first, b_first = first.weight.float(), first.bias.float()
            table = embedding @ w_first[:, :width].T + b_first
            self.dtype = dtype
            self.zone_table = table.to(dtype).contiguous()
            self.w1 = w_first[:, width:].T.to(dtype).contiguous()
            self.w2 = second.weight.T.to(dtype).contiguous()
            self.b2 = second.bias.detach().to(dtype).clone()
            self.w3 = third.weight.T.to(dtype).contiguous()
            self.b3 = third.bias.detach().to(dtype).clone()
            # lower = median - softplus(raw0), upper = median + softplus(raw2)
            self.sign = torch.tensor([-1.0, 0.0, 1.0], device=embedding.device)

    def __call__(self, zones: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if features.dtype != self.dtype:
            features = features.to(self.dtype)
        hidden = self.zone_table.index_select(0, zones).addmm_(features, self.w1).relu_()
        hidden = torch.addmm(self.b2, hidden, self.w2).relu_()
        raw = torch.addmm(self.b3, hidden, self.w3)
        if raw.dtype != torch.float32:
            # The quantile transform runs in float32 whatever the layers ran in: expm1 of
            # a large log-count overflows float16 (max 65,504).
            raw = raw.float()
        log_quantiles = nn.functional.softplus(raw).mul_(self.sign).add_(raw[:, 1:2])
        return log_quantiles.expm1_().clamp_min_(0.0)


class PlainRides:
    """``to_rides(net(zones, features))`` as a callable: the eager module, op by op.

    What ``FusedRides`` replaces; the service runs it with ``DP_FUSED_MODEL=false``
    (the benchmark's ablation), and the benchmark's baselines can run either, so every
    contender runs the same model code. float32 only.
    """

    def __init__(self, net: DemandNet) -> None:
        self.net = net.eval()
        self.dtype = torch.float32

    def __call__(self, zones: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return to_rides(self.net(zones, features))


MODEL_FORMS = ("fused", "plain")


def rides_model(
    net: DemandNet, form: str = "fused", dtype: torch.dtype = torch.float32
) -> FusedRides | PlainRides:
    """The inference callable (zones, features) -> rides of ``net``: ``fused``
    (``FusedRides``, what the service runs by default) or ``plain`` (``PlainRides``).
    Call it under ``torch.inference_mode()``."""
    if form == "fused":
        return FusedRides(net, dtype=dtype)
    if form == "plain":
        if dtype != torch.float32:
            raise ValueError("the plain model runs in float32 only")
        return PlainRides(net)
    raise ValueError(f"model form must be one of {', '.join(MODEL_FORMS)}, not {form!r}")
