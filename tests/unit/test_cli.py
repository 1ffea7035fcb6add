"""B6: the command line. The round trip runs each step in its own process, as batch jobs would:
pretrain (1 epoch, tiny net) -> extract in two shards -> join -> the widget opens on the
features -> export."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from patchwork_widget import cli
from patchwork_widget.cli_extract import parse_shard, part_path, shard_rows
from patchwork_widget.datasets import load_demo_dataset

COMMANDS = ["demo", "pretrain", "extract", "join", "export", "serve"]


def run(*args: str, cwd) -> str:
    done = subprocess.run([sys.executable, "-m", "patchwork_widget.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def demo_files(tmp_path):
    df = load_demo_dataset(tmp_path / "demo", n_per_class=4, patch_size=32)
    (tmp_path / "files.txt").write_text("\n".join(df.filepath) + "\n")
    return df.filepath.tolist()


CONFIG = """\
trainer: simclr
logdir: run
trainingdata: files.txt
fcn: resnet_small
epochs: 1
imshape: [32, 32]
batch_size: 16
lr: 1.0e-3
augment: {flip_left_right: true, zoom_scale: 0.5}
"""


def test_round_trip_pretrain_extract_in_shards_join_open_export(tmp_path, demo_files):
    pytest.importorskip("tensorflow")
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    out = run("pretrain", "cfg.yaml", cwd=tmp_path)
    assert (tmp_path / "run" / "fcn.keras").is_file() and "fcn.keras" in out
    assert (tmp_path / "run" / "config.yaml").is_file()  # the Python API's records
    for shard in ("0/2", "1/2"):
        run("extract", "--model", "run/fcn.keras", "--files", "files.txt", "--out",
            "feats.npy", "--shard", shard, "--imshape", "32", "32", "--no-progress",
            cwd=tmp_path)
    again = run("extract", "--model", "run/fcn.keras", "--files", "files.txt", "--out",
                "feats.npy", "--shard", "1/2", "--imshape", "32", "32", "--no-progress",
                cwd=tmp_path)  # resumes: nothing left to do
    assert "rows 26..51 of 52" in again
    run("join", "--out", "feats.npy", "--shards", "2", cwd=tmp_path)
    features = np.load(tmp_path / "feats.npy", mmap_mode="r")
    assert features.shape[0] == len(demo_files)

    from patchwork_widget.images.extract import extract_features
    from patchwork_widget.models.io import load_keras

    whole = extract_features(demo_files, load_keras(tmp_path / "run" / "fcn.keras"),
                             imshape=(32, 32), progress=False).features
    np.testing.assert_allclose(features, whole, atol=1e-5)  # the parts joined in order

    from patchwork_widget import PatchworkWidget, prep_label_dataframe

    prep_label_dataframe(demo_files, ["a", "b"]).to_csv(tmp_path / "labels.csv", index=False)
    widget = PatchworkWidget(str(tmp_path / "labels.csv"), features=features)
    widget.session.annotate(3, {"a": 1.0})
    widget.close()

    run("export", "labels.csv", "--out", "exported", "--format", "parquet", cwd=tmp_path)
    labels = pd.read_parquet(tmp_path / "exported" / "labels.parquet")
    history = pd.read_parquet(tmp_path / "exported" / "history.parquet")
    assert labels.loc[3, "a"] == 1.0 and labels["a"].notna().sum() == 1
    assert list(history[["row", "field", "new"]].iloc[0]) == [3, "a", 1.0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0 and "usage: patchwork-widget " + command in capsys.readouterr().out


def test_an_unknown_yaml_key_fails_listing_the_valid_ones(tmp_path, demo_files, capsys):
    pytest.importorskip("tensorflow")
    (tmp_path / "cfg.yaml").write_text(CONFIG + "temprature: 0.5\n")
    assert cli.main(["pretrain", str(tmp_path / "cfg.yaml")]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) ['temprature']" in err and "'temperature'" in err
    assert "'lr'" in err and "'epochs'" in err
    (tmp_path / "cfg.yaml").write_text(CONFIG.replace("simclr", "simclr2"))
    assert cli.main(["pretrain", str(tmp_path / "cfg.yaml")]) == 2
    assert "trainer must be one of" in capsys.readouterr().err


def test_shards_cover_every_row_once_in_order():
    for n_rows in (0, 1, 7, 52):
        for n in (1, 2, 3, 8):
            rows = [r for i in range(n) for r in shard_rows(n_rows, (i, n))]
            assert rows == list(range(n_rows))
    assert parse_shard("1/4") == (1, 4)
    assert part_path("x/feats.npy", (1, 4)).name == "feats.part-1-of-4.npy"
    for bad in ("4/4", "1", "-1/2", "a/b"):
        with pytest.raises(Exception, match="i/n"):
            parse_shard(bad)


def test_join_refuses_missing_or_unfinished_parts(tmp_path, capsys):
    assert cli.main(["join", "--out", str(tmp_path / "f.npy"), "--shards", "2"]) == 2
    assert "missing part(s)" in capsys.readouterr().err
    for i in range(2):
        part = part_path(tmp_path / "f.npy", (i, 2))
        np.save(part, np.zeros((3, 2), np.float32))
        np.save(f"{part}.status.npy", np.array([1, 1, i], np.int8))  # part 0 has a row to do
    assert cli.main(["join", "--out", str(tmp_path / "f.npy"), "--shards", "2"]) == 2
    assert "unfinished (1 of 3 rows left)" in capsys.readouterr().err
    assert not (tmp_path / "f.npy").exists()


def test_export_writes_labels_and_history_as_csv(tmp_path, demo_files):
    from patchwork_widget.labels import LabelStore, prep_label_dataframe

    path = tmp_path / "labels.csv"
    with LabelStore.open(path, df=prep_label_dataframe(demo_files[:5], ["x"])) as store:
        store.annotate(2, {"x": 0.0})
    assert cli.main(["export", str(path)]) == 0
    folder = tmp_path / "labels_export"
    assert pd.read_csv(folder / "labels.csv")["x"].tolist()[2] == 0.0
    assert pd.read_csv(folder / "history.csv")["row"].tolist() == [2]
    assert cli.main(["export", str(tmp_path / "nope.csv")]) == 2


def test_serve_refuses_an_open_interface_without_a_token(tmp_path, demo_files, capsys):
    from patchwork_widget.labels import prep_label_dataframe

    prep_label_dataframe(demo_files[:3], ["x"]).to_csv(tmp_path / "l.csv", index=False)
    assert cli.main(["serve", str(tmp_path / "l.csv"), "--ip", "0.0.0.0", "--no-token"]) == 2
    assert "token=False is allowed only on the loopback" in capsys.readouterr().err


def test_serve_takes_its_label_file_as_outfile_and_its_old_name_project_with_a_warning(
        tmp_path, demo_files):
    from patchwork_widget.labels import prep_label_dataframe
    from patchwork_widget.widget.serve import serve

    path = tmp_path / "l.csv"
    prep_label_dataframe(demo_files[:3], ["x"]).to_csv(path, index=False)
    # each call stops at the token check, after the label file is taken and checked
    with pytest.raises(ValueError, match="token=False is allowed only on the loopback"):
        serve(outfile=path, ip="0.0.0.0", token=False)
    with pytest.warns(DeprecationWarning, match=r"serve\(project=\.\.\.\) is now serve\(outfile="), \
            pytest.raises(ValueError, match="token=False is allowed only on the loopback"):
        serve(project=path, ip="0.0.0.0", token=False)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="outfile must be an existing"):
        serve(project=tmp_path / "none.csv")
    with pytest.raises(TypeError, match="give outfile= only"):
        serve(path, project=path)
    with pytest.raises(TypeError, match="missing its argument 'outfile'"):
        serve()
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['outfil'\]"):
        serve(outfil=path)


def test_export_adds_predictions_of_saved_models(tmp_path, demo_files):
    pytest.importorskip("tensorflow")
    from patchwork_widget.labels import prep_label_dataframe
    from patchwork_widget.models import build_models, save_models

    path = tmp_path / "labels.csv"
    prep_label_dataframe(demo_files[:6], ["x", "y"]).to_csv(path, index=False)
    features = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    np.save(tmp_path / "f.npy", features)
    models = build_models(["x", "y"], feature_shape=(5,))
    save_models(models, tmp_path / "models")
    assert cli.main(["export", str(path), "--models", str(tmp_path / "models"),
                     "--features", str(tmp_path / "f.npy")]) == 0
    preds = pd.read_csv(tmp_path / "labels_export" / "predictions.csv")
    assert list(preds.columns) == ["filepath", "x", "y"] and len(preds) == 6
    expected = models.head()(features).numpy()
    np.testing.assert_allclose(preds[["x", "y"]].to_numpy(), expected, atol=1e-5)


def test_the_served_notebook_opens_the_project_with_its_features_or_extractor(tmp_path):
    from patchwork_widget.widget.serve import app_notebook

    nb = app_notebook(tmp_path / "l.csv", tmp_path / "f.npy", tmp_path / "m.keras", (64, 32))
    source = nb["cells"][0]["source"]
    compile(source, "app", "exec")
    assert f"np.load({str(tmp_path / 'f.npy')!r}, mmap_mode='r')" in source
    assert f"keras.saving.load_model({str(tmp_path / 'm.keras')!r}, compile=False)" in source
    assert source.endswith("imshape=(64, 32))\napp.labeler.autofocus = True\napp")
    assert nb["metadata"]["title"] == "l.csv"  # the page's title: the project's file name
    team = {"journal": "postgresql://h/db", "project": "p1", "annotator": None}
    source = app_notebook(tmp_path / "l.csv", team=team)["cells"][0]["source"]
    assert "journal='postgresql://h/db', project='p1')" in source and "annotator" not in source


# ---------------------------------------------------------------------------------------------
# Bad arguments end with exit code 2 and a message naming the value, never a traceback (24.8).

def _exit_code(argv, capsys):
    """``cli.main(argv)``'s exit code (argparse's errors raise SystemExit) and stderr."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture
