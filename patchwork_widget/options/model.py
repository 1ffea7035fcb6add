"""Choices of the fine-tuning model (the Model tab, feature M1), TF-free.

Spec strings: comma-separated tokens, e.g. ``"128,p,d,r,64"``. An integer ``k`` is a
convolution with ``k`` filters; ``p`` a 2x2 max-pool; ``d`` a spatial dropout; ``r`` a residual
block (see :mod:`patchwork_widget.models.finetune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from patchwork_widget.options.checks import (
    Choice,
    check_fields,
    check_int,
    check_number,
)

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
        How feature maps become a vector (ignored for vector features).
    spec : str
        Convnet layers, e.g. ``"128,p,d,r,64"`` (convnet only).
    kernel_size : int
        Convolution kernel size (>= 1).
    dropout_rate : float
        Rate of the ``d`` layers, in [0, 1).
    """

    kind: HeadKind = HeadKind.POOL
    pooling: Pooling = Pooling.MAX
    spec: str = "128,p,d,r,64"
    kernel_size: int = 3
    dropout_rate: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", HeadKind.parse(self.kind, "kind"))
        object.__setattr__(self, "pooling", Pooling.parse(self.pooling, "pooling"))
        check_int("kernel_size", self.kernel_size, 1)
        check_number("dropout_rate", self.dropout_rate, 0.0, 1.0, open_high=True)
        if not isinstance(self.spec, str):  # parsed only for a convnet, but always a string
            raise ValueError(f"spec must be a string like '128,p,d,r,64'; got {self.spec!r}")
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
