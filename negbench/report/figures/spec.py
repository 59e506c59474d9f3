"""A figures block's specification: ``DIR metric=… format=inline|table|value|wall|delta|ratio|planted|verdict|claims|
spread strategy=… dataset=… model=… order=… unit=… baseline=… top=…``."""

from __future__ import annotations

from dataclasses import dataclass

from negbench.errors import NegbenchError

__all__ = ["FORMATS", "OPTIONS", "UNITS", "Spec", "parse_spec"]


FORMATS = ("inline", "table", "value", "wall", "delta", "ratio", "planted", "verdict", "claims", "spread")


OPTIONS = ("metric", "format", "digits", "strategy", "dataset", "model", "order", "unit", "baseline", "top")


UNITS = ("plain", "percent")


@dataclass(frozen=True)
class Spec:
    directory: str
    metric: str = "ndcg@10"
    format: str = "inline"
    digits: int = 4
    strategies: tuple[str, ...] = ()
    dataset: str | None = None
    model: str | None = None
    order: str = "store"
    unit: str = "plain"
    baseline: str | None = None
    top: int | None = None


def _check(key: str, value: str) -> None:
    if key == "format" and value not in FORMATS:
        raise NegbenchError(f"unknown format {value!r}: use one of {', '.join(FORMATS)}")
    if key == "order" and value not in ("store", "metric"):
        raise NegbenchError(f"unknown order {value!r}: use store or metric")
    if key == "unit" and value not in UNITS:
        raise NegbenchError(f"unknown unit {value!r}: use one of {', '.join(UNITS)}")
    if key == "digits" and (not value.isdigit() or int(value) > 10):
        raise NegbenchError(f"digits must be an integer 0–10, not {value!r}")
    if key == "top" and (not value.isdigit() or int(value) < 1):
        raise NegbenchError(f"top must be a positive integer, not {value!r}")


def parse_spec(text: str) -> Spec:
    words = text.split()
    if not words:
        raise NegbenchError("figures block names no results directory")
    kwargs: dict[str, object] = {"directory": words[0]}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in OPTIONS or not value:
            raise NegbenchError(
                f"bad option {word!r} in figures block: use key=value with key one of {', '.join(OPTIONS)}"
            )
        _check(key, value)
        if key in ("digits", "top"):
            kwargs[key] = int(value)
        elif key == "strategy":
            kwargs["strategies"] = tuple(s for s in value.split(",") if s)
        else:
            kwargs[key] = value
    spec = Spec(**kwargs)  # type: ignore[arg-type]
    if spec.format == "ratio" and len(spec.strategies) != 2:
        raise NegbenchError("format=ratio needs strategy=A,B (the mean of A divided by that of B)")
    if spec.format == "spread" and {"order", "unit"} & set(kwargs):  # it is always the seed sd, largest first
        raise NegbenchError("format=spread takes no order= or unit=: it lists the seed sd, largest first")
    if spec.top is not None and spec.format != "spread":
        raise NegbenchError("top= belongs to format=spread (the N strategies with the largest seed spread)")
    if spec.format in ("verdict", "claims") and spec.strategies:  # the page's tests: every strategy, every claim
        raise NegbenchError(f"format={spec.format} takes no strategy=: it is the store's, over every strategy")
    return spec
