"""The open-a-project parameters have one declaration (ProjectOptions) that every entry point
takes: the widget, Session, Session.open, LabelStore.open, serve and the command line."""

from __future__ import annotations

import inspect
from dataclasses import fields

import numpy as np
import pytest

from patchwork_widget import PatchworkWidget
from patchwork_widget.cli import build_parser
from patchwork_widget.cli_args import project_options
from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.options.project import (
    SERVED_FIELDS,
    SESSION_FIELDS,
    STORE_FIELDS,
    ProjectOptions,
)
from patchwork_widget.session import Session
from patchwork_widget.widget.serve import serve

ALL = ProjectOptions.names()
# (entry point, the fields it takes, its spelling of a field, its own parameters of the same
# name: the label file and the features serve takes as files)
ENTRY_POINTS = [
    (PatchworkWidget, ALL, {}, ()),
    (Session.open, tuple(n for n in ALL if n != "keys"), {}, ()),
    (Session, SESSION_FIELDS, {}, ()),
    (LabelStore.open, STORE_FIELDS, {}, ("outfile",)),
    (serve, SERVED_FIELDS, {"project": "project_name"},
     ("outfile", "features", "feature_extractor")),
]


@pytest.mark.parametrize("entry, names, rename, own", ENTRY_POINTS,
                         ids=["widget", "Session.open", "Session", "LabelStore.open", "serve"])
def test_each_entry_point_shows_the_declared_fields_with_their_defaults_and_types(
        entry, names, rename, own):
    declared = {f.name: f for f in fields(ProjectOptions)}
    params = inspect.signature(entry).parameters
    for name in names:
        param = params[rename.get(name, name)]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert param.default == declared[name].default, name
        assert param.annotation == declared[name].type, name
    assert params["options"].default is None
    assert {n for n in params if n in ALL} - set(own) == set(names) - set(rename)


def test_the_command_line_options_are_the_served_fields_with_their_limits(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["serve", "l.csv", "--seed", "3", "--classes", "a", "b",
                              "--single-label", "--stretch", "2", "98", "--resolution",
                              "majority", "--project-name", "p", "--keys", '{"exclude": "e"}'])
    options = project_options(args, SERVED_FIELDS)
    assert options.given() == {"classes": ("a", "b"), "seed": 3, "single_label": True,
                               "stretch": (2.0, 98.0), "resolution": "majority",
                               "project": "p", "keys": {"exclude": "e"}}
    serve_action = next(a for a in parser._subparsers._group_actions[0].choices["serve"]._actions
                        if a.dest == "claim_overlap")
    assert serve_action.default is None  # left out: the dataclass's default
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "l.csv", "--claim-overlap", "2"])
    assert "claim_overlap must be a finite number in [0, 1]; got 2.0" in capsys.readouterr().err


@pytest.fixture
def table(image_paths):
    return prep_label_dataframe(image_paths, ["cat", "dog"])


def test_options_object_and_keywords_open_the_same_session(tmp_path, table):
    features = np.random.default_rng(0).normal(size=(len(table), 4))
    options = ProjectOptions(outfile=tmp_path / "a.csv", features=features, seed=5,
                             suggest_yes=0.8, claim_lease=30.0, imshape=(32, 48))
    by_object = Session.open(table, options=options)
    by_keywords = Session.open(table, outfile=tmp_path / "b.csv", features=features, seed=5,
                               suggest_yes=0.8, claim_lease=30.0, imshape=(32, 48))
    assert by_object.sample(count=5) == by_keywords.sample(count=5)  # the same seed
    for session in (by_object, by_keywords):
        assert session.suggest_yes == 0.8 and session.claims.lease == 30.0
        assert session.thumbnails.options.size == (32, 48)
        session.close()
    replaced = Session.open(table, options=options, suggest_yes=0.95)  # a keyword wins
    assert replaced.suggest_yes == 0.95 and replaced.options.seed == 5
    replaced.close()


def test_bad_values_and_unknown_keywords_are_refused_by_name(tmp_path, table):
    with pytest.raises(ValueError, match="claim_overlap must be a finite number in \\[0, 1\\]"):
        ProjectOptions(claim_overlap=2)
    with pytest.raises(ValueError, match="stretch must be percentiles"):
        PatchworkWidget(table, outfile=tmp_path / "l.csv", stretch=(50, 10))
    with pytest.raises(TypeError, match="outfil"):
        PatchworkWidget(table, outfil=tmp_path / "l.csv")
    with pytest.raises(TypeError, match="no field"):
        ProjectOptions().replace(outfil="x")
    with pytest.raises(ValueError, match="options must be a ProjectOptions; got"):
        Session.open(table, options={"seed": 1})
    assert not (tmp_path / "l.csv.journal.sqlite").exists()  # refused before any file


def test_the_widget_takes_options_and_its_served_app_keeps_them(tmp_path, table, monkeypatch):
    import patchwork_widget.widget.serve as served

    w = PatchworkWidget(table, options=ProjectOptions(outfile=tmp_path / "l.csv", seed=2,
                                                      imshape=(40, 40), suggest_no=0.05))
    try:
        assert w.session.options.seed == 2 and w.session.suggest_no == 0.05
        assert w.session.thumbnails.options.size == (40, 40)
    finally:
        calls = []
        monkeypatch.setattr(served, "serve", lambda *a, **k: calls.append((a, k)))
        w.serve(port=1234, seed=3)
    (outfile, features), kwargs = calls[0]
    assert str(outfile) == str(tmp_path / "l.csv") and features is None
    assert kwargs["port"] == 1234 and kwargs["seed"] == 3  # a keyword replaces the session's
    assert kwargs["options"].given() == {"imshape": (40, 40), "seed": 2, "suggest_no": 0.05}
