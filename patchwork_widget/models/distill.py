"""Knowledge distillation (feature M7): train a student network on image files to match a
teacher's class probabilities.

The teacher is anything that gives one probability per image and class: an array, a DataFrame
of predictions, the widget (or its :class:`~patchwork_widget.session.Session`) after training,
or a trained model. The student learns from soft targets softened by a temperature ``T``
(Hinton et al. 2015, https://arxiv.org/abs/1503.02531, in the multi-label form: each class is
its own two-way softmax, i.e. a sigmoid)::

    loss = T**2 * mean over classes of BCE(sigmoid(teacher_logit / T), sigmoid(student_logit / T))

Images go through the shared input pipeline and augmentation
(:func:`~patchwork_widget.images.pipeline.dataset`); the learning rate follows the shared
schedules (:func:`~patchwork_widget.models.optim.make_schedule`). Each epoch records the loss,
the learning rate and, with test labels, the per-class test AUC and accuracy to the returned
history, TensorBoard (``logdir``) and ``logdir/history.yaml``; ``logdir/config.yaml`` holds
every hyperparameter.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
import yaml

from patchwork_widget.images.pipeline import AUTOTUNE, dataset
from patchwork_widget.models.io import write_config
from patchwork_widget.models.networks import BNAlexNetFCN, ResNetFCN
from patchwork_widget.models.loop import Hooks, run_epochs
from patchwork_widget.models.optim import build_optimizer, make_schedule
from patchwork_widget.models.predictions import class_metrics
from patchwork_widget.models.teachers import (
    check_probabilities,
    predict_images,
    teacher_probabilities,
)
from patchwork_widget.options.checks import (
    check_int,
    check_number,
    check_path,
    shown,
)
from patchwork_widget.options.legacy import legacy_names_for, rename_legacy
from patchwork_widget.options.params import Shape
from patchwork_widget.options.training import (
    BATCH_SIZE,
    LEARNING_RATE,
    WEIGHT_DECAY,
    Optimizer,
    Schedule,
    check_augment,
)

__all__ = ["DistillResult", "STUDENTS", "build_student", "distill", "distillation_loss",
           "teacher_probabilities"]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
HISTORY_FILE = "history.yaml"
_EPS = 1e-6

# Named student backbones (fully convolutional; a pooled sigmoid head is added).
STUDENTS = {
    "resnet_small": lambda c: ResNetFCN(c, filters=(16, 32, 64), name="student_fcn"),
    "resnet": lambda c: ResNetFCN(c, filters=(32, 64, 128), blocks_per_stage=2,
                                  name="student_fcn"),
    "bn_alexnet": lambda c: BNAlexNetFCN(c, width=0.5, name="student_fcn"),
    # the original's names: Keras applications, randomly initialised (nothing is downloaded)
    "vgg16": lambda c: keras.applications.VGG16(weights=None, include_top=False,
                                                input_shape=(None, None, c)),
    "vgg19": lambda c: keras.applications.VGG19(weights=None, include_top=False,
                                                input_shape=(None, None, c)),
    "resnet50": lambda c: keras.applications.ResNet50(weights=None, include_top=False,
                                                      input_shape=(None, None, c)),
    "inception": lambda c: keras.applications.InceptionV3(weights=None, include_top=False,
                                                          input_shape=(None, None, c)),
    "mobilenet": lambda c: keras.applications.MobileNetV2(weights=None, include_top=False,
                                                          input_shape=(None, None, c)),
}


@dataclass
class DistillResult:
    """What :func:`distill` returns; unpacks as ``student, history = distill(...)``.

    Attributes
    ----------
    student : keras.Model
        Images (float32 in [0, 1]) -> class probabilities.
    history : pandas.DataFrame
        One row per epoch: ``epoch``, ``loss``, ``learning_rate`` and, with test labels,
        ``auc_<class>``, ``acc_<class>`` and ``mean_auc``.
    classes : list of str
    """

    student: keras.Model
    history: pd.DataFrame
    classes: List[str]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.student, self.history))


def distillation_loss(teacher: tf.Tensor, student: tf.Tensor, temperature: float = 1.0
                      ) -> tf.Tensor:
    """Per-image soft-target loss (N,) between teacher and student probabilities (N, C).

    Both are turned into logits, divided by ``temperature`` and compared with binary
    cross-entropy per class; the mean over classes is scaled by ``temperature**2`` so the
    gradient's size does not depend on it.
    """
    t = tf.clip_by_value(tf.cast(teacher, tf.float32), _EPS, 1.0 - _EPS)
    s = tf.clip_by_value(tf.cast(student, tf.float32), _EPS, 1.0 - _EPS)
    t_logit = (tf.math.log(t) - tf.math.log1p(-t)) / temperature
    s_logit = (tf.math.log(s) - tf.math.log1p(-s)) / temperature
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.sigmoid(t_logit), logits=s_logit)
    return temperature ** 2 * tf.reduce_mean(bce, axis=-1)


def build_student(student: Union[str, keras.Model], num_classes: int,
                  imshape: Tuple[int, int], num_channels: int) -> keras.Model:
    """The student: a named backbone of :data:`STUDENTS` with global average pooling and a
    sigmoid layer, a ``.keras`` file to load, or a Keras model (checked: it must output
    ``num_classes`` values)."""
    if isinstance(student, (str, os.PathLike)) and os.fspath(student).endswith((".keras", ".h5")):
        student = keras.saving.load_model(os.fspath(student), compile=False)
    if isinstance(student, str):
        if student not in STUDENTS:
            raise ValueError(f"student must be a keras.Model, a .keras file or one of "
                             f"{sorted(STUDENTS)}; got {student!r}")
        inp = keras.Input(tuple(imshape) + (num_channels,))
        x = STUDENTS[student](num_channels)(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(num_classes, activation="sigmoid", name="probabilities")(x)
        return keras.Model(inp, out, name=f"student_{student}")
    if not isinstance(student, keras.Model):
        raise ValueError(f"student must be a keras.Model or a name; got {type(student).__name__}")
    if len(student.outputs) != 1 or student.outputs[0].shape[-1] != num_classes:
        raise ValueError(f"student must have one output of {num_classes} probabilities (one "
                         f"per class); its outputs are {[o.shape for o in student.outputs]}")
    return student


def distill(
    filepaths: Optional[Sequence[PathLike]],
    teacher_outputs: Any,
    student: Union[str, keras.Model] = "resnet_small",
    *,
    classes: Optional[Sequence[str]] = None,
    testfiles: Optional[Sequence[PathLike]] = None,
    testlabels: Optional[np.ndarray] = None,
    epochs: int = 5,
    temperature: float = 1.0,
    imshape: Tuple[int, int] = (64, 64),
    num_channels: int = 3,
    norm: Optional[float] = None,
    single_channel: bool = False,
    batch_size: int = 64,
    augment: Union[bool, Mapping[str, Any]] = False,
    num_parallel_calls: int = AUTOTUNE,
    optimizer: Union[Optimizer, str] = Optimizer.ADAM,
    learning_rate: float = 1e-3,
    schedule: Union[Schedule, str] = Schedule.COSINE,
    weight_decay: float = 0.0,
    logdir: Optional[PathLike] = None,
    strategy: Optional[tf.distribute.Strategy] = None,
    seed: Optional[int] = None,
    notes: str = "",
    decay_steps: Optional[int] = None,
    **original: Any,
) -> DistillResult:
    """Train ``student`` to reproduce the teacher's probabilities on ``filepaths``.

    Parameters
    ----------
    filepaths : sequence of paths, or None
        Training images. None takes every file the teacher has an output for (a widget,
        Session or DataFrame with a ``filepath`` column; excluded rows are left out).
    teacher_outputs : array (N, C), DataFrame, widget, Session, PatchworkModels or keras.Model
        Class probabilities per file; a model is run over ``filepaths`` first (unreadable
        files and NaN outputs are left out of training).
    student : str or keras.Model
        A name of :data:`STUDENTS`, a ``.keras`` file, or a Keras model from images to ``C``
        probabilities (build it inside ``strategy.scope()`` with a multi-device strategy).
    classes : sequence of str, optional
        Class names (default: the teacher's columns, or ``"0"``, ``"1"``, ...).
    testfiles, testlabels : optional
        Held-out images and their 0/1 labels (M, C), NaN where unknown: per-class AUC and
        accuracy after every epoch.
    epochs : int
    temperature : float
        Softening of both sides' logits, > 0 (1: plain soft targets).
    imshape, num_channels, norm, single_channel, batch_size, augment, num_parallel_calls
        The input pipeline (:func:`~patchwork_widget.images.pipeline.dataset`); ``augment``
        uses the shared vocabulary (docs/training.md).
    optimizer, learning_rate, schedule, weight_decay
        As in :class:`~patchwork_widget.options.TrainOptions`; the schedule spans the run.
    logdir : path, optional
        TensorBoard events, ``config.yaml`` and ``history.yaml``.
    strategy : tf.distribute.Strategy, optional
        Default: the current one; ``batch_size`` is the global batch.
    seed : int, optional
        ``keras.utils.set_random_seed(seed)`` before the student is built.
    notes : str
        Saved in ``config.yaml``.
    decay_steps : int, optional
        Half-life in steps of the ``exponential`` and ``staircase`` schedules (default: one
        epoch).
    **original
        The original's names: ``temp``, ``lr``, ``opt_type``, ``decay_type``, ``class_names``
        and ``lr_decay`` (its decay steps; 0 for a constant rate). Any other keyword is refused.
    """
    if original:
        named = _original_arguments(original)
        temperature = named.get("temperature", temperature)
        learning_rate = named.get("learning_rate", learning_rate)
        optimizer = named.get("optimizer", optimizer)
        schedule = named.get("schedule", schedule)
        classes = named.get("classes", classes)
        decay_steps = named.get("decay_steps", decay_steps)
    epochs = check_int("epochs", epochs, 1)
    temperature = check_number("temperature", temperature, 0.0, open_low=True)
    learning_rate = LEARNING_RATE.check("learning_rate", learning_rate, False)
    WEIGHT_DECAY.check("weight_decay", weight_decay, False)
    imshape = Shape().check("imshape", imshape, False)
    check_path("logdir", logdir, allow_none=True)
    if not isinstance(notes, str):
        raise ValueError(f"notes must be a string; got {shown(notes)}")
    batch_size = BATCH_SIZE.check("batch_size", batch_size, False)
    check_augment("augment", augment)
    optimizer = Optimizer.parse(optimizer, "optimizer")
    schedule = Schedule.parse(schedule, "schedule")
    if seed is not None:
        keras.utils.set_random_seed(check_int("seed", seed, 0))
    reading = dict(imshape=imshape, num_channels=num_channels, norm=norm,
                   single_channel=single_channel)
    files, probs, names = teacher_probabilities(teacher_outputs, filepaths, classes, reading,
                                                batch_size)
    check_probabilities(probs, "teacher_outputs")
    keep = np.isfinite(probs).all(axis=1)
    if not keep.all():
        logger.warning("%d of %d files have no teacher output (unreadable or NaN); "
                       "they are left out", int((~keep).sum()), len(files))
    files = [f for f, k in zip(files, keep) if k]
    probs = probs[keep]
    if len(files) < 2:
        raise ValueError(f"distillation needs at least 2 images with teacher outputs "
                         f"(teacher_outputs, filepaths); got {len(files)}")
    test = None
    if testfiles is not None:
        if testlabels is None:
            raise ValueError("testfiles needs testlabels (one row of 0/1/NaN per file)")
        labels = np.asarray(testlabels, dtype=np.float32)
        if labels.shape != (len(testfiles), len(names)):
            raise ValueError(f"testlabels must have shape ({len(testfiles)}, {len(names)}); "
                             f"got {labels.shape}")
        test = ([os.fspath(f) for f in testfiles], labels)

    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    drop = len(files) >= batch_size
    ds, steps = dataset(files, ys=probs, batch_size=batch_size, augment=augment, shuffle=True,
                        num_parallel_calls=num_parallel_calls, drop_remainder=drop, **reading)
    with strategy.scope():
        model = build_student(student, len(names), reading["imshape"], num_channels)
        if model.weights and not strategy.extended.variable_created_in_scope(
                model.weights[0].value):
            raise ValueError("the student was built outside strategy.scope(); build (or load) "
                             "it inside `with strategy.scope():` before passing it")
        lr = make_schedule(schedule, learning_rate, steps * epochs, steps,
                           decay_steps=check_int("decay_steps", decay_steps, 1, allow_none=True))
        opt = build_optimizer(optimizer, lr, model.trainable_variables, weight_decay)
    step_fn = _train_step(model, opt, strategy, temperature)
    dist_ds = strategy.experimental_distribute_dataset(ds)

    config = dict(trainer="distill", student=student if isinstance(student, str) else model.name,
                  classes=names, num_train=len(files), epochs=epochs, temperature=temperature,
                  batch_size=batch_size, augment=augment, optimizer=optimizer.value,
                  learning_rate=learning_rate, schedule=schedule.value,
                  weight_decay=weight_decay, strategy=type(strategy).__name__,
                  seed=seed, notes=notes, **{k: v for k, v in reading.items()})
    writer = None
    if logdir is not None:
        os.makedirs(logdir, exist_ok=True)
        write_config(os.fspath(logdir), config)
        writer = tf.summary.create_file_writer(os.fspath(logdir))

    rows: List[Dict[str, Any]] = []

    def epoch_end(epoch: int, row: Dict[str, Any]) -> None:
        row["learning_rate"] = float(lr(opt.iterations))
        if test is not None:
            row.update(_test_metrics(model, test, names, batch_size, reading))
        logger.info("distill epoch %d/%d: %s", epoch, epochs,
                    ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        if writer is not None:
            with writer.as_default():
                for key, value in row.items():
                    if key != "epoch" and math.isfinite(value):
                        tf.summary.scalar(key, value, step=epoch)
            writer.flush()
        rows.append(row)
        if writer is not None:
            _write_history(os.fspath(logdir), rows)

    run_epochs(epochs, lambda epoch: dist_ds, lambda batch: {"loss": step_fn(*batch)},
               Hooks(epoch_end=epoch_end))
    return DistillResult(model, pd.DataFrame(rows), names)


def _original_arguments(original: Mapping[str, Any]) -> Dict[str, Any]:
    """This function's arguments for the original's keywords
    (:data:`~patchwork_widget.options.legacy.LEGACY_NAMES`); TypeError for any other."""
    accepted = legacy_names_for(inspect.signature(distill).parameters)
    unknown = sorted(set(original) - accepted)
    if unknown:
        raise TypeError(f"distill() got unexpected keyword argument(s) {unknown}; besides its "
                        f"own it takes the original's {sorted(accepted)}")
    return rename_legacy(original)


def _train_step(model: keras.Model, opt: keras.optimizers.Optimizer,
                strategy: tf.distribute.Strategy, temperature: float):
    """One distributed step; returns the global batch's mean loss."""
    def replica_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            per_image = distillation_loss(y, model(x, training=True), temperature)
            loss = tf.nn.compute_average_loss(per_image)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function(autograph=False)
    def step(x: Any, y: Any) -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM,
                               strategy.run(replica_step, args=(x, y)), axis=None)

    return step


def _test_metrics(model: keras.Model, test: Tuple[List[str], np.ndarray], names: List[str],
                  batch_size: int, reading: Mapping[str, Any]) -> Dict[str, float]:
    files, labels = test
    probs = predict_images(model, files, batch_size, reading)
    auc, acc = class_metrics(probs, labels)
    out: Dict[str, float] = {}
    for name, a, c in zip(names, auc, acc):
        out[f"auc_{name}"] = float(a)
        out[f"acc_{name}"] = float(c)
    out["mean_auc"] = float(np.nanmean(auc)) if np.isfinite(auc).any() else math.nan
    return out


def _write_history(logdir: str, rows: List[Dict[str, Any]]) -> None:
    path = os.path.join(logdir, HISTORY_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump([{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in r.items()} for r in rows], f, sort_keys=False)
    os.replace(tmp, path)
