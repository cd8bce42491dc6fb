"""The schema of ``parameters*.yml``: which typed config validates each top-level parameter block.

One job: map top-level parameter keys (``data_curation``, ``teacher``, ``distill``, ...) to the typed config
(:mod:`rl_distill.typed_config`) that validates them, so a misspelled key fails when the Kedro context is created,
before any node runs, with the key and the file it came from in the message. Pipeline packages register their blocks
with ``@PARAMETER_BLOCKS.register("<top-level key>")`` on a function ``(block: dict, where: str) -> typed`` that raises
:class:`~rl_distill.typed_config.ConfigError`. It returns the parsed config(s): either one typed object for the whole
block, or a ``{dotted key: typed object}`` mapping (e.g. ``{"distill.rlad": MethodPlan}``) via :class:`Typed`.
Parameters are parsed once: :func:`validate_parameters` returns them by ``params:<key>`` name, and the project's
hook hands these objects to the nodes instead of the raw dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rl_distill.registry import Registry
from rl_distill.typed_config import ConfigError, _suggest

BlockValidator = Callable[[Mapping[str, Any], str], Any]
PARAMETER_BLOCKS: Registry[BlockValidator] = Registry("parameter block")


class Typed(dict):
    """What a block validator returns for a block parsed into several typed configs: ``{dotted key: config}``."""


def locate_key(conf_dirs: list[Path], key: str) -> str:
    """Return ``conf/<env>/parameters_x.yml`` (the last env that sets top-level ``key``), or a generic hint."""
    found = "conf/*/parameters*.yml"
    for conf_dir in conf_dirs:
        for path in sorted(conf_dir.glob("**/parameters*.yml")):
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError:
                continue
            if isinstance(data, dict) and key in data:
                found = str(path)
    return found


def validate_parameters(params: Mapping[str, Any], locate: Callable[[str], str]) -> dict[str, Any]:
    """Validate every top-level block of ``params`` (unknown top-level keys fail too) and return the typed configs
    by dataset name, e.g. ``{"params:evaluation": EvaluationParams(...), "params:distill.rlad": MethodPlan(...)}``.

    ``locate(key)`` returns the file a key came from, used in the error message.
    """
    valid = PARAMETER_BLOCKS.names()
    typed: dict[str, Any] = {}
    for key, block in params.items():
        if key not in PARAMETER_BLOCKS:
            raise ConfigError(
                f"{locate(key)}: unknown top-level parameter block '{key}'.{_suggest(key, valid)} "
                f"Valid blocks: {', '.join(valid)}."
            )
        parsed = PARAMETER_BLOCKS.get(key)(block, f"{locate(key)}:{key}")
        if isinstance(parsed, Typed):
            typed.update({f"params:{name}": value for name, value in parsed.items()})
        elif parsed is not None:
            typed[f"params:{key}"] = parsed
    return typed
