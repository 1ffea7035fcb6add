"""Write the example notebooks of the part-two feature trainers (outputs empty):
examples/pretrain_detcon.ipynb, pretrain_deepcluster.ipynb, pretrain_context_encoder.ipynb and
pretrain_multitask.ipynb.

Every notebook follows the same plan on the offline demo patches: what the method does and when
to use it, the trainer on a small ResNetFCN at 32x32, the method's own visual check, a short
fit, the run's records (config.yaml, TensorBoard events) and a linear probe of the features
against the same network at its random initialisation. The checks are asserts in the cells, so
tests/unit/test_examples.py fails when a notebook stops doing what its text says.

Run: .venv/bin/python scripts/make_ssl_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

AUGMENT = """augment = {"flip_left_right": True, "flip_up_down": True, "rot90": True,
           "zoom_scale": 0.3, "jitter": 1.0, "drop_color": 0.2, "gaussian_blur": 0.3}"""


def setup_cell(trainer: str, run: str, extra_imports: str = "") -> nbformat.NotebookNode:
    """Imports, the demo patches, 400 probe labels and an empty run folder."""
    return new_code_cell(f"""import shutil

import keras
import matplotlib.pyplot as plt
import numpy as np
{extra_imports}
from patchwork_widget.datasets import default_demo_dir, demo_classes, load_demo_dataset
from patchwork_widget.feature import ResNetFCN, {trainer}

truth = load_demo_dataset()             # ~1,300 demo patches, built once, nothing downloads
classes = demo_classes()
files = truth["filepath"].tolist()

# labels for the linear probe: 400 single-label patches (a fixed third of them held out)
single = truth[truth[classes].sum(axis=1) == 1].head(400)
probe_labels = {{f: classes[int(np.argmax(row))]
                for f, row in zip(single["filepath"], single[classes].values)}}

train_files = files[:768]                # one short epoch: 12 steps of 64 patches
logdir = default_demo_dir() / "runs" / "{run}"   # beside the demo images, not in this folder
shutil.rmtree(logdir, ignore_errors=True)       # start from an empty run folder
{AUGMENT}
len(files), len(probe_labels)""")


def network_cell() -> nbformat.NotebookNode:
    return new_code_cell("""keras.utils.set_random_seed(0)          # the same initial weights on every run
fcn = ResNetFCN(num_channels=3, filters=(16, 32, 64))   # small: 32x32 in, 8x8x64 out""")


def probe_before_cell() -> nbformat.NotebookNode:
    return new_code_cell("""before = trainer.evaluate()["linear_classification_accuracy"]
print(f"linear probe on the randomly initialised network: {before:.3f}")""")


def records_cells() -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell("""## What the run wrote

`config.yaml` holds every hyperparameter (the method's, the input's, the optimizer's, the
whole augmentation dict, the seed and the notes); the TensorBoard events hold the training
scalars of every step, the benchmarks of every epoch, the HPARAMS entry and the images.
`fcn.keras` is the trained extractor. Look at them with `tensorboard --logdir` and the folder
printed below."""),
        new_code_cell("""written = sorted(p.name for p in logdir.iterdir())
print(logdir)
print(written)
assert "config.yaml" in written and "fcn.keras" in written
assert any(name.startswith("events.out.tfevents") for name in written)
print("".join((logdir / "config.yaml").read_text().splitlines(keepends=True)[:12]))"""),
    ]


def probe_after_cells(what: str) -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell(f"""## Linear evaluation

The probe is a logistic regression on the globally average-pooled features of the 400
labelled patches, trained on two thirds and scored on the other third (the same split every
time). {what}"""),
        new_code_cell("""after = metrics["linear_classification_accuracy"]
print(f"random init {before:.3f} -> after training {after:.3f} ({after - before:+.3f})")
assert after > before, "training should lift the probe above the random network" """),
        new_markdown_cell("""`fcn` was trained in place: hand it to the labeling widget as it is,
`PatchworkWidget(df, feature_extractor=fcn, imshape=(32, 32))`, or load it later from
`fcn.keras` in the run folder. Real projects train for many more epochs on larger images;
`docs/feature.md` lists every option."""),
    ]


