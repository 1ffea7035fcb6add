"""Compare query strategies by simulating the labeler on fully labeled data (A5).

Given features and their true labels, :func:`compare_strategies` hides the labels, reveals a
random seed set, and then, round after round, fits the model, scores it on a held-out test
split, and lets each strategy choose the next ``query_size`` rows to reveal, as the reference
framework in ``seeds/003`` does (its ``ActiveLearningComparison``). Every strategy of a repeat
starts from the same split and the same seed set; repeats vary both. Following Lowell et al.
2019 ("Practical Obstacles to Deploying Active Learning", EMNLP), an optional *successor* model,
other than the one that chose the rows, can be trained on each acquired set to see whether the
gain carries over.

Labels: a 1-D array of class values is a multi-class (single-label) problem: the model's
``predict_proba`` columns are softmax rows, mapped onto every class seen in the data (a class
missing from the labeled rows so far gets probability 0). A 2-D 0/1 array is multi-hot: each
class gets its own binary model (the factory's estimator wrapped in scikit-learn's
``OneVsRestClassifier``) and the outputs are per-class sigmoid-like probabilities.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from patchwork_widget.active.registry import OrderChoice
from patchwork_widget.active.strategies import PoolState, Strategy, resolve
from patchwork_widget.options.checks import check_int, check_path, shown

logger = logging.getLogger(__name__)

Metric = Callable[[np.ndarray, np.ndarray], float]  # (y_true, probs) -> higher is better
METRICS = ("accuracy", "macro_f1", "auc")


def compare_strategies(
    features: np.ndarray,
    labels: np.ndarray,
    strategies: Sequence[str | OrderChoice] | Mapping[str, Strategy | str | OrderChoice],
    model_factory: Callable[[], Any],
    seed_size: int | float = 0.05,
    query_size: int | float = 0.05,
    rounds: int = 5,
    repeats: int = 3,
    metric: str | Metric = "accuracy",
    successor_factory: Callable[[], Any] | None = None,
    json_path: str | os.PathLike | None = None,
    seed: int = 0,
    test_fraction: float = 0.25,
    embed: Callable[[Any, np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Simulate active learning with each strategy and record the learning curves.

    Parameters
    ----------
    features : np.ndarray
        N x d inputs of the model.
    labels : np.ndarray
        N class values (multi-class) or N x C 0/1 (multi-hot), all known.
    strategies : sequence of names, or mapping of display name to strategy
        Order names from :data:`~.registry.ORDERS` (the widget's orders), ``OrderChoice``
        values (e.g. with a ``random_fraction``), or callables ``(state, k, rng) -> rows``
        (see :mod:`~.strategies` for the plug-in signature).
    model_factory : callable
        Returns a fresh unfitted scikit-learn-style classifier (``fit``, ``predict_proba``);
        make it deterministic (fixed ``random_state``) for reproducible runs.
    seed_size, query_size : int or float
        Rows revealed first and per round: a count, or a fraction (< 1) of the pool.
    rounds : int
        Query rounds; the curve has ``rounds + 1`` points (round 0 is the seed set).
    repeats : int
        Independent repeats (new split and seed set each).
    metric : str or callable
        ``"accuracy"``, ``"macro_f1"``, ``"auc"`` (one-vs-rest / per-class mean), or
        ``metric(y_true, probs) -> float``, higher better.
    successor_factory : callable, optional
        A second model trained on each acquired set (Lowell et al. 2019); its rows have
        ``model == "successor"``.
    json_path : str or os.PathLike, optional
        Also write the configuration and the records there as JSON.
    seed : int
        Seed of everything random: the same seed gives the same frame.
    test_fraction : float
        Share of rows held out for scoring, in (0, 1).
    embed : callable, optional
        ``embed(model, X)`` -> penultimate features for BADGE; default the model's input
        (exact for linear models) or, for a scikit-learn ``Pipeline``, its transformed input.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy, repeat, round, n_labeled, metric, model``; ``attrs["metric"]``
        holds the metric's name and ``attrs["picks"]`` the rows (positions in ``features``)
        each strategy picked in each round (see :func:`picked_rows`).
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be N x d, got shape {x.shape}")
    y = np.asarray(labels)
    if y.ndim not in (1, 2) or isinstance(labels, str):
        raise ValueError(f"labels must be N class values or an N x C multi-hot array; got "
                         f"{shown(labels)}")
    if len(y) != len(x):
        raise ValueError(f"labels has {len(y)} rows; features has {len(x)}")
    if y.ndim == 1 and y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"labels must be known for every row; {int(np.isnan(y).sum())} are NaN")
    multilabel = y.ndim == 2
    if multilabel and not np.isin(y, (0, 1)).all():
        raise ValueError("multi-hot labels must be 0 or 1 everywhere (no missing values)")
    named = _named(strategies)
    factories = {"model_factory": model_factory}
    if successor_factory is not None:
        factories["successor_factory"] = successor_factory
    for name, factory in factories.items():
        if not callable(factory):
            raise ValueError(f"{name} must be a callable returning an unfitted classifier, "
                             f"got {factory!r}")
    classes = None if multilabel else np.unique(y)
    names = [str(j) for j in range(y.shape[1])] if multilabel else [str(c) for c in classes]
    score = _metric(metric, classes)
    _check_fraction(test_fraction, "test_fraction")
    for name, value, low in (("rounds", rounds, 0), ("repeats", repeats, 1), ("seed", seed, 0)):
        check_int(name, value, low)
    check_path("json_path", json_path, allow_none=True)
    records, picked = [], []
    start = time.perf_counter()
    for repeat in range(repeats):
        split_rng = np.random.default_rng([seed, repeat])
        pool, test = _split(len(x), test_fraction, split_rng)
        n_seed = _count(seed_size, len(pool), "seed_size")
        n_query = _count(query_size, len(pool), "query_size")
        initial = _seed_set(y[pool], n_seed, multilabel, split_rng)
        cache: dict = {}
        for name, strategy in named.items():
            rng = np.random.default_rng([seed, repeat, zlib.crc32(name.encode())])
            labeled = initial.copy()
            for rnd in range(rounds + 1):
                model = _fit(model_factory, x[pool][labeled], y[pool][labeled], multilabel)
                n_labeled = int(labeled.sum())
                value = score(y[test], _probs(model, x[test], classes))
                records.append((name, repeat, rnd, n_labeled, value, "acquisition"))
                if successor_factory is not None:
                    successor = _fit(successor_factory, x[pool][labeled], y[pool][labeled],
                                     multilabel)
                    value = score(y[test], _probs(successor, x[test], classes))
                    records.append((name, repeat, rnd, n_labeled, value, "successor"))
                if rnd == rounds or labeled.all():
                    break
                state = PoolState(features=x[pool], labeled=labeled,
                                  probs=_probs(model, x[pool], classes),
                                  embeddings=_embeddings(model, x[pool], embed),
                                  multilabel=multilabel,
                                  known_labels=_known(y[pool], labeled, classes),
                                  class_names=names,
                                  model=model, shared=cache)
                picks = _checked(strategy(state, min(n_query, int((~labeled).sum())), rng),
                                 labeled, name)
                labeled = labeled.copy()
                labeled[picks] = True
                picked.append({"strategy": name, "repeat": repeat, "round": rnd + 1,
                               "rows": pool[picks].tolist()})
        logger.info("repeat %d/%d done (%.1f s)", repeat + 1, repeats, time.perf_counter() - start)
    frame = pd.DataFrame.from_records(
        records, columns=["strategy", "repeat", "round", "n_labeled", "metric", "model"])
    frame.attrs["metric"] = metric if isinstance(metric, str) else getattr(metric, "__name__",
                                                                             "metric")
    frame.attrs["picks"] = picked
    if json_path is not None:
        _write_json(frame, json_path, seed_size=seed_size, query_size=query_size, rounds=rounds,
                    repeats=repeats, seed=seed, test_fraction=test_fraction,
                    multilabel=multilabel)
    return frame


def area_under_learning_curve(results: pd.DataFrame, model: str = "acquisition") -> pd.DataFrame:
    """Area under each learning curve (trapezoid over ``n_labeled``), divided by the span of
    ``n_labeled`` so it reads as the curve's average metric: one row per strategy and repeat."""
    rows = results[results["model"] == model] if "model" in results else results
    out = []
    for (strategy, repeat), curve in rows.groupby(["strategy", "repeat"], sort=False):
        curve = curve.sort_values("n_labeled")
        n = curve["n_labeled"].to_numpy(dtype=float)
        m = curve["metric"].to_numpy(dtype=float)
        span = n[-1] - n[0]
        trapezoids = 0.5 * (m[1:] + m[:-1]) * np.diff(n)
        area = float(trapezoids.sum() / span) if span > 0 else float(m.mean())
        out.append((strategy, repeat, area))
    return pd.DataFrame(out, columns=["strategy", "repeat", "aulc"])


