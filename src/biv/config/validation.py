"""The one schema validation of a config, for the workflow and ``biv check`` alike.

:func:`validated` checks a config against the schema shipped in this package (schema.yaml,
JSON Schema Draft 2020-12; config/schema.yaml links to it) and fills in its defaults exactly as
``snakemake.utils.validate`` does: every ``properties`` keyword met while validating sets the
defaults of the keys its instance lacks, nested ones included (an ``if``/``then`` branch's too),
before it validates them. The first violation becomes one ConfigError naming the key as
written.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources

from biv.config.errors import ConfigError


@functools.cache
def schema() -> dict:
    """The config schema (the package's schema.yaml, its loss entry built from the loss types of
    :mod:`biv.losses`), parsed once; callers must not edit it."""
    import yaml

    from biv.losses import loss_schema

    loaded = yaml.safe_load(resources.files("biv.config").joinpath("schema.yaml").read_text())
    loaded["$defs"]["loss"] = loss_schema()  # the file holds a placeholder: see its description
    return loaded


@functools.cache
def _validator_class():
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        # as snakemake.utils.validate (the jsonschema FAQ's recipe); a copy of each default, so
        # that filling in a default mapping never edits the schema or another key's value
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from validate_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def validated(config: object) -> dict:
    """A copy of ``config`` with the schema's defaults filled in; ConfigError (the key as
    written, e.g. ``losses.iv.epsilon: -1 is less than the minimum of 0``) when it violates the
    schema."""
    import jsonschema

    filled = copy.deepcopy(config)
    error = jsonschema.exceptions.best_match(_validator_class()(schema()).iter_errors(filled))
    if error is None:
        return filled
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raise ConfigError(key.lstrip(".") or "top level", error.message)
