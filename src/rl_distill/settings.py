"""Kedro project settings: hooks, config loader (OmegaConf) and the environment layout."""

import warnings

from kedro.config import OmegaConfigLoader

from rl_distill.hooks import (
    ConfigValidationHooks,
    ParentRunHooks,
    RunLockHooks,
    TerminalHooks,
    TorchThreadsHooks,
)

# Library notices that say nothing about this run, printed before the first node of every `kedro run` otherwise
# (deprecations inside kedro / kedro-mlflow / mlflow, and Kedro's note on the '.' in namespaced dataset names, which
# the method namespaces put there on purpose). Warnings from this project and every other library still show.
for _module in (r"kedro\.config\.omegaconf_config", r"kedro_mlflow\.", r"mlflow\.pyfunc\."):
    warnings.filterwarnings("ignore", category=UserWarning, module=_module)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=_module)
warnings.filterwarnings("ignore", message=r"One or more dataset names contain '\.' characters", category=UserWarning)

HOOKS = (ConfigValidationHooks(), TorchThreadsHooks(), RunLockHooks(), ParentRunHooks(), TerminalHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/<env> (smoke, local, ...) is laid over conf/base key by key, so a one-key override in
    # conf/local/parameters_distill.yml changes that key and nothing else.
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
}