def project(tmp_path, demo_files):
    from patchwork_widget.labels import prep_label_dataframe

    path = tmp_path / "l.csv"
    prep_label_dataframe(demo_files[:3], ["x"]).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("extra, message", [
    (["--port", "-1"], "port must be an int in [1, 65535]; got -1"),
    (["--port", "70000"], "port must be an int in [1, 65535]; got 70000"),
    (["--port", "http"], "port must be an int; got 'http'"),
    (["--imshape", "0", "0"], "image side must be an int in [1, 16384]; got 0"),
    (["--journal", "mysql://db/x"], "--journal must be a postgresql:// (or postgres://) URL"),
])
def test_serve_refuses_bad_values_naming_them(project, capsys, extra, message):
    code, err = _exit_code(["serve", project, *extra], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_export_features_without_models_is_refused(project, tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.zeros((3, 2)))
    code, err = _exit_code(["export", project, "--features", str(tmp_path / "f.npy")], capsys)
    assert code == 2 and "--features: only used with --models" in err


def test_export_to_an_unwritable_out_names_it(project, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = _exit_code(["export", project, "--out", str(blocker)], capsys)
    assert code == 2 and f"--out must be a folder; {str(blocker)!r} is a file" in err
    code, err = _exit_code(["export", project, "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "--out" in err and "cannot be made" in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = _exit_code(["export", project, "--out", str(locked)], capsys)
        assert code == 2 and "is not writable" in err


def test_demo_workdir_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, err = _exit_code(["demo", "--workdir", str(target)], capsys)
    assert code == 2 and "--workdir must be a folder" in err


def test_pretrain_with_bad_yaml_says_where(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("trainer: simclr\nlogdir: [unclosed\n")
    code, err = _exit_code(["pretrain", str(config)], capsys)
    assert code == 2 and "is not valid YAML at line" in err and "Traceback" not in err


def test_extract_with_a_backbone_by_name(tmp_path, demo_files):
    pytest.importorskip("tensorflow")
    files = demo_files[:6]
    (tmp_path / "six.txt").write_text("\n".join(files) + "\n")
    out = run("extract", "--model", "mobilenet_v3_small", "--weights", "none", "--imshape",
              "32", "32", "--files", "six.txt", "--out", "feats.npy", "--no-progress",
              cwd=tmp_path)
    assert "shape (6, 576)" in out
    assert np.load(tmp_path / "feats.npy").shape == (6, 576)
    done = subprocess.run([sys.executable, "-m", "patchwork_widget.cli", "extract", "--model",
                           "mobilenet_v9", "--files", "six.txt", "--out", "x.npy"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "mobilenet_v3_small" in done.stderr and "mobilenet_v9" in done.stderr
