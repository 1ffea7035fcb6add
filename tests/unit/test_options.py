"""Issue 9: every model, training and feature-trainer choice is an enum or a validated
dataclass in the TF-free patchwork_widget.options."""

import math
import subprocess
import sys

import pytest

from patchwork_widget.options import (
    FeatureTrainerOptions,
    FineTuneOptions,
    FixMatchOptions,
    HeadKind,
    LossKind,
    LossOptions,
    Optimizer,
    Pooling,
    Schedule,
    Solver,
    TrainOptions,
    Weighting,
    parse_spec,
)


def test_importing_and_building_options_needs_no_tensorflow():
    code = ("import sys; import patchwork_widget.options as o; "
            "o.TrainOptions(); o.FineTuneOptions(kind='convnet'); o.FeatureTrainerOptions(); "
            "import patchwork_widget.labels.sampler; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("enum", [Optimizer, Schedule, Solver, LossKind, Weighting, HeadKind,
                                  Pooling])
def test_every_choice_gives_dropdown_pairs_and_parses_its_values(enum):
    pairs = enum.choices()
    assert [v for _, v in pairs] == [m.value for m in enum]
    assert all(isinstance(label, str) and label for label, _ in pairs)
    for _, value in pairs:
        assert enum.parse(value) is enum(value) and enum.parse(enum(value)) is enum(value)
        assert f"{enum(value)}" == value and enum(value) == value


def test_a_bad_choice_names_the_value_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"optimizer must be one of 'adam', 'adamw', 'sgd', "
                                         r"'rmsprop', 'lars'; got 'adm'"):
        TrainOptions(optimizer="adm")
    with pytest.raises(ValueError, match="pooling must be one of"):
        FineTuneOptions(pooling="mean")
    with pytest.raises(ValueError, match="sampling must be one of"):
        TrainOptions(sampling="balanced")


@pytest.mark.parametrize("make,field", [
    (TrainOptions, "learning_rate"), (TrainOptions, "weight_decay"), (TrainOptions, "l2"),
    (LossOptions, "label_smoothing"), (LossOptions, "gamma"), (LossOptions, "alpha"),
    (FixMatchOptions, "lam"), (FixMatchOptions, "tau"), (FixMatchOptions, "feature_noise"),
    (FineTuneOptions, "dropout_rate"), (FeatureTrainerOptions, "learning_rate"),
    (FeatureTrainerOptions, "weight_decay"), (FeatureTrainerOptions, "norm"),
])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_refused_by_every_number(make, field, bad):
    with pytest.raises(ValueError, match=field):
        make(**{field: bad})


def test_options_hold_enums_and_give_plain_dicts():
    opts = TrainOptions.from_dict({"optimizer": "sgd", "loss": {"kind": "focal"},
                                   "fixmatch": {"lambda": 0.5}})
    assert opts.optimizer is Optimizer.SGD and opts.loss.kind is LossKind.FOCAL
    plain = opts.as_dict()
    assert plain["optimizer"] == "sgd" and type(plain["optimizer"]) is str
    assert plain["loss"]["kind"] == "focal" and plain["fixmatch"]["lam"] == 0.5
    assert TrainOptions.from_dict(plain) == opts
    again = FineTuneOptions.from_dict(FineTuneOptions(pooling="avg").as_dict())
    assert again.pooling is Pooling.AVG


def test_defaults_converge_at_any_label_count():
    opts = TrainOptions()
    assert opts.solver is Solver.AUTO and opts.min_steps >= 100 and opts.calibrate
    assert opts.sampling is Weighting.PROPORTIONAL and opts.l2 == 1.0


def test_unknown_fields_are_named():
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['lr'\]"):
        TrainOptions.from_dict({"lr": 0.1})
    with pytest.raises(ValueError, match="unknown fine-tuning option"):
        FineTuneOptions.from_dict({"layers": 3})


def test_spec_parsing_names_the_bad_token():
    assert [s.kind.value for s in parse_spec("16, p, d, r")] == ["conv", "pool", "dropout",
                                                                "residual"]
    with pytest.raises(ValueError, match="bad token 'x' at position 2"):
        FineTuneOptions(kind="convnet", spec="16,x")


def test_feature_trainer_options_take_the_references_names():
    ref = FeatureTrainerOptions.from_dict({"opt_type": "momentum", "lr": 0.1,
                                           "decay_type": "none", "lr_decay": 0})
    assert ref.optimizer is Optimizer.SGD and ref.learning_rate == 0.1
    assert ref.schedule is Schedule.CONSTANT and ref.decay_steps is None
    with pytest.raises(ValueError, match="same option"):
        FeatureTrainerOptions.from_dict({"lr": 0.1, "learning_rate": 0.2})
    with pytest.raises(ValueError, match="needs decay_steps"):
        FeatureTrainerOptions(schedule="cosine")
    with pytest.raises(ValueError, match="warmup_steps >= 1"):
        FeatureTrainerOptions(schedule="warmup_cosine", decay_steps=10)
    assert FeatureTrainerOptions(imshape=[32, 48]).as_dict()["imshape"] == [32, 48]
