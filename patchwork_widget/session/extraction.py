"""A feature extractor given by name or file, turned into the project's features.

``Session.open(..., feature_extractor="mobilenet_v3_small")`` (or a
:class:`~patchwork_widget.options.backbones.Backbone`, a ``.keras`` path, an
:class:`~patchwork_widget.images.feature_cache.Extractor`) resolves the extractor and takes
the features of every row from the project's feature cache beside the outfile, extracting
only the images the cache lacks (:mod:`patchwork_widget.images.feature_cache`): in a worker
process while the user labels (:mod:`.extraction_worker`), except for an ``Extractor`` object,
whose callable lives in this process and is run here before the session opens. A Keras model
object passed as ``feature_extractor`` is not resolved: the session trains on images through
it, as before.
"""

from __future__ import annotations

import os
from typing import Any, Sequence, Tuple

import numpy as np

from patchwork_widget.images.extractor import Extractor
from patchwork_widget.images.feature_cache import FeatureCache, cache_folder
from patchwork_widget.options.backbones import Backbone, parse_backbone


def is_resolvable(value: Any) -> bool:
    """True when ``value`` is an extractor the session resolves and caches: a name, a path,
    a :class:`Backbone` or an :class:`Extractor`."""
    return isinstance(value, (str, os.PathLike, Backbone, Extractor))


def in_background(value: Any) -> bool:
    """True when ``value``'s features are extracted by a worker process while the session
    opens (:mod:`.extraction_worker`): a name, a :class:`Backbone` or a ``.keras`` path. An
    :class:`Extractor` holds a callable of this process, so it is extracted here."""
    return is_resolvable(value) and not isinstance(value, Extractor)


def check_extractor(value: Any, features: Any) -> None:
    """Refuse an unknown name or missing file, and a named extractor given with features."""
    if not is_resolvable(value):
        return
    parse_backbone(value)
    if features is not None:
        raise ValueError("pass features= or a named feature_extractor=, not both: the "
                         "features of a named extractor are extracted and cached with the "
                         "project")


def project_features(files: Sequence[str], outfile: str | os.PathLike,
                     value: Any) -> Tuple[np.ndarray, Any]:
    """The features of ``files`` under the extractor ``value`` (from the cache beside
    ``outfile``, extracting what it lacks) and the extractor's model."""
    from patchwork_widget.images.backbones import resolve_extractor

    extractor = resolve_extractor(value)
    features = FeatureCache(cache_folder(outfile)).features(list(files), extractor)
    return features, extractor.model
