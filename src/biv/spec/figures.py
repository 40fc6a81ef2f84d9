"""The ``figures`` and ``reproduction`` blocks checked against the experiments (and the
reproduction's reference file)."""

from __future__ import annotations

import copy
from pathlib import Path

from biv.figure_spec import check_panel
from biv.spec.errors import ConfigError


def check_figure(key: str, fig: dict, experiments: dict) -> dict:
    """The figure with each panel checked and its defaults filled."""
    fig = copy.deepcopy(fig)
    panels = fig.get("panels") or []
    for i, panel in enumerate(panels):
        pkey = f"{key}.panels[{i}]"
        exp = experiments.get(panel.get("experiment"))
        if exp is None:
            raise ConfigError(
                f"{pkey}.experiment", f"unknown experiment {panel.get('experiment')!r}"
            )
        if panel.get("reference") is not None:
            _check_run_ref(f"{pkey}.reference", panel["reference"], experiments)
        types = {name: loss.type for name, loss in exp.losses.items()}
        try:
            panels[i] = check_panel(pkey, panel, list(exp.losses), types)
        except ValueError as err:
            raise ConfigError("", str(err)) from None
    return fig


def _check_run_ref(key: str, ref: dict, experiments: dict) -> None:
    exp = experiments.get(ref.get("experiment"))
    if exp is None:
        raise ConfigError(f"{key}.experiment", f"unknown experiment {ref.get('experiment')!r}")
    if ref.get("loss") not in exp.losses:
        raise ConfigError(f"{key}.loss", f"{ref.get('loss')!r} is not a loss of {exp.name!r}")


def check_reproduction(block: dict, experiments: dict, figures: dict) -> None:
    if block["figure"] not in figures:
        raise ConfigError("reproduction.figure", f"unknown figure {block['figure']!r}")
    reference = _reference_panels(block["reference"])
    for name, panel in block["panels"].items():
        key = f"reproduction.panels.{name}"
        if name not in reference:
            raise ConfigError(
                key,
                f"no panel {name!r} in the reference file {block['reference']!r} "
                f"(it has: {', '.join(sorted(reference)) or 'none'})",
            )
        exp = experiments.get(panel["experiment"])
        if exp is None:
            raise ConfigError(f"{key}.experiment", f"unknown experiment {panel['experiment']!r}")
        for role in ("l2", "biv"):
            if panel[role] not in exp.losses:
                raise ConfigError(f"{key}.{role}", f"{panel[role]!r} is not a loss of {exp.name!r}")
        for i, loss in enumerate(panel.get("cutoffs", [])):
            if loss not in exp.losses:
                raise ConfigError(f"{key}.cutoffs[{i}]", f"{loss!r} is not a loss of {exp.name!r}")
        _check_run_ref(f"{key}.no_noise", panel["no_noise"], experiments)


def _reference_panels(path: str) -> dict:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError("reproduction.reference", f"{path!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("reproduction.reference", f"{path!r} is not valid YAML ({err})") from None
    panels = data.get("panels") if isinstance(data, dict) else None
    if not isinstance(panels, dict):
        raise ConfigError("reproduction.reference", f"{path!r} has no `panels:` mapping")
    return panels
