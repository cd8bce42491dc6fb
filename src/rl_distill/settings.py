"""Kedro project settings: hooks, config loader (OmegaConf) and the environment layout."""

from kedro.config import OmegaConfigLoader

from rl_distill.hooks import ConfigValidationHooks, RunLockHooks, TorchThreadsHooks

HOOKS = (ConfigValidationHooks(), TorchThreadsHooks(), RunLockHooks())

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
