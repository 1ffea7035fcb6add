"""The Jupyter front end: the labeling app and its anywidget labeler."""

from patchwork_widget.widget.app import GUI, PatchworkWidget
from patchwork_widget.widget.labeler import Labeler

__all__ = ["GUI", "Labeler", "PatchworkWidget"]