def detcon() -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell("""# Pre-train a feature extractor with DetCon

**What it does.** DetCon-S (Hénaff et al. 2021) is SimCLR applied to *segments* instead of
whole images. Each image is cut into regions by a cheap unsupervised segmentation
(Felzenszwalb's graph method, or a square grid), a few regions are drawn, and both augmented
views carry the regions' masks through the same crops, flips and turns. The network's feature
map is averaged under each mask, and every region is contrasted with the same region in the
other view against all other regions of the batch. One image gives several positive pairs,
and the network has to tell apart the parts of a scene, not only whole images.

**When to use it.** Images that hold several things (aerial tiles, microscopy fields, street
scenes), where a whole-image contrast would let the network describe only the dominant
content. It costs a segmentation per image in the input pipeline; on small uniform patches
plain SimCLR or HCL (`examples/pretrain_simclr.ipynb`) is as good and simpler.

This notebook runs in well under a minute on two CPU cores: 32x32 demo patches, a small
ResNet, one epoch."""),
        setup_cell("DetConTrainer", "detcon", "from patchwork_widget.viz import detcon_input_pipeline"),
        new_markdown_cell("""## Check the segments before training

`mean_scale` (the Felzenszwalb scale and smallest segment, in pixels), `num_samples` (segments
drawn per image) and the geometric augmentation have to fit together: an image with fewer
segments than `num_samples` is sampled with replacement (the same region twice), and a crop
that cuts a region out of one view drops that pair from the loss.
`viz.detcon_input_pipeline` runs the pipeline once and reports both rates; tune until they are
low. Columns: view 1, its segments, view 2, its segments (one colour per drawn segment)."""),
        new_code_cell("""report = detcon_input_pipeline(files[:256], augment, mean_scale=50, num_samples=4,
                               imshape=(32, 32), num_pairs=4)
print({k: v for k, v in report.items() if k != "figure"})
assert report["images"] == 256 and report["pairs"] == 256 * 4
assert 0 <= report["replacement_rate"] <= 1 and 0 <= report["discard_rate"] <= 1
plt.show()                               # report["figure"]"""),
        new_markdown_cell("""## Train

The trainer takes HCL's options too, with HCL's defaults (`beta=0.5`, `tau_plus=0.1`; set both
to 0 for the paper's plain contrastive loss).
`segment_pairs_kept` is the share of pairs the loss used (the rest were cropped away)."""),
        network_cell(),
        new_code_cell("""trainer = DetConTrainer(
    str(logdir), train_files, fcn=fcn, augment=augment,
    mean_scale=50, num_samples=4, temperature=0.2,
    imshape=(32, 32), batch_size=64, lr=3e-3,
    downstream_labels=probe_labels, notes="DetCon demo notebook", seed=0,
)"""),
        probe_before_cell(),
        new_code_cell("""metrics = trainer.fit(1, progress=False)
print({k: round(v, 3) for k, v in metrics.items()})
assert 0 < metrics["epoch_segment_pairs_kept"] <= 1"""),
        *records_cells(),
        *probe_after_cells("DetCon never saw a label; the probe measures how far its features "
                           "already separate the classes."),
    ]


