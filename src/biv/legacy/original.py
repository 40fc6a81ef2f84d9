"""The original implementation's two command-line families, parsed into run parameters.

``parse_seed_era`` reads ``--exp_settings/--noise_settings/--noise_params/--estim_noise_params``
(July 2020); ``parse_final`` reads ``--experiment_settings/--model_settings/--noise_settings/
--params_settings/--parameters/--extra_exp`` (August 2020 onwards). Both return the same dict:
experiment, seed, dataset name and sizes, the loss and model specs of the config, the noise
setting (or None), the training block and a list of notes on fields that were ignored or
reinterpreted.
"""

from __future__ import annotations

from argparse import Namespace

from biv.legacy.fields import Fields, LegacyArgError

DATASETS = ("utkf", "wine", "bike")
#: Epochs per dataset (original settings.n_params); the seed era used 20 for every dataset.
EPOCHS = {"utkf": 20, "wine": 20, "bike": 100}
#: Test-set sizes of the final settings.py; the seed era's UTKFace test set was every image
#: after the first 16000 (23708 - 16000).
TEST_SIZE = {"utkf": 4000, "wine": 2491, "bike": 3379}
SEED_ERA_TRAIN_SIZE = {"utkf": 16000, "wine": 4000}
SEED_ERA_TEST_SIZE = {"utkf": 23708 - 16000, "wine": 2491}
SEED_ERA_LR = 0.001
SEED_ERA_BATCH = 256
#: Before the epsilon field existed the seed-era IVLoss hard-coded epsilon = 1.
SEED_ERA_EPSILON = 1.0
#: settings.default_values of the final code.
FINAL_EPSILON = 0.1
FINAL_EXTRA_EXP = "256,0,True,0.01"

