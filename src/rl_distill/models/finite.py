"""Is a model state finite? Parameters, optimizer state and safetensors files, each answered with the first bad name.

One job: find NaN / +-inf in what training writes and reads back, so that a poisoned state is never checkpointed,
never resumed from and never sampled from. Every check is one pass over the tensors with one host sync per device
(``torch.stack`` of per-tensor ``isfinite().all()``), and returns the name of the first non-finite tensor (or None),
so the error can say which weight went bad.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def first_nonfinite(named: Iterable[tuple[str, Tensor]]) -> str | None:
    """The name of the first floating-point tensor of ``named`` holding a NaN or an inf; None when all are finite."""
    items = [(name, t) for name, t in named if isinstance(t, Tensor) and t.is_floating_point() and t.numel()]
    if not items:
        return None
    flags = [t.detach().isfinite().all() for _, t in items]  # on each tensor's own device: no sync yet
    devices = list(dict.fromkeys(f.device for f in flags))  # usually one; several under CPU offload
    finite = torch.cat([torch.stack([f for f in flags if f.device == d]).to("cpu") for d in devices])  # [K]
    if bool(finite.all()):  # one host sync per device
        return None
    order = [i for d in devices for i, f in enumerate(flags) if f.device == d]  # positions of `finite` in items
    return items[min(order[j] for j in (~finite).nonzero()[:, 0].tolist())][0]


def _optimizer_tensors(optimizer: Any) -> Iterator[tuple[str, Tensor]]:
    for index, (param, slots) in enumerate(getattr(optimizer, "state", {}).items()):
        shape = tuple(getattr(param, "shape", ()))
        for key, value in slots.items():
            yield f"optimizer state '{key}' of parameter {index} {list(shape)}", value


def nonfinite_training_state(model: torch.nn.Module, optimizer: Any | None = None) -> str | None:
    """The first non-finite parameter of ``model`` (``weight 'lm_head.weight'``) or tensor of ``optimizer``'s
    state (Adam's moments), or None when everything is finite."""
    bad = first_nonfinite((f"weight '{name}'", p) for name, p in model.named_parameters())
    if bad is None and optimizer is not None:
        bad = first_nonfinite(_optimizer_tensors(optimizer))
    return bad


def nonfinite_safetensors(path: Path) -> str | None:
    """The first non-finite tensor stored in the safetensors file ``path`` (read one tensor at a time), or None."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if first_nonfinite([(key, handle.get_tensor(key))]) is not None:
                return key
    return None


class NonFiniteStateError(ValueError):
    """A state that must be finite (a checkpoint being written) holds NaN or inf; the message names the tensor."""