def deepcluster() -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell("""# Pre-train a feature extractor with DeepCluster

**What it does.** DeepCluster (Caron et al. 2018) alternates two steps. It clusters the
network's own features of every training image (PCA to `pca_dim`, whitening, L2
normalisation, k-means with `k` clusters), then trains the network with a small dense head to
predict each image's cluster, drawing images evenly over the clusters. Every `mult` epochs
the clusters are refitted on the improved features. Empty clusters are re-seeded by
splitting the largest.

**When to use it.** Large unlabelled collections with many kinds of content, where you expect
natural groups; it needs no pairs of views (augmentation helps but is not what it learns
from), so it suits images where strong augmentation would destroy the content. Each refit
reads every training image once, so it is best with `mult > 1` on big sets. Choose `k`
larger than the number of classes you expect (a few times more).

This notebook runs in well under a minute on two CPU cores: 32x32 demo patches, a small
ResNet, one epoch."""),
        setup_cell("DeepClusterTrainer", "deepcluster",
                   "from sklearn.metrics import normalized_mutual_info_score"),
        network_cell(),
        new_code_cell("""trainer = DeepClusterTrainer(
    str(logdir), train_files, fcn=fcn, augment=augment,
    k=50, pca_dim=32, dense=[256], mult=1,
    imshape=(32, 32), batch_size=64, lr=3e-3,
    downstream_labels=probe_labels, notes="DeepCluster demo notebook", seed=0,
)"""),
        probe_before_cell(),
        new_markdown_cell("""## Cluster sizes, the method's own check

`refit()` clusters the training images now and returns each image's cluster (it is what `fit`
does before every `mult`-th epoch). Healthy clusters have comparable sizes; one cluster
holding most images means the features collapsed (lower the learning rate, or check the
augmentation). The normalised mutual information with the demo's classes (on the
single-label patches) shows how much of the classes the clusters recover."""),
        new_code_cell("""train_truth = truth.head(len(train_files))      # the rows of train_files
is_single = (train_truth[classes].sum(axis=1) == 1).to_numpy()
true_class = train_truth[classes].to_numpy().argmax(axis=1)


def cluster_check(labels, title, ax):
    sizes = np.bincount(labels, minlength=trainer.k)
    assert sizes.sum() == len(train_files) and (sizes > 0).all(), "every cluster has images"
    nmi = normalized_mutual_info_score(true_class[is_single], labels[is_single])
    ax.bar(range(trainer.k), np.sort(sizes)[::-1])
    ax.set_title(f"{title}: largest {sizes.max() / sizes.sum():.0%}, NMI {nmi:.2f}", fontsize=9)
    ax.set_xlabel("cluster (by size)")
    return nmi


clusters_at_random_init = trainer.refit()
print("largest cluster at random init:", np.bincount(clusters_at_random_init).max(), "images")"""),
        new_markdown_cell("""## Train

`cluster_accuracy` is how often the head predicts the pseudo-label; TensorBoard also has
`largest_cluster_share`, `clusters_reseeded` and, from the second refit on,
`pseudo_label_nmi` (agreement with the previous refit, which rises as the clusters
settle)."""),
        new_code_cell("""metrics = trainer.fit(1, progress=False)
print({k: round(v, 3) for k, v in metrics.items()})
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
axes[0].set_ylabel("images")
nmi_before = cluster_check(clusters_at_random_init, "random network", axes[0])
nmi_after = cluster_check(trainer.refit(), "after one epoch", axes[1])
print(f"NMI of the clusters with the demo classes: {nmi_before:.2f} -> {nmi_after:.2f}")
plt.show()"""),
        *records_cells(),
        *probe_after_cells("The clusters were the only supervision."),
    ]