MODELS = ("vanilla_ann", "vanilla_cnn", "resnet")
CNN = ("vanilla_cnn", "utkf")
MODEL_SPECS = {
    ("vanilla_ann", "bike"): {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": False},
    ("vanilla_ann", "wine"): {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": True},
    ("vanilla_cnn", "utkf"): {"name": "cnn"},
    ("resnet", "utkf"): {"name": "resnet18"},
}
P_MEANING = "p, probability of distribution 1"
X_MEANING = "average_variance X, the mean noise variance"
AVG_MEANING = "average_mean X, negative = off"
NOISE_TYPES_SEED = ("uniform", "gamma")
NOISE_TYPES_FINAL = ("uniform", "binary_uniform", "gamma")
PARAMS_TYPES = ("boundaries", "alphabeta", "meanvar", "meanvar_avg")

SEED_EXP_LAYOUTS = {
    5: "tag,seed,normalize,loss,average_mean",
    6: "tag,seed,normalize,loss,model,average_mean",
    7: "tag,seed,dataset,normalize,loss,model,average_mean",
    8: "tag,seed,dataset,normalize,loss,epsilon,model,average_mean",
}
SEED_NOISE_LAYOUTS = {
    6: "noise,noise_type,estimate_params,hetero_scale(-1=off),p,threshold_value(-1=off)",
    8: "noise,noise_type,estimate_params,max_heteroscedasticity,hetero_scale,p,"
    "noise_threshold,threshold_value",
}
FINAL_LAYOUTS = {
    "--experiment_settings": "tag,seed,dataset,normalize,train_size",
    "--model_settings": "model,loss[,epsilon_or_threshold]",
    "--noise_settings": "noise[,uniform|binary_uniform|gamma]",
    "--params_settings": "boundaries|alphabeta|meanvar|meanvar_avg[,p[,average_variance]]",
    "--parameters": "[var_scale,]values",
    "--extra_exp": "batch_size,var_disturbance,normalize_loss,lr",
}


def _flag(ns: Namespace, attr: str, needed_for: str, layout: str | None = None) -> Fields:
    flag = "--" + attr
    layout = layout or FINAL_LAYOUTS[flag]
    raw = getattr(ns, attr)
    if raw is None:
        raise LegacyArgError(f"{flag} is required {needed_for} [format: {layout}]")
    return Fields(flag, raw, layout)


def _model(fields: Fields, pos: int, dataset: str) -> dict:
    name = fields.choice(pos, "model", MODELS)
    spec = MODEL_SPECS.get((name, dataset))
    if spec is None:
        allowed = [m for (m, d) in MODEL_SPECS if d == dataset]
        raise fields.error(pos, "model", name, f"{', '.join(allowed)} for dataset {dataset}")
    return dict(spec, hidden=list(spec["hidden"])) if "hidden" in spec else dict(spec)


def _training(lr: float, batch_size: int, epochs: int, normalize: bool) -> dict:
    return {
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "eval_every": 1,
        "shuffle": False,
        "normalize": normalize,
    }


# --------------------------------------------------------------------------- noise settings


def _value_meanings(family: str, estimated: bool, k: int, var_scale: bool, avg: bool) -> list[str]:
    """Meaning of each value of the a1,a2,..,b1,b2,.. layout for ``k`` distributions."""
    idx = [str(i + 1) if k > 1 else "" for i in range(k)]
    if estimated:
        first = [f"mu{i}: mean noise variance of distribution {i or 1}" for i in idx]
        second = [f"v{i}: variance of the noise variance of distribution {i or 1}" for i in idx]
        if avg:
            first[1] = "mu2 (replaced by the value derived from the average variance)"
        if var_scale:
            second[0] = f"v{idx[0]} slot = var_scale s (max-heteroscedasticity scale)"
            if k == 2:
                second[1] = "v2 (ignored: var_scale applies to every distribution)"
    elif family == "uniform":
        first = [f"a{i}: lower bound of distribution {i or 1}" for i in idx]
        second = [f"b{i}: upper bound of distribution {i or 1}" for i in idx]
    else:
        first = [f"shape{i} (alpha) of gamma distribution {i or 1}" for i in idx]
        second = [f"rate{i} (beta) of gamma distribution {i or 1}" for i in idx]
    return first + second


def _values(
    fields: Fields, family: str, estimated: bool, k: int | None, var_scale: bool, avg: bool
) -> list[float]:
    """Parse 2 or 4 non-negative numbers (``k`` distributions; None: 1 or 2 from the count)."""
    counts = "2 values (one distribution) or 4 (two)" if k is None else f"{2 * k} values"
    if k is None:
        k = 2 if len(fields) > 2 else 1
    meanings = _value_meanings(family, estimated, k, var_scale, avg)
    out = []
    for pos, meaning in enumerate(meanings, start=1):
        high = 1.0 if var_scale and pos == k + 1 else None
        out.append(fields.number(pos, meaning, low=0.0, high=high))
    fields.no_more(2 * k, f"{counts} in the layout {fields.layout}")
    return out


def noise_setting(
    *,
    family: str,
    estimated: bool,
    values: list[float],
    var_scale: bool,
    p: float,
    average_mean: float | None,
    variance_disturbance: float,
) -> dict:
    """The noise setting (config format) for the original's ``data`` layout a1,a2,..,b1,b2,.."""
    k = len(values) // 2
    first, second = values[:k], values[k:]
    if estimated:
        if var_scale and family == "uniform":
            s = second[0]
            scaled = {"var_scale": s} if s > 0 else {"var": 0.0}  # s = 0: a point mass
            comps = [{"mean": m, **scaled} for m in first]
        else:
            comps = [{"mean": m, "var": v} for m, v in zip(first, second, strict=True)]
        mode = "meanvar" if average_mean is None else "meanvar_avg"
        if average_mean is not None:
            del comps[1]["mean"]
    elif family == "uniform":
        mode = "boundaries"
        comps = [{"a": a, "b": b} for a, b in zip(first, second, strict=True)]
    else:
        mode = "alphabeta"
        comps = [{"shape": a, "rate": b} for a, b in zip(first, second, strict=True)]
    setting = {
        "mode": mode,
        "distribution": family,
        "components": comps,
        "p": p if k == 2 else 1.0,
        "variance_disturbance": variance_disturbance,
    }
    if average_mean is not None:
        setting["average_mean"] = average_mean
    return setting


def _check_mu2(fields: Fields, pos: int, meaning: str, x: float, p: float, mu1: float) -> None:
    if x - p * mu1 <= 0:
        raise fields.error(
            pos,
            meaning,
            f"{x:g}",
            f"X > p*mu1 = {p * mu1:g}, so that mu2 = (X - p*mu1)/(1 - p) > 0",
        )


# --------------------------------------------------------------------------- seed era


def parse_seed_era(ns: Namespace) -> dict:
    """Map a seed-era (July 2020) command line; see the module docstring."""
    notes: list[str] = []
    raw = ns.exp_settings
    n = len(raw.split(","))
    layout = SEED_EXP_LAYOUTS[min(max(n, 5), 8)]
    es = Fields("--exp_settings", raw, f"{layout}  ({len(layout.split(','))}-field form)")
    pos = {name: i + 1 for i, name in enumerate(layout.split(","))}
    tag = es.text(pos["tag"], "tag")
    seed = es.integer(pos["seed"], "seed", low=0)
    dataset = es.choice(pos["dataset"], "dataset", ("utkf", "wine")) if "dataset" in pos else "utkf"
    normalize = es.boolean(pos["normalize"], "normalize")
    loss_type = es.choice(pos["loss"], "loss", ("mse", "iv", "biv"))
    epsilon = (
        es.number(pos["epsilon"], "epsilon", low=0.0) if "epsilon" in pos else SEED_ERA_EPSILON
    )
    # forms without a model field trained the CNN (on UTKFace, the only dataset then)
    model = _model(es, pos["model"], dataset) if "model" in pos else dict(MODEL_SPECS[CNN])
    average_mean = es.number(pos["average_mean"], AVG_MEANING)
    es.no_more(8, "at most 8 fields: " + SEED_EXP_LAYOUTS[8])

    loss = {"type": "mse"} if loss_type == "mse" else {"type": loss_type, "epsilon": epsilon}
    noise, threshold = _seed_noise(ns, es, pos["average_mean"], average_mean, notes)
    if threshold is not None:
        if loss_type != "mse":
            raise es.error(
                pos["loss"], "loss", loss_type, "mse when noise_threshold is on (maps to cutoff)"
            )
        loss = {"type": "cutoff", "threshold": threshold}
    return {
        "family": "seed",
        "experiment": tag,
        "seed": seed,
        "dataset": dataset,
        "train_size": SEED_ERA_TRAIN_SIZE[dataset],
        "test_size": SEED_ERA_TEST_SIZE[dataset],
        "noise": noise,
        "loss": loss,
        "loss_name": loss["type"],
        "model": model,
        "training": _training(SEED_ERA_LR, SEED_ERA_BATCH, EPOCHS[dataset], normalize),
        "notes": notes,
    }


def _seed_noise(
    ns: Namespace, es: Fields, avg_pos: int, average_mean: float, notes: list[str]
) -> tuple[dict | None, float | None]:
    """Noise setting and cutoff threshold (None: off) from the seed-era noise flags."""
    if ns.noise_settings is None:
        raise LegacyArgError(
            f"--noise_settings is required with --exp_settings [format: {SEED_NOISE_LAYOUTS[8]}]"
        )
    raw = ns.noise_settings
    n = len(raw.split(","))
    short = n == 6
    nf = Fields("--noise_settings", raw, SEED_NOISE_LAYOUTS[6 if short else 8])
    if not nf.boolean(1, "noise"):
        if n > 1:
            notes.append("noise is False: the other noise fields are ignored (as the original)")
        return None, None
    family = nf.choice(2, "noise_type", NOISE_TYPES_SEED)
    estimated = nf.boolean(3, "estimate_params")
    if short:
        scale = nf.number(4, "hetero_scale (-1 = off)", low=-1.0, high=1.0)
        if -1 < scale < 0:
            raise nf.error(4, "hetero_scale (-1 = off)", nf.values[3], "-1 or a number in [0, 1]")
        max_hetero = scale >= 0
        p = nf.number(5, P_MEANING, low=0.0, high=1.0)
        thr = nf.number(6, "threshold_value (-1 = off)", low=-1.0)
        if -1 < thr <= 0:
            raise nf.error(6, "threshold_value (-1 = off)", nf.values[5], "-1 or a number > 0")
        threshold = thr if thr > 0 else None
        nf.no_more(6, SEED_NOISE_LAYOUTS[6])
    else:
        max_hetero = nf.boolean(4, "max_heteroscedasticity")
        scale = nf.number(5, "hetero_scale", low=0.0, high=1.0)
        p = nf.number(6, P_MEANING, low=0.0, high=1.0)
        on = nf.boolean(7, "noise_threshold")
        meaning = "threshold_value in raw label units^2"
        threshold = nf.number(8, meaning, low=0.0, low_open=True) if on else None
        if not on:
            nf.number(8, meaning)
        nf.no_more(8, SEED_NOISE_LAYOUTS[8])

    if estimated:
        src = _flag(ns, "estim_noise_params", "when estimate_params is True", "mu1,mu2,..,v1,v2,..")
    else:
        layout = "a1,a2,..,b1,b2,.. (uniform) | shape1,..,rate1,.. (gamma)"
        src = _flag(ns, "noise_params", "when estimate_params is False", layout)
    var_scale = estimated and max_hetero and family == "uniform"
    k = 2 if len(src) > 2 else 1
    avg = estimated and average_mean >= 0 and k == 2 and p < 1
    values = _values(src, family, estimated, None, False, avg)
    if var_scale:
        values[k] = scale
        notes.append(
            f"max_heteroscedasticity: every distribution's variance is {scale:g} * Vmax "
            "(the v values of --estim_noise_params are ignored)"
        )
    elif max_hetero:
        notes.append("max_heteroscedasticity ignored: it applied to estimated uniform noise only")
    if avg:
        _check_mu2(es, avg_pos, AVG_MEANING, average_mean, p, values[0])
        notes.append(f"average_mean {average_mean:g} overrides mu2 (mu2 = (X - p*mu1)/(1 - p))")
    elif average_mean >= 0:
        notes.append(
            "average_mean is ignored: it applies only to estimated parameters of two "
            "distributions with p < 1"
        )
    if k == 1 and p != 1:
        notes.append(f"p = {p:g} ignored: a single distribution is always used (as the original)")
    setting = noise_setting(
        family=family,
        estimated=estimated,
        values=values,
        var_scale=var_scale,
        p=p,
        average_mean=average_mean if avg else None,
        variance_disturbance=0.0,
    )
    return setting, threshold


# --------------------------------------------------------------------------- final family


def parse_final(ns: Namespace) -> dict:
    """Map a final-family (August 2020 onwards) command line; see the module docstring."""
    notes: list[str] = []
    layout = FINAL_LAYOUTS["--experiment_settings"]
    ex = Fields("--experiment_settings", ns.experiment_settings, layout)
    tag = ex.text(1, "tag")
    seed = ex.integer(2, "seed", low=0)
    dataset = ex.choice(3, "dataset", DATASETS)
    normalize = ex.boolean(4, "normalize")
    train_size = ex.integer(5, "train_size", low=1)
    ex.ignore_rest(5, notes)

    extra = _extra_exp(ns, notes)
    ms = _flag(ns, "model_settings", "with --experiment_settings")
    model = _model(ms, 1, dataset)
    loss_type = ms.choice(2, "loss", ("mse", "cutoffMSE", "iv", "biv"))
    loss = _final_loss(ms, loss_type, extra["normalize_loss"], notes)
    noise = _final_noise(ns, extra["variance_disturbance"], notes)
    training = _training(extra["lr"], extra["batch_size"], EPOCHS[dataset], normalize)
    return {
        "family": "final",
        "experiment": tag,
        "seed": seed,
        "dataset": dataset,
        "train_size": train_size,
        "test_size": TEST_SIZE[dataset],
        "noise": noise,
        "loss": loss,
        "loss_name": loss["type"],
        "model": model,
        "training": training,
        "notes": notes,
    }


def _extra_exp(ns: Namespace, notes: list[str]) -> dict:
    layout = FINAL_LAYOUTS["--extra_exp"]
    if ns.extra_exp is not None and ns.batchsize is not None:
        raise LegacyArgError("--batchsize and --extra_exp both set the batch size: give one")
    if ns.batchsize is not None:
        bs = Fields("--batchsize", ns.batchsize, "batch_size")
        batch = bs.integer(1, "batch_size", low=1)
        bs.no_more(1, "a single integer")
        raw = f"{batch},0,True,0.01"
    else:
        raw = FINAL_EXTRA_EXP if ns.extra_exp is None else ns.extra_exp
    if ns.extra_exp is None:
        notes.append(f"--extra_exp not given: the original default {FINAL_EXTRA_EXP} (lr 0.01)")
    ee = Fields("--extra_exp", raw, layout)
    out = {
        "batch_size": ee.integer(1, "batch_size", low=1),
        "variance_disturbance": ee.number(2, "var_disturbance", low=0.0),
        "normalize_loss": ee.boolean(3, "normalize_loss"),
        "lr": ee.number(4, "lr (learning rate)", low=0.0, low_open=True),
    }
    ee.ignore_rest(4, notes)
    return out


def _final_loss(ms: Fields, loss_type: str, normalize_loss: bool, notes: list[str]) -> dict:
    if loss_type == "cutoffMSE":
        if ms.has(3):
            threshold = ms.number(3, "threshold C in raw label units^2", low=0.0, low_open=True)
        else:
            threshold = None
            notes.append(
                "cutoffMSE without a threshold: the original default 1 in normalized units, "
                "i.e. y_std**2 in raw units (set from the prepared data before training)"
            )
        ms.ignore_rest(3, notes)
        return {"type": "cutoff", "threshold": threshold}
    if loss_type == "mse":
        ms.ignore_rest(2, notes)  # the original read field 3 for biv and cutoffMSE only
        return {"type": "mse"}
    epsilon = ms.number(3, "epsilon", low=0.0) if ms.has(3) else FINAL_EPSILON
    ms.ignore_rest(3, notes)
    if loss_type == "iv":
        notes.append(
            f"loss iv: the original had no IV loss (iv trained plain MSE and ignored field 3); "
            f"here iv is the IV loss with epsilon {epsilon:g}"
            + ("" if ms.has(3) else " (the original's default)")
        )
    if loss_type == "biv" and not normalize_loss:
        notes.append("biv with normalize_loss=False is the IV baseline: loss type iv")
        return {"type": "iv", "epsilon": epsilon}
    return {"type": loss_type, "epsilon": epsilon}


def _final_noise(ns: Namespace, vd: float, notes: list[str]) -> dict | None:
    nf = _flag(ns, "noise_settings", "with --experiment_settings")
    if not nf.boolean(1, "noise"):
        if ns.params_settings is not None or ns.parameters is not None:
            notes.append("noise is False: --params_settings and --parameters are ignored")
        return None
    family = nf.choice(2, "noise_type", NOISE_TYPES_FINAL)
    nf.ignore_rest(2, notes)
    ps = _flag(ns, "params_settings", "when noise is True")
    ptype = ps.choice(1, "params_type", PARAMS_TYPES)
    avg = ptype == "meanvar_avg"
    estimated = ptype in ("meanvar", "meanvar_avg")
    if family == "binary_uniform" or avg or ps.has(2):
        p = ps.number(2, P_MEANING, low=0.0, high=1.0)
    else:
        p = 1.0
    x = None
    if avg:
        if p == 1:
            allowed = "p < 1 with meanvar_avg (mu2 = (X - p*mu1)/(1 - p))"
            raise ps.error(2, P_MEANING, ps.values[1], allowed)
        x = ps.number(3, X_MEANING, low=0.0, low_open=True)
    ps.ignore_rest(3 if avg else 2, notes)

    dist = "gamma" if family == "gamma" else "uniform"
    pf = _flag(ns, "parameters", "when noise is True", _parameters_layout(dist, estimated))
    var_scale = False
    values_fields = pf
    if pf.values[0].lower() in ("true", "false"):
        var_scale = pf.boolean(1, "var_scale")
        if var_scale and not estimated:
            allowed = "False with boundaries/alphabeta (True needs meanvar or meanvar_avg)"
            raise pf.error(1, "var_scale", pf.values[0], allowed)
        values_fields = pf.shifted(1)
    k = 2 if family == "binary_uniform" or avg else None
    scale_applies = var_scale and dist == "uniform"
    values = _values(values_fields, dist, estimated, k, scale_applies, avg)
    k = len(values) // 2
    if var_scale and not scale_applies:
        notes.append("var_scale=True is ignored for gamma noise (as the original): v is a variance")
    if scale_applies and k == 2:
        notes.append(f"var_scale: both distributions use {values[2]:g} * Vmax; v2 is ignored")
    if avg:
        _check_mu2(ps, 3, X_MEANING, x, p, values[0])
        notes.append(f"meanvar_avg: mu2 = (X - p*mu1)/(1 - p) replaces the given mu2 {values[1]:g}")
    if family != "binary_uniform" and ps.has(2) and k == 1 and p != 1:
        notes.append(f"p = {p:g} is ignored: a single distribution is always used")
    if family == "uniform" and k == 2:
        notes.append("uniform with 4 values is a two-distribution mixture, as binary_uniform")
    return noise_setting(
        family=dist,
        estimated=estimated,
        values=values,
        var_scale=scale_applies,
        p=p,
        average_mean=x,
        variance_disturbance=vd,
    )


def _parameters_layout(dist: str, estimated: bool) -> str:
    if estimated:
        return "[var_scale,]mu,v or [var_scale,]mu1,mu2,v1,v2 (var_scale=True: the v/v1 slot is s)"
    if dist == "uniform":
        return "[False,]a,b or [False,]a1,a2,b1,b2 (uniform bounds)"
    return "[False,]shape,rate or [False,]shape1,shape2,rate1,rate2 (gamma)"
