"""Figures for strategy comparisons (A5): learning curves and where each strategy picked.

matplotlib is imported when a figure is drawn, so the rest of ``active`` never needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.active.simulate import aulc_summary


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    return plt


def plot_comparison(results: pd.DataFrame, model: str = "acquisition", ax: Any = None,
                    spread: str = "std") -> Any:
    """Metric against labels, one line per strategy: the mean over repeats with a band of
    +/- one standard deviation (``spread="std"``) or min to max (``"range"``). The legend
    gives each strategy's area under the learning curve. Returns the matplotlib Axes."""
    if spread not in ("std", "range"):
        raise ValueError(f"spread must be 'std' or 'range', got {spread!r}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    rows = results[results["model"] == model] if "model" in results else results
    if rows.empty:
        raise ValueError(f"no results for model {model!r}")
    aulc = aulc_summary(rows.assign(model=model), model)
    for strategy, curve in rows.groupby("strategy", sort=False):
        stats = curve.groupby("round").agg(n=("n_labeled", "mean"), mean=("metric", "mean"),
                                           std=("metric", "std"), lo=("metric", "min"),
                                           hi=("metric", "max")).fillna(0.0)
        low, high = ((stats["mean"] - stats["std"], stats["mean"] + stats["std"])
                     if spread == "std" else (stats["lo"], stats["hi"]))
        label = f"{strategy} (AULC {aulc.loc[strategy, 'mean']:.3f})"
        (line,) = ax.plot(stats["n"], stats["mean"], marker="o", markersize=3, label=label)
        ax.fill_between(stats["n"], low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("labeled rows")
    ax.set_ylabel(results.attrs.get("metric", "metric"))
    repeats = rows["repeat"].nunique()
    ax.set_title(f"{model} model, mean over {repeats} repeat{'s' * (repeats != 1)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Two coordinates per row: PCA, or t-SNE (van der Maaten and Hinton 2008) of the PCA-50
    projection for ``method="tsne"``."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        if x.shape[1] > 50:
            x = PCA(n_components=50, random_state=seed).fit_transform(x)
        return TSNE(n_components=2, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"unknown method {method!r}; allowed: pca, tsne")


def plot_picks(features: np.ndarray, picks: Mapping[str, Sequence[int]] | Sequence[int],
               method: str = "pca", labels: np.ndarray | None = None,
               coords: np.ndarray | None = None, seed: int = 0, axes: Any = None) -> Any:
    """Where each strategy's picks lie on a 2-D map of the features (one panel per strategy).

    ``picks`` maps strategy name to row positions (a plain sequence is one panel); every row is
    drawn in grey (coloured by ``labels`` for a multi-class problem, if given) and the picks
    on top. Pass ``coords`` (N x 2) to reuse a map. Returns the array of Axes.
    """
    plt = _pyplot()
    panels = dict(picks) if isinstance(picks, Mapping) else {"picks": picks}
    xy = embed_2d(features, method, seed) if coords is None else np.asarray(coords)
    if xy.shape != (len(features), 2):
        raise ValueError(f"coords must be N x 2 with N = {len(features)}, got {xy.shape}")
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        axes = axes[0]
    background = {"c": "lightgrey"}
    if labels is not None and np.asarray(labels).ndim == 1:
        background = {"c": np.asarray(labels), "cmap": "tab10", "alpha": 0.25}
    for ax, (name, rows) in zip(np.ravel(axes), panels.items()):
        rows = np.asarray(rows, dtype=np.int64)
        ax.scatter(xy[:, 0], xy[:, 1], s=4, **background)
        ax.scatter(xy[rows, 0], xy[rows, 1], s=18, c="black", marker="x")
        ax.set_title(f"{name} ({len(rows)} pick{'s' * (len(rows) != 1)})")
        ax.set_xticks([])
        ax.set_yticks([])
    return axes
