"""The registry owns everything about an order (issue 25, item 4): every registered order,
read from the registry and never typed here, goes through the menu, Session.sample, the
strategy comparison and online mode; the reference framework's names are aliases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from patchwork_widget.active.registry import (
    ALIASES,
    ORDERS,
    ClassUse,
    OrderChoice,
    Purpose,
    canonical_order,
    online_orders,
    order_options,
)
from patchwork_widget.active.simulate import compare_strategies
from patchwork_widget.active.strategies import resolve
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.active.online import OnlineOptions
from patchwork_widget.session import Session

CLASSES = ["cat", "dog"]


def choice_for(name: str, cls: str) -> OrderChoice:
    """The order with a class when it needs one."""
    return OrderChoice(name, cls if ORDERS[name].per_class is ClassUse.REQUIRED else None)


@pytest.fixture
def full_session(tmp_path, image_paths) -> Session:
    """40 rows, 10 labeled, with predictions, embeddings and propagation scores."""
    rng = np.random.default_rng(0)
    cat = np.arange(40) % 2
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(40, 2))).astype(np.float32)
    s = Session.open(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                     features=features, seed=0)
    for row in range(10):
        s.annotate(row, {"cat": float(cat[row]), "dog": float(1 - cat[row])})
    s.build_graph(k=5)
    s.propagate()
    probs = np.clip(np.stack([cat, 1 - cat], axis=1) * 0.6 + rng.uniform(0, 0.4, (40, 2)), 0, 1)
    s.set_predictions(pd.DataFrame(probs, columns=CLASSES))
    s.derived.set_embeddings(features)
    return s


@pytest.mark.parametrize("name", list(ORDERS))
def test_every_order_through_menu_sample_simulate_and_online(name, full_session):
    info = ORDERS[name]
    # the menu: offered (per class when it needs one), saying what it is for
    menu = [o for o in order_options(CLASSES) if o.name == name]
    assert menu and all(isinstance(o.to_dict()["purpose"], str) for o in menu)
    if info.per_class is ClassUse.REQUIRED:
        assert {o.cls for o in menu} == set(CLASSES)
    if info.purpose in (Purpose.POSITIVES, Purpose.NEGATIVES):
        assert OrderChoice(name, "cat").purpose == f"{info.purpose.value} of cat"
    # Session.sample: labeled rows for an order that ranks labels, unlabeled ones otherwise
    subset = {"kind": "all"} if not info.online else {"kind": "unlabeled"}
    picked = full_session.sample(subset=subset, order=choice_for(name, "cat"), count=5)
    assert len(picked) == 5 and len(set(picked)) == 5
    # the strategy comparison, by its name and by every alias
    x = full_session.features
    y = np.arange(40) % 2
    for label in (name, *info.aliases):
        strategy = label if info.per_class is not ClassUse.REQUIRED else OrderChoice(label, "1")
        results = compare_strategies(x, y, [strategy], lambda: LogisticRegression(), seed_size=6,
                                     query_size=4, rounds=1, repeats=1, seed=1)
        assert results["n_labeled"].tolist() == [6, 10]
    # online mode takes exactly the registry's online orders
    if info.online:
        assert OnlineOptions(order=choice_for(name, "cat")).order.name == name
    else:
        with pytest.raises(ValueError, match=f"'{name}' cannot re-rank an online round"):
            OnlineOptions(order=choice_for(name, "cat"))
    assert (name in online_orders()) == info.online


def test_the_reference_framework_names_are_aliases_in_one_place():
    framework = {"entropy": "max entropy", "margin": "margin",
                 "least_confidence": "least confidence", "random": "random", "badge": "badge",
                 "coreset": "coreset"}
    for alias, name in framework.items():
        assert canonical_order(alias) == name
        assert OrderChoice(alias).name == name
        assert resolve(alias).__name__ == name.replace(" ", "_")
    assert set(ALIASES.values()) <= set(ORDERS) and not set(ALIASES) & set(ORDERS)
    with pytest.raises(ValueError, match="unknown order 'bald'; available: random, .* "
                                         r"\(aliases: .*entropy = max entropy"):
        canonical_order("bald")


def test_the_online_tab_offers_the_registry_online_orders_it_can_name():
    pytest.importorskip("ipywidgets")
    from patchwork_widget.widget.online_tab import ONLINE_ORDERS

    assert "disagreement" not in ONLINE_ORDERS and "max entropy" in ONLINE_ORDERS
    assert set(ONLINE_ORDERS) <= set(online_orders())
