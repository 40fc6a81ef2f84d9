"""The ``biv`` command line: ``biv check`` checks configs, ``biv train`` runs one training and
``biv legacy`` one experiment of the original command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="biv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check config files as the workflow will, before any job")
    check.add_argument("configs", nargs="+", metavar="CONFIG", help="config YAML file(s)")
    train = sub.add_parser("train", help="run one training from a run-parameters JSON file")
    train.add_argument("params", help="run-parameters JSON file")
    train.add_argument("out_dir", help="run folder to write (created; resumes from its checkpoint)")
    sub.add_parser(
        "legacy",
        help="run one experiment from the original implementation's command line",
        add_help=False,
    )
    if argv[:1] == ["legacy"]:
        from biv.legacy import main as legacy_main

        return legacy_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "check":
        from biv.workflow.check import main as check_main

        return check_main(args.configs)
    return train_from_file(args.params, args.out_dir)


def train_from_file(params_path: str | Path, out_dir: str | Path) -> int:
    """``biv train PARAMS OUT_DIR``: 0 on success, 2 for bad input, 1 for a non-finite loss or
    GPUs given that CUDA cannot use, 128 + its number for a signal that stopped it."""
    import json
    import logging

    from biv import logs
    from biv.config import ConfigError, RunSpec
    from biv.train.loop import run_training

    logs.setup()
    path = str(params_path)
    try:
        run = RunSpec.from_dict(json.loads(Path(params_path).read_text()))
    except FileNotFoundError:
        error = f"run parameters file {path!r} does not exist"
    except json.JSONDecodeError as err:
        error = f"run parameters file {path!r}: invalid JSON ({err})"
    except ConfigError as err:
        error = str(err)
    else:
        return run_training(run, out_dir)
    logging.getLogger("biv.train.loop").error("%s", error)
    return 2


if __name__ == "__main__":
    sys.exit(main())
