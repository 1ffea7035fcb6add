"""Choices of the fine-tuning model (the Model tab, feature M1), TF-free.

Spec strings: comma-separated tokens, e.g. ``"128,p,d,r,64"``. An integer ``k`` is a
convolution with ``k`` filters; ``p`` a 2x2 max-pool; ``d`` a spatial dropout; ``r`` a residual
block (see :mod:`patchwork_widget.models.finetune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Mapping, Optional

from patchwork_widget.options.checks import Choice, check_fields
from patchwork_widget.options.params import Interval, OneOf, Param, Text, validate

__all__ = ["FineTuneOptions", "HeadKind", "LayerKind", "LayerSpec", "Pooling", "parse_spec"]

_TOKEN_HELP = ("use a positive integer (conv filters), 'p' (2x2 max-pool), 'd' (spatial "
               "dropout) or 'r' (residual block), separated by commas")


class HeadKind(Choice):
    """What the fine-tuning model is."""

    POOL = "pool"  # global pooling only
    CONVNET = "convnet"  # a convnet from a spec string, then the pooling

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"pool": "global pooling", "convnet": "convnet"}


class Pooling(Choice):
    """How feature maps become a vector."""

    MAX = "max"
    AVG = "avg"
    FLATTEN = "flatten"

    @classmethod
    def _labels(cls) -> Dict[str, str]:
        return {"max": "max", "avg": "average", "flatten": "flatten"}

    @classmethod
    def _aliases(cls) -> Dict[str, str]:
        # Keras' spellings: GlobalAveragePooling2D / GlobalMaxPooling2D and their aliases
        return {"average": "avg", "global_average": "avg", "maximum": "max",
                "global_max": "max"}


class LayerKind(Choice):
    """One token of a convnet spec."""

    CONV = "conv"
    POOL = "pool"
    DROPOUT = "dropout"
    RESIDUAL = "residual"


_TOKENS = {"p": LayerKind.POOL, "d": LayerKind.DROPOUT, "r": LayerKind.RESIDUAL}


@dataclass(frozen=True)
class LayerSpec:
    """One parsed spec token; ``filters`` for convolutions only."""

    kind: LayerKind
    filters: Optional[int] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LayerKind.parse(self.kind, "layer kind"))


def parse_spec(spec: str) -> List[LayerSpec]:
    """Parse a convnet spec string such as ``"128,p,d,r,64"``.

    Whitespace around tokens is ignored; an empty spec means no layers.

    Raises
    ------
    ValueError
        Naming the first bad token and its position.
    """
    if not isinstance(spec, str):
        raise ValueError(f"spec must be a string like '128,p,d,r,64'; got {spec!r}")
    if not spec.strip():
        return []
    out: List[LayerSpec] = []
    for i, raw in enumerate(spec.split(",")):
        tok = raw.strip().lower()
        if tok in _TOKENS:
            out.append(LayerSpec(_TOKENS[tok]))
        elif tok.isdigit() and int(tok) > 0:
            out.append(LayerSpec(LayerKind.CONV, int(tok)))
        else:
            raise ValueError(
                f"bad token {raw.strip()!r} at position {i + 1} of spec {spec!r}: {_TOKEN_HELP}"
            )
    return out


@dataclass(frozen=True)
class FineTuneOptions:
    """Options of the fine-tuning model (the Model tab).

    Attributes
    ----------
    kind : HeadKind or {"pool", "convnet"}
        Global pooling only, or a convnet from ``spec`` followed by the pooling.
    pooling : Pooling or {"max", "avg", "flatten"}
        How feature maps become a vector (ignored for vector features); Keras' spellings
        ``"average"``, ``"global_average"``, ``"maximum"`` and ``"global_max"`` are taken too.
    spec : str
        Convnet layers, e.g. ``"128,p,d,r,64"`` (convnet only).
    kernel_size : int
        Convolution kernel size, in [1, 15].
    dropout_rate : float
        Rate of the ``d`` layers, in [0, 0.95].
    """

    kind: HeadKind = HeadKind.POOL
    pooling: Pooling = Pooling.MAX
    spec: str = "128,p,d,r,64"
    kernel_size: int = 3
    dropout_rate: float = 0.5

    CONSTRAINTS: ClassVar[Mapping[str, Param]] = {
        "kind": Param(OneOf(HeadKind)),
        "pooling": Param(OneOf(Pooling)),
        "spec": Param(Text(max_length=1000)),  # parsed only for a convnet, but always a string
        "kernel_size": Param(Interval(int, 1, 15)),
        "dropout_rate": Param(Interval(float, 0.0, 0.95)),
    }

    def __post_init__(self) -> None:
        validate(self)
        if self.kind is HeadKind.CONVNET:
            parse_spec(self.spec)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FineTuneOptions":
        check_fields(cls, d, "fine-tuning")
        return cls(**d)

    def as_dict(self) -> Dict[str, Any]:
        """Plain values (strings for the choices), e.g. for JSON."""
        return {"kind": self.kind.value, "pooling": self.pooling.value, "spec": self.spec,
                "kernel_size": self.kernel_size, "dropout_rate": self.dropout_rate}