def aulc_summary(results: pd.DataFrame, model: str = "acquisition") -> pd.DataFrame:
    """Mean and standard deviation of :func:`area_under_learning_curve` over repeats, per
    strategy, best first."""
    table = area_under_learning_curve(results, model).groupby("strategy", sort=False)["aulc"]
    summary = pd.DataFrame({"mean": table.mean(), "std": table.std(ddof=0),
                            "repeats": table.count()})
    return summary.sort_values("mean", ascending=False)


def picked_rows(results: pd.DataFrame, repeat: int = 0) -> dict[str, np.ndarray]:
    """Every row each strategy picked in one repeat (all rounds, in order), for
    :func:`~.plots.plot_picks`."""
    out: dict[str, list[int]] = {}
    for record in results.attrs.get("picks", []):
        if record["repeat"] == repeat:
            out.setdefault(record["strategy"], []).extend(record["rows"])
    if not out:
        raise ValueError(f"no picks recorded for repeat {repeat}")
    return {name: np.asarray(rows, dtype=np.int64) for name, rows in out.items()}


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a frame written by :func:`compare_strategies` (``json_path``) back."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    frame = pd.DataFrame(data["results"])
    frame.attrs["metric"] = data["config"].get("metric", "metric")
    frame.attrs["picks"] = data.get("picks", [])
    return frame


