"""``biv legacy``: run one experiment from the original implementation's command line.

Both argument families of montrealrobotics/BIV are accepted unchanged (seed era, July 2020:
``--exp_settings ...``; final, August 2020 onwards: ``--experiment_settings ...``), mapped onto
the run parameters (``biv.config.RunSpec``), printed, then run: prepare data -> resolve noise ->
draw noise -> ``biv.train.loop.run_training`` -> the usual run folder.
"""

from __future__ import annotations

import sys

from biv.legacy.fields import LegacyArgError
from biv.legacy.mapping import build_parser, map_command
from biv.legacy.runner import run

__all__ = ["LegacyArgError", "build_parser", "main", "map_command", "run"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(map_command(argv))
    except (ValueError, FileNotFoundError) as e:
        print(f"biv legacy: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
