"""Ship a trained teacher: copy it into the repository with its provenance (config, command, metrics, sha256).

    python scripts/ship_teacher.py data/06_models/teacher models/teacher_kk \
        --command 'kedro run --pipelines data_curation,teacher' --metric val/accuracy=1.0

The recorded parameters are the current ``teacher`` and ``data_curation`` blocks of conf/base (+ conf/local), so run
it right after training, with the same configuration. Then set ``teacher.shipped`` to the destination.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kedro.config import OmegaConfigLoader

from rl_distill.models.shipped import ship_model
from rl_distill.pipelines.teacher.nodes import shipped_params
from rl_distill.settings import CONFIG_LOADER_ARGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--command", required=True, help="the command that trained the model")
    parser.add_argument("--metric", action="append", default=[], help="name=value measured on the model")
    parser.add_argument("--conf", type=Path, default=Path("conf"))
    args = parser.parse_args()
    params = OmegaConfigLoader(conf_source=str(args.conf), **CONFIG_LOADER_ARGS)["parameters"]
    metrics = {name: float(value) for name, value in (m.split("=", 1) for m in args.metric)}
    record = ship_model(args.model_dir, args.dest, params=shipped_params(params["teacher"], params["data_curation"]),
                        command=args.command, metrics=metrics)
    print(f"shipped {args.model_dir} -> {args.dest}: {record['sha256']}")


if __name__ == "__main__":
    main()
