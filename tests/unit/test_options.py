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


# ---------------------------------------------------------------------------------------------
# Limits declared once (issue 25.2): the dataclasses, the forms and the sweep read CONSTRAINTS.

from patchwork_widget.active.online import OnlineOptions, StopRule  # noqa: E402

DECLARED = [TrainOptions, LossOptions, FixMatchOptions, FineTuneOptions, FeatureTrainerOptions,
            OnlineOptions, StopRule]


@pytest.mark.parametrize("cls", DECLARED)
def test_every_field_of_an_options_class_is_declared(cls):
    import dataclasses

    assert set(cls.CONSTRAINTS) == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", DECLARED)
def test_each_declared_bad_value_is_refused_naming_the_field(cls):
    for name, param in cls.CONSTRAINTS.items():
        for bad in param.invalid():
            with pytest.raises(ValueError, match=name):
                cls(**{name: bad})


def test_a_script_cannot_train_at_a_rate_the_train_tab_refuses():
    """The Train tab's bounds were 1e-7..10 and batch size <= 4096 while TrainOptions took any
    positive value (a script trained at lr 50); both read the declaration now."""
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number in \(0, 10\]; got 50"):
        TrainOptions(learning_rate=50)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 65536\]"):
        TrainOptions(batch_size=10**6)
    with pytest.raises(ValueError, match="learning_rate"):
        FeatureTrainerOptions(learning_rate=50)
    assert TrainOptions(learning_rate=10, batch_size=65536).learning_rate == 10


def test_form_bounds_come_from_the_declaration():
    from patchwork_widget.options.params import form_bounds

    assert form_bounds(TrainOptions, "learning_rate", 1e-9) == {"min": 1e-9, "max": 10.0}
    assert form_bounds(FixMatchOptions, "tau", 0.01) == {"min": 0.51, "max": 1.0}
    assert form_bounds(TrainOptions, "batch_size") == {"min": 1, "max": 65536}
    with pytest.raises(ValueError, match="not declared as a number interval"):
        form_bounds(TrainOptions, "optimizer")


def test_keras_spellings_of_pooling_and_the_originals_values_are_aliases():
    assert FineTuneOptions(pooling="average").pooling is Pooling.AVG
    assert FineTuneOptions(pooling="global_max").pooling is Pooling.MAX
    assert TrainOptions(optimizer="momentum").optimizer is Optimizer.SGD
    with pytest.raises(ValueError, match=r"pooling must be one of 'max', 'avg', 'flatten'; got "
                                         r"'mean' \(also accepted: 'average'"):
        FineTuneOptions(pooling="mean")


def test_the_originals_keywords_mean_the_same_in_the_trainers_and_distill():
    """One table: ``decay_type="warmupcosine"`` worked in distill() and was refused by the
    trainers."""
    opts = FeatureTrainerOptions.from_dict({"decay_type": "warmupcosine", "lr_decay": 100,
                                            "warmup_steps": 10, "opt_type": "momentum",
                                            "lr": 0.1})
    assert opts.schedule is Schedule.WARMUP_COSINE and opts.decay_steps == 100
    assert opts.optimizer is Optimizer.SGD and opts.learning_rate == 0.1
    constant = FeatureTrainerOptions.from_dict({"decay_type": "cosine", "lr_decay": 0})
    assert constant.schedule is Schedule.CONSTANT and constant.decay_steps is None
    with pytest.raises(ValueError, match="'lr' and 'learning_rate' are the same option"):
        FeatureTrainerOptions.from_dict({"lr": 0.1, "learning_rate": 0.1})


@pytest.mark.parametrize("cls", DECLARED)
def test_the_declaration_is_not_an_option(cls):
    """``CONSTRAINTS`` is a class variable: never listed as a valid option, never accepted."""
    from patchwork_widget.options.checks import check_fields

    with pytest.raises(ValueError, match=r"unknown .* option\(s\) \['CONSTRAINTS'\]") as refused:
        check_fields(cls, {"CONSTRAINTS": {}}, cls.__name__)
    assert "'CONSTRAINTS'" not in str(refused.value).split("valid:")[1]
