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
        from biv.check import main as check_main

        return check_main(args.configs)
    return run_training(args.params, args.out_dir)


def run_training(params_path: str | Path, out_dir: str | Path) -> int:
    """``biv train PARAMS OUT_DIR``: 0 on success, 2 for bad input, 1 for a non-finite loss."""
    import json
    import logging

    from biv import logs
    from biv.spec import RunSpec
    from biv.train import NonFiniteLossError, train

    logs.setup()
    log = logging.getLogger("biv.train")
    try:
        try:
            params = json.loads(Path(params_path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"run parameters file {str(params_path)!r} does not exist"
            ) from None
        except json.JSONDecodeError as err:
            raise ValueError(
                f"run parameters file {str(params_path)!r}: invalid JSON ({err})"
            ) from None
        train(RunSpec.from_dict(params), out_dir)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    except NonFiniteLossError as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
