"""E3: a short SimCLR run on the demo patches lifts linear-probe accuracy above the same
network at its random initialisation (seeds fixed; about a minute on 2 CPU cores)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from patchwork_widget.datasets import demo_classes, load_demo_dataset  # noqa: E402
from patchwork_widget.feature import ResNetFCN, SimCLRTrainer  # noqa: E402

AUGMENT = {"flip_left_right": True, "flip_up_down": True, "rot90": True, "zoom_scale": 0.3,
           "jitter": 1.0, "drop_color": 0.2, "gaussian_blur": 0.3}
MIN_GAIN = 0.02


def test_simclr_beats_random_init_on_linear_probe(tmp_path_factory, record_property):
    df = load_demo_dataset(tmp_path_factory.mktemp("demo"))
    classes = demo_classes()
    single = df[df[classes].sum(axis=1) == 1]
    keras.utils.set_random_seed(0)        # the fcn is built here, before the trainer seeds
    labels = {f: classes[int(np.argmax(row))]
              for f, row in zip(single.filepath[:600], single[classes].values[:600])}
    trainer = SimCLRTrainer(
        str(tmp_path_factory.mktemp("e3")), df.filepath.tolist(),
        fcn=ResNetFCN(3, filters=(16, 32, 64)), augment=AUGMENT, imshape=(32, 32),
        batch_size=64, lr=3e-3, temperature=0.2, downstream_labels=labels, seed=0)
    before = trainer.evaluate()["linear_classification_accuracy"]
    after = trainer.fit(2, save=False, progress=False)["linear_classification_accuracy"]
    record_property("linear_probe_random_init", before)
    record_property("linear_probe_after_simclr", after)
    print(f"E3 linear probe: random init {before:.3f} -> after 2 SimCLR epochs {after:.3f}")
    assert after >= before + MIN_GAIN, (before, after)
