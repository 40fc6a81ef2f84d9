"""The ``reproduction`` block: which runs stand for the curves of the paper's figure, checked
against the plan's experiments and figures; its reference file, read and checked by
:func:`read_reference` (the workflow's plan checks the panels' names against it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from biv.config.errors import ConfigError
from biv.config.figures import check_run_ref


@dataclass(frozen=True)
class RunRef:
    experiment: str
    loss: str


@dataclass(frozen=True)
class ReproductionPanel:
    """The runs of one panel of the paper's figure: the noisy experiment's L2, BIV and cutoff
    losses, the clean-label reference run and its IV loss ("" when it trains none)."""

    experiment: str
    l2: str
    biv: str
    cutoffs: tuple[str, ...]
    no_noise: RunRef
    iv: str = ""


@dataclass(frozen=True)
class Reproduction:
    reference: str  # the YAML file of the values read off the paper's figure
    figure: str
    note: str
    panels: dict[str, ReproductionPanel]  # panel name of the reference file -> its runs

    def to_dict(self) -> dict:
        """The block as plain data, every default filled in (the reproduction rule's params)."""
        panels = {
            name: {
                "experiment": p.experiment,
                "l2": p.l2,
                "biv": p.biv,
                "cutoffs": list(p.cutoffs),
                "no_noise": {"experiment": p.no_noise.experiment, "loss": p.no_noise.loss},
                "iv": p.iv,
            }
            for name, p in self.panels.items()
        }
        return {"reference": self.reference, "figure": self.figure, "note": self.note} | {
            "panels": panels
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Reproduction:
        """The Reproduction of :meth:`to_dict`'s output, trusted as it is."""
        panels = {
            name: ReproductionPanel(
                p["experiment"],
                p["l2"],
                p["biv"],
                tuple(p["cutoffs"]),
                RunRef(**p["no_noise"]),
                p["iv"],
            )
            for name, p in data["panels"].items()
        }
        return cls(data["reference"], data["figure"], data["note"], panels)


def build_reproduction(block: dict, experiments: Mapping, figures: Mapping) -> Reproduction:
    """The schema-validated ``reproduction`` block, its figure, experiments and losses checked."""
    if block["figure"] not in figures:
        raise ConfigError("reproduction.figure", f"unknown figure {block['figure']!r}")
    for name, panel in block["panels"].items():
        key = f"reproduction.panels.{name}"
        exp = experiments.get(panel["experiment"])
        if exp is None:
            raise ConfigError(f"{key}.experiment", f"unknown experiment {panel['experiment']!r}")
        for role in ("l2", "biv", "iv"):
            if role in panel and panel[role] not in exp.losses:
                raise ConfigError(f"{key}.{role}", f"{panel[role]!r} is not a loss of {exp.name!r}")
        for i, loss in enumerate(panel.get("cutoffs", [])):
            if loss not in exp.losses:
                raise ConfigError(f"{key}.cutoffs[{i}]", f"{loss!r} is not a loss of {exp.name!r}")
        check_run_ref(f"{key}.no_noise", panel["no_noise"], experiments)
    return Reproduction.from_dict({"note": "", **block} | {"panels": _panels(block["panels"])})


def _panels(panels: Mapping) -> dict:
    return {name: {"cutoffs": [], "iv": "", **panel} for name, panel in panels.items()}


#: The values a reference panel may give, by kind (the rows of the reproduction report).
REFERENCE_VALUES = {"best": ("l2", "biv", "cutoff", "iv"), "final": ("no_noise_l2", "biv", "iv")}


def read_reference(path: str) -> dict:
    """The reference file of values read off the paper's figure, checked: ``read_off_fraction``
    in (0, 1), and per panel its ``axis`` [low, high] and its ``best`` and ``final`` values, each
    a number, a range [low, high] or a text (a value not read off). A ConfigError names the
    file and the key in it."""
    import yaml

    file = Path(path)
    if not file.is_file():
        where = "" if file.is_absolute() else f" (a relative path is read from {Path.cwd()})"
        raise ConfigError("reproduction.reference", f"{path!r} does not exist{where}")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("reproduction.reference", f"{path!r} is not valid YAML ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("panels"), dict):
        raise ConfigError("reproduction.reference", f"{path!r} has no `panels:` mapping")

    def check(key: str, ok: bool, value: object, expected: str) -> None:
        if not ok:
            where = f"reproduction.reference: {path}" + (f": {key}" if key else "")
            raise ConfigError(where, f"{value!r}: {expected}")

    extra = set(data) - {"source", "read_off_fraction", "panels"}
    check("", not extra, sorted(extra), "unknown keys; allowed: source, read_off_fraction, panels")
    fraction = data.get("read_off_fraction")
    in_range = _number(fraction) and 0 < fraction < 1
    check("read_off_fraction", in_range, fraction, "a number in (0, 1)")
    for name, panel in data["panels"].items():
        key = f"panels.{name}"
        check(key, isinstance(panel, dict), panel, "a mapping")
        extra = set(panel) - {"title", "axis", *REFERENCE_VALUES}
        check(key, not extra, sorted(extra), "unknown keys; allowed: title, axis, best, final")
        axis = panel.get("axis")
        check(f"{key}.axis", _range(axis) and axis[0] < axis[1], axis, "[low, high], low < high")
        for kind, names in REFERENCE_VALUES.items():
            values = panel.get(kind, {})
            check(f"{key}.{kind}", isinstance(values, dict), values, "a mapping")
            extra = set(values) - set(names)
            allowed = f"unknown; allowed: {', '.join(names)}"
            check(f"{key}.{kind}", not extra, sorted(extra), allowed)
            for value_name, value in values.items():
                ok = _number(value) or _range(value) or isinstance(value, str)
                expected = "a number, a range [low, high] or a text (a value not read off)"
                check(f"{key}.{kind}.{value_name}", ok, value, expected)
    return data


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(_number(v) for v in value)
        and value[0] <= value[1]
    )