# ---------------------------------------------------------------------------------------------


def _named(strategies: Sequence[str | OrderChoice] | Mapping[str, Strategy | str | OrderChoice]
           ) -> dict[str, Strategy]:
    if isinstance(strategies, Mapping):
        items = list(strategies.items())
    elif isinstance(strategies, (list, tuple)):
        items = []
        for s in strategies:
            if isinstance(s, Mapping):
                s = OrderChoice.from_dict(s)
            if not isinstance(s, (str, OrderChoice)):
                raise ValueError(f"strategies: {shown(s)} is not an order name; give callables "
                                 "as a mapping {display name: strategy}")
            items.append((s if isinstance(s, str) else s.title, s))
    else:
        raise ValueError(f"strategies must be a list of names or a mapping name -> strategy, "
                         f"got {type(strategies).__name__}")
    if not items:
        raise ValueError("strategies is empty")
    names = [str(name) for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"strategies names one strategy twice: {names}")
    try:
        return {name: resolve(s) for name, (_, s) in zip(names, items)}
    except ValueError as e:
        raise ValueError(f"strategies: {e}") from None


def _metric(metric: str | Metric, classes: np.ndarray | None) -> Metric:
    """The scoring function; ``classes`` are the sorted class values (None: multi-hot)."""
    if callable(metric):
        return metric
    from sklearn.metrics import f1_score, roc_auc_score

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}, or a "
                         "callable (y_true, probs) -> float")
    if classes is None:  # multi-hot: threshold 0.5 per class; AUC averaged over classes
        if metric == "accuracy":
            return lambda y, p: float(np.mean((p >= 0.5) == y))
        if metric == "macro_f1":
            return lambda y, p: float(f1_score(y, (p >= 0.5).astype(int), average="macro",
                                               zero_division=0))
        return lambda y, p: float(np.mean([roc_auc_score(y[:, c], p[:, c])
                                           for c in range(y.shape[1])
                                           if 0 < y[:, c].sum() < len(y)]))
    if metric == "accuracy":
        return lambda y, p: float(np.mean(classes[p.argmax(axis=1)] == y))
    if metric == "macro_f1":
        return lambda y, p: float(f1_score(y, classes[p.argmax(axis=1)], average="macro",
                                           zero_division=0))
    return lambda y, p: float(roc_auc_score(y, p, multi_class="ovr", labels=classes))


