"""``biv check CONFIG...``: check config files with the workflow's own code, before any job."""

from __future__ import annotations

from pathlib import Path

from biv.config.errors import ConfigError
from biv.losses import loss_schema

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


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


def with_loss_schema(schema: dict) -> dict:
    """The config schema (config/schema.yaml, loaded) with its ``$defs.loss`` built from the loss
    types registered in :mod:`biv.losses` (the file holds a placeholder)."""
    return schema | {"$defs": schema["$defs"] | {"loss": loss_schema()}}


def load_schema(schema: Path = SCHEMA) -> dict:
    """The config schema of the file ``schema``, its loss entry from the registry."""
    import yaml

    return with_loss_schema(yaml.safe_load(schema.read_text()))


def schema_error(config: dict, schema: Path = SCHEMA) -> ConfigError | None:
    """The config's most relevant violation of the schema, as one line naming the key as
    written (``losses.iv.epsilon: -1 is less than the minimum of 0``); None if it has none."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return ConfigError(key.lstrip(".") or "top level", error.message)


def check(path: Path, schema: Path = SCHEMA) -> str:
    """Check one config file as the workflow does; returns a one-line summary."""
    from biv.config import build_plan

    config = load_config(path)
    try:
        error = schema_error(config, schema)
        if error is not None:
            raise error
        plan = build_plan(config)
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
