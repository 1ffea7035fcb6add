"""Write examples/compare_strategies.ipynb (outputs empty) from the cell sources below.

Run: .venv/bin/python scripts/make_compare_notebook.py
Check: .venv/bin/jupyter execute examples/compare_strategies.ipynb   (about a minute)
"""

from pathlib import Path

import nbformat
from make_examples import notebook  # same folder

CELLS = [
    ("markdown", """# Does active learning help here? Compare strategies before you label

`compare_strategies` simulates the labeler on data whose labels you already know: it reveals a
random seed set, then, round after round, trains the model, scores it on a held-out split and
lets each strategy choose the next rows to reveal. If a strategy does not beat `random` on a
problem like yours, do not expect it to help when you label for real (Lowell et al. 2019).

Everything here is NumPy / scikit-learn: no TensorFlow, no GPU."""),
    ("code", """import os
import tempfile

import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from patchwork_widget.active.simulate import compare_strategies, aulc_summary, picked_rows
from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.active.strategies import from_scores
from patchwork_widget.active.plots import plot_comparison, plot_picks

x, y = load_digits(return_X_y=True)
x = x / 16.0

def logistic():
    return LogisticRegression(max_iter=300, tol=1e-3)"""),
    ("markdown", """## Built-in strategies, a mix with random picks, and your own score

A strategy is an order the widget offers (its name, or an `OrderChoice` with a
`random_fraction`), or any function `(state, k, rng) -> rows`; `from_scores` turns a scoring
function of the model's probabilities into one (higher = label first)."""),
    ("code", """def smallest_top_probability(probs):
    return -probs.max(axis=1)   # the same idea as least confidence

strategies = {
    "random": "random",
    "max entropy": "max entropy",
    "margin": "margin",
    "badge": "badge",
    "coreset": "coreset",
    "margin + 20% random": OrderChoice("margin", random_fraction=0.2),
    "my score": from_scores(smallest_top_probability),
}
results = compare_strategies(x, y, strategies, logistic, seed_size=20, query_size=20,
                             rounds=6, repeats=3, metric="accuracy", seed=0,
                             json_path=os.path.join(tempfile.mkdtemp(), "digits.json"))
results.head()"""),
    ("code", """aulc_summary(results)   # area under the learning curve: the curve's mean metric"""),
    ("code", """plot_comparison(results)
plt.show()"""),
    ("markdown", """## Where did each strategy look?

A 2-D map of the features (PCA here; `method="tsne"` for t-SNE), digits coloured by class,
each strategy's picks of the first repeat drawn as crosses."""),
    ("code", """picks = picked_rows(results, repeat=0)
plot_picks(x, {name: picks[name] for name in ("random", "margin", "badge", "coreset")},
           labels=y)
plt.show()"""),
    ("markdown", """## The same orders inside the labeling widget

The widget ranks the rows of the label table with the same code, given the arrays a session
holds (model outputs, features, labels, propagation scores):"""),
    ("code", """from patchwork_widget.active import OrderChoice, available_orders, order_options, rank

model = logistic().fit(x[:100], y[:100])
probs = model.predict_proba(x)                       # N x 10
labels = np.full((len(x), 10), np.nan)
labels[np.arange(100), y[:100]] = 1.0                # what the labeler said so far
unlabeled = np.isnan(labels).all(axis=1)
arrays = dict(probs=probs, embeddings=x, features=x, labels=labels)
print(available_orders(**arrays))
classes = [str(c) for c in range(10)]
print([o.title for o in order_options(classes)][:8])
rank(OrderChoice("maxent", "3"), unlabeled, 5, rng=np.random.default_rng(0), classes=classes,
     **arrays)"""),
    ("markdown", """## Label propagation over a kNN graph

`knn_graph` builds a symmetric, normalised cosine kNN graph (exact search up to 20,000 rows,
above that IVF-Flat tuned while building to recall 0.95); `propagate` spreads the known labels per class (two channels, positive and
negative) and returns scores in [0, 1] for every row."""),
    ("code", """from patchwork_widget.active.graph import knn_graph
from patchwork_widget.active.propagate import propagate, pseudo_label_frame

graph = knn_graph(x, k=10)
onehot = (y[:, None] == np.arange(10)).astype(float)
known = np.where(np.random.default_rng(0).random(len(y)) < 0.05, 1.0, np.nan)[:, None]
scores = propagate(graph, onehot * known, method="zhou")
hidden = np.isnan(known[:, 0])
print(f"{int((~hidden).sum())} labeled rows; accuracy of the arg-max score on the rest: "
      f"{np.mean(scores[hidden].argmax(axis=1) == y[hidden]):.3f}")
pseudo_label_frame(scores, classes, threshold=0.9).notna().sum().sum()"""),
]


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "examples" / "compare_strategies.ipynb"
    nbformat.write(notebook(CELLS), out)
