"""How numbers read in the terminal and the HTML (one place, so both agree)."""

from __future__ import annotations


def value(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit == "rate":
        return f"{x * 100:.1f}%"
    if unit == "days":
        return f"{x:,.0f} d"
    if unit == "count" or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def delta(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "="
    if unit == "rate":
        points = x * 100
        return f"{points:+.1g} pp" if abs(points) < 0.05 else f"{points:+.1f} pp"
    if unit == "days":
        return f"{x:+,.0f} d"
    if unit == "count" or float(x).is_integer():
        return f"{x:+,.0f}"
    return f"{x:+,.1f}"


def rate(x: float) -> str:
    return value(x, "rate")


def count(x: int) -> str:
    return f"{x:,}"