def context_encoder() -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell("""# Pre-train a feature extractor with a context encoder

**What it does.** A context encoder (Pathak et al. 2016) learns by inpainting: every training
image loses a random rectangle, the network encodes what is left, and a decoder has to fill
the hole in. The loss is the squared error inside the rectangle, optionally plus an
adversarial loss from a small discriminator that tells real images from inpainted ones
(`adv_weight`; the paper used 0.001), which pushes towards sharp rather than blurry fills.

**When to use it.** Images with spatial structure the network can learn to continue (textures,
layouts, repeated objects), and as a method that needs no pairs of views, so it works with
little or no augmentation. It overfits small sets easily: pass held-out `testdata`, and
compare its `test_loss` (the reconstruction loss on test images, with the same rectangles
every time) with the training loss.

This notebook runs in well under a minute on two CPU cores: 32x32 demo patches, a small
ResNet, one epoch."""),
        setup_cell("ContextEncoderTrainer", "context_encoder",
                   "from patchwork_widget.feature.context_encoder import random_rectangles\n"
                   "from patchwork_widget.images import read_images"),
        new_code_cell("""test_files = files[-64:]                 # held out to spot memorising
assert not set(test_files) & set(train_files)"""),
        network_cell(),
        new_code_cell("""trainer = ContextEncoderTrainer(
    str(logdir), train_files, testdata=test_files, fcn=fcn, augment=augment,
    adv_weight=0.001, mask_size=(0.25, 0.5),
    imshape=(32, 32), batch_size=64, lr=3e-3,
    downstream_labels=probe_labels, notes="context encoder demo notebook", seed=0,
)"""),
        probe_before_cell(),
        new_markdown_cell("""## Train

Recorded each step: `loss`, `reconstruction_loss`, `adversarial_loss` and
`discriminator_loss`; each epoch `test_loss` and the `inpainting` image in TensorBoard."""),
        new_code_cell("""metrics = trainer.fit(1, progress=False)
print({k: round(v, 4) for k, v in metrics.items()})
print(f"reconstruction loss: train {metrics['epoch_reconstruction_loss']:.4f}, "
      f"test {metrics['test_loss']:.4f}")"""),
        new_markdown_cell("""## Inpainted test images, the method's own check

Rows: the test image, its masked input, the inpainting (the network's fill inside the
rectangle, the input everywhere else). For scale, the squared error of filling each hole with
the mean of its image's visible pixels is printed too: after one short epoch the decoder's
fills are still worse than that (they start from a flat gray), while the probe below shows the
encoder's features have already improved. Fills worth looking at take many epochs."""),
        new_code_cell("""images = read_images(test_files[:6], (32, 32)).arrays
masks = random_rectangles(len(images), 32, 32, trainer.mask_size, seed=(0, 1)).numpy()
predicted, composite = (t.numpy() for t in trainer.inpaint(images, masks))
outside = masks[..., 0] == 0
assert np.allclose(composite[outside], images[outside]), "only the hole is filled"
assert composite.min() >= 0 and composite.max() <= 1

visible_mean = ((images * (1 - masks)).sum(axis=(1, 2), keepdims=True)
                / (1 - masks).sum(axis=(1, 2), keepdims=True))
hole = masks[..., 0] == 1
print(f"squared error in the holes: inpainting {np.mean((predicted - images)[hole] ** 2):.4f}, "
      f"visible mean {np.mean((visible_mean - images)[hole] ** 2):.4f}")

fig, axes = plt.subplots(3, len(images), figsize=(1.6 * len(images), 5))
for j in range(len(images)):
    for i, img in enumerate((images[j], images[j] * (1 - masks[j]), composite[j])):
        axes[i, j].imshow(img, vmin=0, vmax=1)
        axes[i, j].set_axis_off()
for i, title in enumerate(("test image", "masked input", "inpainted")):
    axes[i, 0].set_title(title, fontsize=9, loc="left")
plt.show()"""),
        *records_cells(),
        *probe_after_cells("The network learned only to fill holes; no label was used."),
    ]


