"""Write examples/pretrain_simclr.ipynb (outputs empty) from the cell sources below.

Run: .venv/bin/python scripts/make_pretrain_notebook.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("""# Pre-train a feature extractor with SimCLR, then label with it

`patchwork_widget.feature` trains a fully-convolutional Keras network without labels
(SimCLR, HCL, MoCo; see `docs/feature.md`). The trainer updates the network you pass **in place**,
so the same object goes straight into the widget as `feature_extractor=`.

This notebook runs in a couple of minutes on a laptop CPU: a small ResNet, 32x32 inputs,
two short epochs over the ~1,300 demo patches. Real projects train longer on larger images."""),
    new_code_cell("""import numpy as np
import keras

from patchwork_widget import PatchworkWidget, prep_label_dataframe
from patchwork_widget.datasets import demo_classes, load_demo_dataset
from patchwork_widget.feature import ResNetFCN, SimCLRTrainer

truth = load_demo_dataset()          # ground-truth table of the demo patches
classes = demo_classes()
files = truth["filepath"].tolist()
len(files), classes"""),
    new_markdown_cell("""A few labels let the trainer run the linear-probe benchmark after every epoch
(accuracy of a logistic regression on pooled features, on a fixed split). Here we take them from
the demo's ground truth; in a real project they are the handful you already have."""),
    new_code_cell("""single = truth[truth[classes].sum(axis=1) == 1].head(400)
downstream = {f: classes[int(np.argmax(row))]
              for f, row in zip(single["filepath"], single[classes].values)}

keras.utils.set_random_seed(0)
fcn = ResNetFCN(num_channels=3, filters=(16, 32, 64))

trainer = SimCLRTrainer(
    "logs/simclr_demo", files,
    fcn=fcn,
    augment={"flip_left_right": True, "flip_up_down": True, "rot90": True,
             "zoom_scale": 0.3, "jitter": 1.0, "drop_color": 0.2, "gaussian_blur": 0.3},
    imshape=(32, 32), batch_size=64, lr=3e-3, temperature=0.2,
    downstream_labels=downstream, notes="demo notebook", seed=0,
)
print("linear probe at random init:", trainer.evaluate()["linear_classification_accuracy"])"""),
    new_code_cell("""metrics = trainer.fit(2, progress=False)
print("after 2 epochs:", {k: round(v, 3) for k, v in metrics.items()})
# Reed et al.'s label-free proxy: linear accuracy at telling quarter turns apart. Near chance
# (0.25) here, since rot90 augmentation taught the network to ignore quarter turns.
print("rotation proxy:", trainer.rotation_classification_test())"""),
    new_markdown_cell("""The run directory holds `config.yaml`, TensorBoard events (scalars, HPARAMS, confusion
matrix) and `fcn.keras`. `tensorboard --logdir logs` shows them.

Now hand the trained network to the labeling widget. `fcn` is the same object the trainer
updated; `trainer.save()` also wrote it to `logs/simclr_demo/fcn.keras`."""),
    new_code_cell("""assert trainer.fcn is fcn
df = prep_label_dataframe(files, classes)
widget = PatchworkWidget(df, feature_extractor=fcn, imshape=(128, 128),
                         outfile="simclr_demo_labels.csv", seed=0)
widget"""),
]


if __name__ == "__main__":
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    out = Path(__file__).resolve().parent.parent / "examples" / "pretrain_simclr.ipynb"
    nbformat.write(nb, out)
