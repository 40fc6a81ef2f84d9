"""The ``reproduction`` block: which runs stand for the curves of the paper's figure, checked
against the plan's experiments and figures. Its reference file is read by the workflow's plan
(:func:`biv.workflow.plan.load_plan`), which checks the panels' names against it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