def multitask() -> list[nbformat.NotebookNode]:
    return [
        new_markdown_cell("""# Pre-train a feature extractor on several label columns (multitask)

**What it does.** `MultiTaskTrainer` is supervised pre-training on a table of several label
columns (tasks), any of them missing for any image: a shared trunk (the `fcn`, then layers
given by the same spec strings as the Model tab's convnet), one softmax head per task, and each
task's cross-entropy averaged over the images labelled for it (a missing label adds no loss and
no gradient). Epochs draw images evenly over the missingness patterns, so a task with few
labels is not drowned. The tasks are summed with weights 1, fixed weights, or learned ones
(`task_weights="adaptive"`, Kendall et al. 2018): each task gets a log-variance `s`, its loss
is weighted by `exp(-s)` and `s / 2` is added, so a task whose loss stays high (noisy labels,
a hard task) is turned down.

**When to use it.** You already have labels, just not the ones you want to label now: older
annotations, metadata columns, coarse categories, another team's table, partly filled. Training
on them gives the widget a network that already knows your domain.

This notebook runs in well under a minute on two CPU cores: 32x32 demo patches, a small
ResNet, two short epochs."""),
        setup_cell("MultiTaskTrainer", "multitask", "import pandas as pd"),
        new_markdown_cell("""## A table with missing labels

Three made-up tasks over the patches the probe does not use: `digit` (does the patch show a
handwritten digit, yes or no; known for every patch), `scene` (the fine class of single-class
patches, filled in for only half of them) and `scene_careless` (the fine class from a careless
annotator: 40% of the labels are random; missing on two-class patches)."""),
        new_code_cell("""rng = np.random.default_rng(0)
others = truth[~truth["filepath"].isin(probe_labels)].reset_index(drop=True)
one_class = (others[classes].sum(axis=1) == 1).to_numpy()
fine = pd.Series([classes[i] for i in others[classes].to_numpy().argmax(axis=1)], dtype=object)
fine[~one_class] = None
noisy = one_class & (rng.random(len(fine)) < 0.4)
careless = fine.copy()
careless[noisy] = rng.choice(classes, size=int(noisy.sum()))
tasks = pd.DataFrame({"digit": others["digit"].map({1.0: "yes", 0.0: "no"}),
                      "scene": fine.where(rng.random(len(fine)) < 0.5),
                      "scene_careless": careless})
print(tasks.notna().sum().to_dict(), "labels of", len(tasks), "patches")
tasks.head()"""),
        network_cell(),
        new_code_cell("""trainer = MultiTaskTrainer(
    str(logdir), others["filepath"].tolist(), tasks, fcn=fcn, augment=augment,
    shared_layers="64", task_weights="adaptive",
    imshape=(32, 32), batch_size=64, lr=3e-3,
    downstream_labels=probe_labels, notes="multitask demo notebook", seed=0,
)"""),
        probe_before_cell(),
        new_markdown_cell("""## Train

Recorded each step: `loss`, and per task `loss/<task>`, `accuracy/<task>` and
`log_variance/<task>`."""),
        new_code_cell("""metrics = trainer.fit(2, progress=False)
print({k: round(v, 3) for k, v in metrics.items() if "/" in k})"""),
        new_markdown_cell("""## The learned task weights, the method's own check

Each task's weight is `exp(-s)`, 1 at the start. A weight rises while its weighted loss
`exp(-s) L` is below 1/2 and falls while it is above, so it settles at `exp(-s) = 1 / (2 L)`. `digit` is easy (loss
soon below 1/2) and gains weight; the careless annotator's column keeps a high loss and is
turned down. In two short epochs the weights have only begun to move (Adam moves each `s` by
about the learning rate per step), so the clean `scene` column still drifts down at the same
pace as the careless one; the last line shows where each weight is heading from its current
loss. A task you care about that ends with a tiny weight deserves a look at its labels."""),
        new_code_cell("""weights = pd.Series(np.exp(-trainer.log_variances.numpy().astype(float)), index=trainer.tasks)
losses = pd.Series({t: metrics[f"epoch_loss/{t}"] for t in trainer.tasks})
print("learned weights:", weights.round(3).to_dict())
print("heading to 1 / (2 L):", (1 / (2 * losses)).round(3).to_dict())
assert weights["scene_careless"] < weights["digit"], "the noisy column should weigh less"
ax = weights.plot.bar(figsize=(4, 2.5), rot=0, title="learned task weights exp(-s)")
ax.axhline(1.0, color="gray", lw=0.8)
plt.show()"""),
        *records_cells(),
        *probe_after_cells("The probe uses patches the trainer never saw, and the demo's "
                           "classes, which the tasks only partly share."),
    ]


NOTEBOOKS = {
    "pretrain_detcon.ipynb": detcon,
    "pretrain_deepcluster.ipynb": deepcluster,
    "pretrain_context_encoder.ipynb": context_encoder,
    "pretrain_multitask.ipynb": multitask,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        made = cells()
        for i, cell in enumerate(made):
            cell.id = f"{name.split('.')[0]}-{i}"    # stable ids: regenerating gives no churn
        nb = new_notebook(cells=made, metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}})
        nbformat.validate(nb)
        nbformat.write(nb, EXAMPLES / name)
        print("wrote", EXAMPLES / name)


if __name__ == "__main__":
    main()