def _check_fraction(value: Any, name: str) -> None:
    if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")


def _count(value: int | float, pool: int, name: str) -> int:
    if isinstance(value, float) and 0.0 < value < 1.0:
        return max(1, int(round(value * pool)))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 < value <= pool:
        return int(value)
    raise ValueError(f"{name} must be a count in [1, {pool}] or a fraction in (0, 1), "
                     f"got {value!r}")


def _split(n: int, test_fraction: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _seed_set(y: np.ndarray, n_seed: int, multilabel: bool, rng: np.random.Generator
              ) -> np.ndarray:
    """A random seed set; for multi-class, redrawn (up to 100 times) until it holds at least
    two classes, so that a classifier can be fitted."""
    for _ in range(100):
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(len(y), size=n_seed, replace=False)] = True
        if multilabel or len(np.unique(y[mask])) > 1:
            return mask
    raise ValueError(f"a seed set of {n_seed} rows never held two classes: raise seed_size")


def _fit(factory: Callable[[], Any], x: np.ndarray, y: np.ndarray, multilabel: bool) -> Any:
    model = factory()
    if multilabel:
        from sklearn.multiclass import OneVsRestClassifier

        model = OneVsRestClassifier(model)
    with warnings.catch_warnings():  # small labeled sets: constant classes, early stopping
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("ignore", module="sklearn")
        return model.fit(x, y)


def _probs(model: Any, x: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    p = np.asarray(model.predict_proba(x), dtype=np.float64)
    if classes is None:
        return p
    full = np.zeros((len(x), len(classes)))
    full[:, np.searchsorted(classes, model.classes_)] = p
    return full


def _known(y: np.ndarray, labeled: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """The labels given so far as N x C floats (one-hot for multi-class), NaN elsewhere."""
    known = (y if classes is None else (y[:, None] == classes[None, :])).astype(np.float64)
    known[~labeled] = np.nan
    return known


def _embeddings(model: Any, x: np.ndarray, embed: Callable | None) -> np.ndarray:
    if embed is not None:
        return np.asarray(embed(model, x))
    if hasattr(model, "steps") and len(model.steps) > 1:  # a Pipeline: the last step's input
        return np.asarray(model[:-1].transform(x))
    return x


def _checked(picks: Any, labeled: np.ndarray, name: str) -> np.ndarray:
    picks = np.asarray(picks, dtype=np.int64).ravel()
    if picks.size and (picks.min() < 0 or picks.max() >= len(labeled)):
        raise ValueError(f"strategy {name!r} returned rows outside the pool")
    if len(np.unique(picks)) != len(picks) or labeled[picks].any():
        raise ValueError(f"strategy {name!r} returned a labeled row or a row twice")
    return picks


def _write_json(frame: pd.DataFrame, path: str | os.PathLike, **config: Any) -> None:
    config["metric"] = frame.attrs["metric"]
    config["strategies"] = list(dict.fromkeys(frame["strategy"]))
    payload = {"config": config, "results": frame.to_dict(orient="records"),
               "picks": frame.attrs["picks"]}
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1, default=_json_default)
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
