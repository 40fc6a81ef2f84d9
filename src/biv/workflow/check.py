"""``biv check CONFIG...``: check config files with the workflow's own code, before any job."""

from __future__ import annotations

from pathlib import Path


def load_config(path: Path) -> dict:
    """The YAML mapping of ``path``; ValueError naming file:line:column for a syntax error."""
    import yaml

    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        config = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ValueError(f"{where}: YAML syntax error: {err.problem or err}") from None
    if config is None:
        raise ValueError(f"{path}: the file is empty; expected a mapping of top-level keys")
    if not isinstance(config, dict):
        raise ValueError(
            f"{path}: the top level is a {type(config).__name__}; expected a mapping of "
            "top-level keys (datasets, noise, models, losses, experiments, ...)"
        )
    return config


def check(path: Path) -> str:
    """Check one config file as the workflow does (:func:`biv.workflow.plan.load_plan`); returns
    a one-line summary."""
    from biv.workflow.plan import load_plan

    config = load_config(path)
    try:
        plan = load_plan(config)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return (
        f"{path}: ok ({len(plan.experiments)} experiments, {len(plan.runs)} trainings, "
        f"{len(plan.packs)} training jobs)"
    )


def main(paths: list[str]) -> int:
    """0 when every file is fine, 2 otherwise; one line per file."""
    failed = False
    for name in paths:
        try:
            print(check(Path(name)))
        except ValueError as err:
            print(f"error: {err}")
            failed = True
    return 2 if failed else 0
