"""P5 / FEATURES M3, M5: training and prediction speed on pre-extracted features.

Run: ``python benchmarks/bench_training.py`` (about half a minute). Prints a table:

- one epoch of 10,000 samples (157 batches of 64) on features d=512, C=10, with our ``fit``
  and ``solver="minibatch"`` (stratified sampler, masked loss, custom ``tf.function`` step,
  per-step progress callback, validation on 1,000 rows after the epoch), first epoch (includes
  building the step) and a later epoch;
- the default solver (L-BFGS to convergence on all 10,000 labelled rows, then Platt calibration
  on the 1,000 validation rows) against scikit-learn's ``LogisticRegression`` per class;
- predictions for 100,000 rows with our ``predict`` (DataFrame aligned to the table);
- the baseline of a bare Keras ``model.fit`` / ``model.predict`` on the same arrays, same
  architecture (``Dense(10, sigmoid)``), same batch sizes, in the same process;
- a second table: ``predict_features`` for 1,000,000 rows x 256 (sigmoid and softmax heads)
  against NumPy ``expit(F @ W + b)`` / ``softmax`` in the same process, interleaved, with the
  load average beside (``--prediction`` runs only this table).

Goals: one epoch <= 1 s, predictions <= 2 s, prediction at 1M rows <= 1.2x NumPy.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from _table import print_table

N_TRAIN, N_VAL, N_PREDICT, D, C, BATCH = 10_000, 1_000, 100_000, 512, 10, 64
N_LARGE, D_LARGE, REPEATS = 1_000_000, 256, 3  # prediction at a million rows


def data(rng: np.random.Generator):
    centers = rng.normal(size=(C, D)).astype(np.float32)
    y = (rng.random((N_PREDICT, C)) < 0.3).astype(np.float32)
    x = (rng.normal(size=(N_PREDICT, D)) + y @ centers / 4).astype(np.float32)
    classes = [f"class_{j}" for j in range(C)]
    n = N_TRAIN + N_VAL
    df = pd.DataFrame({"filepath": [f"{i}.png" for i in range(N_PREDICT)], "exclude": False,
                       "validation": np.arange(N_PREDICT) >= N_TRAIN})
    labels = np.where(np.arange(N_PREDICT)[:, None] < n, y, np.nan)  # the rest unlabeled
    for j, c in enumerate(classes):
        df[c] = labels[:, j]
    return df, x, y, classes


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    import keras

    from patchwork_widget.models import TrainOptions, build_models, fit, predict

    rng = np.random.default_rng(0)
    df, x, y, classes = data(rng)
    steps = int(np.ceil(N_TRAIN / BATCH))

    # ours: fit with 1 epoch (includes set-up and tracing), then a 3-epoch run's later epochs
    keras.utils.set_random_seed(0)
    models = build_models(classes, feature_shape=(D,))
    calls = []
    opts = TrainOptions(solver="minibatch", epochs=1, batch_size=BATCH, batches_per_epoch=steps,
                        seed=0, calibrate=False)
    result, ours_first = timed(lambda: fit(models, df, features=x, options=opts,
                                           progress=lambda e, s, logs: calls.append(s)))
    assert len(calls) == steps
    opts3 = TrainOptions(solver="minibatch", epochs=3, batch_size=BATCH,
                         batches_per_epoch=steps, seed=0, calibrate=False)
    result3 = fit(models, df, features=x, options=opts3)
    ours_later = float(result3.history["seconds"].iloc[1:].median())
    preds, ours_pred_first = timed(lambda: predict(models, df, features=x))
    _, ours_pred = timed(lambda: predict(models, df, features=x))
    assert preds.shape == (N_PREDICT, C)

    # the default solver against scikit-learn's logistic regression, one per class
    from sklearn.linear_model import LogisticRegression

    lbfgs_models = build_models(classes, feature_shape=(D,))
    lbfgs, ours_lbfgs = timed(lambda: fit(lbfgs_models, df, features=x, options=TrainOptions()))
    _, sk_lbfgs = timed(lambda: [LogisticRegression(max_iter=1000).fit(x[:N_TRAIN], y[:N_TRAIN, j])
                                 for j in range(C)])

    # baseline: bare Keras on the same arrays (fully labelled rows, no masking or sampling)
    keras.utils.set_random_seed(0)
    bare = keras.Sequential([keras.Input((D,)), keras.layers.Dense(C, activation="sigmoid")])
    bare.compile("adam", "binary_crossentropy")
    xt, yt = x[:N_TRAIN], y[:N_TRAIN]
    _, keras_first = timed(lambda: bare.fit(xt, yt, batch_size=BATCH, epochs=1, verbose=0))
    _, keras_later = timed(lambda: bare.fit(xt, yt, batch_size=BATCH, epochs=1, verbose=0))
    _, keras_pred_first = timed(lambda: bare.predict(x, batch_size=4096, verbose=0))
    _, keras_pred = timed(lambda: bare.predict(x, batch_size=4096, verbose=0))

    rows = [
        ("fit: first epoch incl. set-up", ours_first, keras_first, ours_first / keras_first,
         "<= 1 s"),
        ("fit: later epoch", ours_later, keras_later, ours_later / keras_later, "<= 1 s"),
        ("predict 100k: first call", ours_pred_first, keras_pred_first,
         ours_pred_first / keras_pred_first, "<= 2 s"),
        ("predict 100k: again", ours_pred, keras_pred, ours_pred / keras_pred, "<= 2 s"),
        (f"fit: L-BFGS default ({int(lbfgs.history['iterations'].iloc[0])} iterations) vs "
         "sklearn LogisticRegression", ours_lbfgs, sk_lbfgs, ours_lbfgs / sk_lbfgs, "-"),
    ]
    print_table(
        f"P5 training and prediction on features (d={D}, C={C}, {steps} batches of {BATCH}; "
        f"val AUC after 1 epoch {result.history['val_auc'].iloc[0]:.3f})",
        ["task", "ours s", "bare keras / sklearn s", "ratio", "goal"], rows,
    )
    large_prediction()


def large_prediction() -> None:
    """Prediction at 1M rows against NumPy ``expit(F @ W + b)`` (softmax for one label per
    image) in the same process, interleaved, best of ``REPEATS``; the load beside."""
    import os

    from scipy import special

    from patchwork_widget.models import build_models
    from patchwork_widget.models.predictions import predict_features

    rng = np.random.default_rng(1)
    x = rng.normal(size=(N_LARGE, D_LARGE)).astype(np.float32)
    rows = []
    for single_label in (False, True):
        models = build_models([f"class_{j}" for j in range(C)], feature_shape=(D_LARGE,),
                              single_label=single_label)
        kernel, bias = (w.astype(np.float32) for w in models.output.get_weights())
        kernel = rng.normal(size=kernel.shape).astype(np.float32) / np.sqrt(D_LARGE)
        models.output.set_weights([kernel, bias])

        def numpy_reference():
            z = x @ kernel + bias
            return special.softmax(z, axis=1) if single_label else special.expit(z)

        ours_t, base_t = [], []
        for _ in range(REPEATS):
            ours_t.append(timed(lambda: predict_features(models, x))[1])
            base_t.append(timed(numpy_reference)[1])
        ours, base = min(ours_t), min(base_t)
        head = "softmax" if single_label else "sigmoid"
        rows.append((f"predict_features {N_LARGE:,} x {D_LARGE}, {head} head", ours, base,
                     ours / base, "<= 1.2x",
                     "/".join(f"{v:.1f}" for v in os.getloadavg())))
    print_table(f"Prediction at {N_LARGE:,} rows (best of {REPEATS}, interleaved)",
                ["task", "ours s", "NumPy s", "ratio", "goal", "load 1/5/15 min"], rows)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prediction", action="store_true",
                        help="only prediction at 1M rows against NumPy")
    if parser.parse_args().prediction:
        large_prediction()
    else:
        main()
