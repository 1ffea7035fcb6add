"""Write examples/quickstart.ipynb (outputs empty) from the cell sources below."""

from pathlib import Path

import nbformat

QUICKSTART = [
    ("markdown", """# patchwork_widget quickstart

The demo set is ~1,300 real image patches cut from pictures that scikit-image and scikit-learn
ship (textures, scenes, cells, stars, handwritten digits), some holding two classes. It is built
once into `~/.cache/patchwork_widget/demo` (set `PATCHWORK_DEMO_DIR` to move it).

Click the widget (or press Tab into it), then label with the keyboard: arrows move,
digits 1-9 cycle a class (? → yes → no), `0` marks every unset class "no" and moves on,
`x` exclude, `v` validation, `u` undo, Enter next, Esc leaves the widget.

Mark some images as validation with `v` as you go (say one in five): they are held out to
measure the model (the Train tab's validation loss, the Online tab's AUC and its stop rule).

Once a few dozen images are labeled: **Train** → Train (it builds the model of the **Model**
tab first, and runs in the background while you keep labeling), then sample by *max entropy* in
the Label tab. The **Online** tab retrains after every few labeled images and re-ranks what
comes next (with no validation images it holds out a share of yours by itself, and says so).
The **Propagate** tab spreads your labels over a nearest-neighbour graph of the features."""),
    ("code", """from patchwork_widget import PatchworkWidget, prep_label_dataframe
from patchwork_widget.datasets import default_demo_dir, demo_classes, demo_features, load_demo_dataset

truth = load_demo_dataset()  # ground truth, for checking your labels later
features = demo_features(truth["filepath"].tolist())  # simple colour and shape features
df = prep_label_dataframe(truth["filepath"].tolist(), demo_classes())
outfile = default_demo_dir() / "demo_labels.csv"  # beside the demo images, not in this folder
widget = PatchworkWidget(df, features=features, outfile=outfile, imshape=(192, 192), seed=0)
widget"""),
    ("markdown", """Every click is journaled beside `outfile` before the widget shows it as saved, and the
outfile itself is rewritten in the background a moment later; re-running the cell above picks
up where you left off. `widget.df` is the live table:"""),
    ("code", """classes = widget.session.classes  # yours, after any class you added or renamed
labeled = widget.df[widget.df[classes].notna().any(axis=1)]
labeled.head()"""),
    ("code", """widget.session.counts"""),
    ("code", """# how your labels compare with the ground truth (for the classes the demo knows)
known = [c for c in widget.session.classes if c in truth.columns]
agree = (labeled[known] == truth.loc[labeled.index, known]) | labeled[known].isna()
print(f"{len(labeled)} images labeled; their labels agree with ground truth: {bool(agree.all().all())}")
widget.save()  # write the CSV now, atomically"""),
]


def notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [make[kind](source) for kind, source in cells]
    return nb


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
    nbformat.write(notebook(QUICKSTART), out)
