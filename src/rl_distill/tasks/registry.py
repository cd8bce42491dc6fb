"""The task registry: task families by name, built from a parameter mapping validated by their own config.

``get_task("knights_knaves", max_depth=2)`` returns a ready :class:`~rl_distill.tasks.base.Task`; an unknown
name raises :class:`~rl_distill.registry.UnknownNameError` listing the valid ones, an unknown parameter a
:class:`~rl_distill.typed_config.ConfigError` listing the valid keys.
"""

from __future__ import annotations

from typing import Any

from rl_distill.registry import Registry
from rl_distill.tasks.arithmetic import ArithmeticTask
from rl_distill.tasks.base import Task
from rl_distill.tasks.jsonl import JsonlTask
from rl_distill.tasks.knights_knaves import KnightsKnavesTask
from rl_distill.typed_config import from_dict

TASKS: Registry[type[Task]] = Registry("task")
for _cls in (KnightsKnavesTask, ArithmeticTask, JsonlTask):
    TASKS.register(_cls.name)(_cls)


def get_task(name: str, **params: Any) -> Task:
    """Build task ``name`` with ``params`` (keys of its ``Config`` dataclass).

    >>> get_task("arithmetic", ops=["+"]).config.ops
    ('+',)
    >>> try:
    ...     get_task("knights_knights")
    ... except KeyError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    unknown task 'knights_knights'. Did you mean 'knights_knaves'?
    Valid names: arithmetic, jsonl, knights_knaves.
    """
    cls = TASKS.get(name)
    config = from_dict(cls.Config, params, where=f"task '{name}' params")
    return cls(config)
