"""The R-TAP confidence generator C_phi: a backbone copy with a Linear(d, 1) + sigmoid head, its loss, fit and update.

One job: score ``(question, one cycle)`` with the probability that the cycle's answer is correct, and train that
score (R-TAP, Lee, Chee, Ro, arXiv 2603.02099, Sec. 3 "confidence generator" and Algorithm 1; method.md section 5):

- Architecture: the policy's transformer body (``policy.base_model``, copied, or a fresh ``AutoModel.from_config``
  of the policy's config with ``init="scratch"``) with the LM head replaced by ``Linear(d, 1)``; the score is the
  sigmoid of the head on the last non-pad token's hidden state. The head starts at zero, so every score starts at 0.5.
- Loss: class-balanced binary cross-entropy, ``w_c = K / (2 K_c)`` for the K_c rows of class c in a batch of K (so
  the weights sum to K and each class contributes half); a single-class batch has all weights 1.
- Stage 1 (:meth:`ConfidenceGenerator.fit`): AdamW with the learning rate decaying linearly from ``lr`` to ``lr_end``
  over the fit's steps (paper: 1e-5 -> 1e-6). Stage 2 (:meth:`ConfidenceGenerator.update`): a few steps on the fresh
  cycles of each RL step at a constant learning rate, with the optimizer state kept across steps (Algorithm 1).
- Saved as a directory: ``body/`` (``save_pretrained``, safetensors), ``head.safetensors`` and ``confidence.json``
  (plus the stage-2 optimizer state inside training checkpoints, so a resumed stage 2 is bit-identical).

Never used at inference. Shapes: K (question, cycle) pairs, L tokens, d hidden size.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel

from rl_distill.models.scoring import position_ids_from_mask

INITS = ("policy", "scratch")
_META = "confidence.json"
_HEAD = "head.safetensors"
_BODY = "body"
_OPTIMIZER = "update_optimizer.pt"


def class_balanced_weights(labels: Tensor) -> Tensor:
    """[K] per-row weights ``K / (2 K_c)`` for label class c; all ones when only one class is present.

    >>> [round(w, 4) for w in class_balanced_weights(torch.tensor([1.0, 1.0, 1.0, 0.0])).tolist()]
    [0.6667, 0.6667, 0.6667, 2.0]
    """
    labels = labels.float()
    k = labels.numel()
    k_pos = labels.sum()
    k_neg = k - k_pos
    if k_pos == 0 or k_neg == 0:
        return torch.ones_like(labels)
    return torch.where(labels > 0.5, k / (2.0 * k_pos), k / (2.0 * k_neg))


def class_balanced_bce(logits: Tensor, labels: Tensor) -> Tensor:
    """Class-balanced BCE on logits [K] for labels [K] in {0, 1}: ``mean_k w_k * BCE(sigmoid(logit_k), y_k)``."""
    weights = class_balanced_weights(labels).to(logits.dtype)
    per_row = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    return (weights * per_row).mean()


def balance_indices(labels: Sequence[bool], seed: int, ratio: float = 1.0) -> list[int]:
    """Indices keeping every minority-class row and at most ``ratio`` x as many majority rows (sampled, seeded).

    With one class absent every row is kept (nothing to balance against). The result is sorted.
    """
    pos = [i for i, y in enumerate(labels) if y]
    neg = [i for i, y in enumerate(labels) if not y]
    if not pos or not neg:
        return list(range(len(labels)))
    minority, majority = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
    keep = min(len(majority), max(1, round(ratio * len(minority))))
    rng = random.Random(seed)
    return sorted(minority + rng.sample(majority, keep))


def balance_per_question(labels: Sequence[bool], questions: Sequence[str], seed: int,
                         ratio: float = 1.0) -> list[int]:
    """:func:`balance_indices` within each question's samples (R-TAP, arXiv 2603.02099, stage 1: each question's
    sampled cycles are balanced to about 1:1 correct / wrong), so that easy questions, which are mostly correct,
    and hard ones, mostly wrong, both give the generator both classes. A question whose samples are all of one
    class keeps them all **[choice]**: there is nothing to balance against, and the class-balanced BCE weighs
    the classes of the whole set. The result is sorted.

    >>> balance_per_question([True, False, False, False, True, True], ["a", "a", "a", "a", "b", "b"], seed=0)
    [0, 2, 4, 5]
    """
    if len(labels) != len(questions):
        raise ValueError(f"{len(labels)} labels but {len(questions)} questions")
    groups: dict[str, list[int]] = {}
    for i, question in enumerate(questions):
        groups.setdefault(question, []).append(i)
    kept: list[int] = []
    for g, members in enumerate(groups.values()):
        local = balance_indices([labels[i] for i in members], seed * 1_000_003 + g, ratio)
        kept += [members[j] for j in local]
    return sorted(kept)


def linear_lr(step: int, total_steps: int, lr: float, lr_end: float) -> float:
    """Linear decay from ``lr`` at step 0 to ``lr_end`` at the last step (``total_steps - 1``).

    >>> [round(linear_lr(s, 3, 1e-5, 1e-6), 12) for s in range(3)]
    [1e-05, 5.5e-06, 1e-06]
    """
    if total_steps <= 1:
        return lr
    return lr + (lr_end - lr) * step / (total_steps - 1)


class ConfidenceModel(nn.Module):
    """Backbone body + ``Linear(d, 1)`` head on the last non-pad token; ``forward`` returns logits [K]."""

    def __init__(self, body: PreTrainedModel) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                           position_ids=position_ids_from_mask(attention_mask)).last_hidden_state  # [K, L, d]
        length = attention_mask.shape[1]
        last = length - 1 - attention_mask.long().flip(1).argmax(dim=1)  # [K] last non-pad position (any padding)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [K, d]
        return self.head(pooled.to(self.head.weight.dtype)).squeeze(-1)


class ConfidenceGenerator:
    """C_phi with its tokenizer and (stage 2) optimizer: ``score``, ``fit``, ``update``, ``save``, ``load``."""

    def __init__(self, model: ConfidenceModel, tokenizer: Any, *, batch_size: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self._update_optimizer: torch.optim.Optimizer | None = None

    @classmethod
    def from_policy(cls, policy: PreTrainedModel, tokenizer: Any, *, init: str = "policy",
                    batch_size: int = 32, seed: int = 0) -> ConfidenceGenerator:
        """A generator whose body is a copy of ``policy``'s body (``init="policy"``) or freshly initialised."""
        if init not in INITS:
            raise ValueError(f"init={init!r} is not valid. Valid: {', '.join(INITS)}.")
        if init == "policy":
            body = copy.deepcopy(policy.base_model)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                body = AutoModel.from_config(copy.deepcopy(policy.config))
        device = next(policy.parameters()).device
        model = ConfidenceModel(body).to(device)
        return cls(model, tokenizer, batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, prompts: Sequence[str], cycles: Sequence[str]) -> tuple[Tensor, Tensor]:
        """[K, L] left-padded ids and mask of ``prompt + cycle`` (the tokenizer adds its bos)."""
        texts = [p + c for p, c in zip(prompts, cycles, strict=True)]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], cycles: Sequence[str]) -> Tensor:
        """[K] Conf = sigmoid(head) for each ``(prompt, cycle)`` pair (no grad, eval mode, CPU float32)."""
        if not prompts:
            return torch.zeros(0)
        was_training = self.model.training
        self.model.eval()
        out = []
        for lo in range(0, len(prompts), self.batch_size):
            ids, mask = self.encode(prompts[lo:lo + self.batch_size], cycles[lo:lo + self.batch_size])
            out.append(torch.sigmoid(self.model(ids, mask).float()).cpu())
        self.model.train(was_training)
        return torch.cat(out)

    def _step(self, optimizer: torch.optim.Optimizer, prompts: Sequence[str], cycles: Sequence[str],
              labels: Tensor) -> float:
        self.model.train()
        ids, mask = self.encode(prompts, cycles)
        loss = class_balanced_bce(self.model(ids, mask).float(), labels.to(self.device).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())

    def fit(self, prompts: Sequence[str], cycles: Sequence[str], labels: Sequence[bool], *, epochs: int,
            lr: float, lr_end: float, weight_decay: float = 0.0, seed: int = 0,
            log_fn: Callable[[dict[str, float], int], None] | None = None) -> list[float]:
        """Stage 1: ``epochs`` shuffled passes in batches of ``batch_size``, lr linear ``lr -> lr_end``; losses."""
        k = len(prompts)
        if k == 0:
            return []
        y = torch.tensor([float(v) for v in labels])
        steps_per_epoch = -(-k // self.batch_size)
        total = epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        rng = random.Random(seed)
        losses, step = [], 0
        for _ in range(epochs):
            order = list(range(k))
            rng.shuffle(order)
            for lo in range(0, k, self.batch_size):
                idx = order[lo:lo + self.batch_size]
                for group in optimizer.param_groups:
                    group["lr"] = linear_lr(step, total, lr, lr_end)
                loss = self._step(optimizer, [prompts[i] for i in idx], [cycles[i] for i in idx], y[idx])
                losses.append(loss)
                if log_fn is not None:
                    log_fn({"confidence/train_loss": loss, "confidence/lr": optimizer.param_groups[0]["lr"]}, step)
                step += 1
        return losses

    def update(self, prompts: Sequence[str], cycles: Sequence[str], labels: Sequence[bool], *, steps: int,
               lr: float, seed: int = 0) -> dict[str, float]:
        """Stage 2 (Algorithm 1): ``steps`` class-balanced BCE updates on fresh cycles (one batch of at most
        ``batch_size`` rows sampled per step); the optimizer persists across calls. Returns ``confidence/*`` metrics."""
        if not prompts or steps <= 0:
            return {}
        if self._update_optimizer is None:
            self._update_optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr)
        for group in self._update_optimizer.param_groups:
            group["lr"] = lr
        y = torch.tensor([float(v) for v in labels])
        rng = random.Random(seed)
        losses = []
        for _ in range(steps):
            idx = rng.sample(range(len(prompts)), min(self.batch_size, len(prompts)))
            losses.append(self._step(self._update_optimizer, [prompts[i] for i in idx], [cycles[i] for i in idx],
                                     y[idx]))
        return {"confidence/update_loss": sum(losses) / len(losses),
                "confidence/update_positive_rate": float(y.mean())}

    def save(self, path: str | Path, *, with_optimizer: bool = False) -> Path:
        """Write ``body/`` (safetensors), ``head.safetensors`` and ``confidence.json`` under ``path``; with
        ``with_optimizer`` also the stage-2 optimizer's state (``update_optimizer.pt``, tensors and numbers only),
        so that :meth:`restore` continues the updates exactly."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.body.save_pretrained(path / _BODY)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.head.state_dict().items()}, path / _HEAD)
        meta = {"format": 1, "method": "rtap", "paper": "arXiv 2603.02099", "batch_size": self.batch_size,
                "hidden_size": self.model.body.config.hidden_size}
        (path / _META).write_text(json.dumps(meta, indent=2))
        if with_optimizer and self._update_optimizer is not None:
            torch.save(self._update_optimizer.state_dict(), path / _OPTIMIZER)
        return path

    def restore(self, path: str | Path) -> None:
        """Load the weights (and the stage-2 optimizer state, when saved) written by :meth:`save` into this
        generator, in place: whoever holds it sees the restored C_phi. The optimizer file is read with
        ``torch.load(weights_only=True)`` (tensors and plain containers only)."""
        path = Path(path)
        self.model.load_state_dict(ConfidenceGenerator.load(path, self.tokenizer).model.state_dict())
        self._update_optimizer = None
        if (path / _OPTIMIZER).exists():
            optimizer = torch.optim.AdamW(self.model.parameters())
            optimizer.load_state_dict(torch.load(path / _OPTIMIZER, map_location=self.device, weights_only=True))
            self._update_optimizer = optimizer

    @classmethod
    def load(cls, path: str | Path, tokenizer: Any, device: str | torch.device = "cpu") -> ConfidenceGenerator:
        """Rebuild a generator saved by :meth:`save` (``tokenizer``: the policy's tokenizer)."""
        path = Path(path)
        meta = json.loads((path / _META).read_text())
        body = AutoModel.from_pretrained(path / _BODY)
        model = ConfidenceModel(body)
        model.head.load_state_dict(load_file(path / _HEAD))
        return cls(model.to(device), tokenizer, batch_size=int(meta.get("batch_size", 32)))
