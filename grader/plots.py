"""Figures for the feedback report and the class index, drawn as SVG
markup to inline in HTML.

Figures are built on a bare ``Figure`` with its own SVG canvas, so nothing
touches pyplot's global state or the process-wide backend. Output is
byte-for-byte reproducible: the same numbers give the same markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from grader.results import LearningCurve

_TRAIN_COLOUR = "#2563eb"
_VALIDATION_COLOUR = "#d97706"
_SCORE_COLOUR = "#1d4ed8"
_GRID_COLOUR = "#e5e7eb"

#: Bars of the score histogram, each covering an equal share of the points.
SCORE_BINS = 10

#: Fixed salt for the ids matplotlib hashes into the SVG, so reruns match.
_SVG_RC = {"svg.hashsalt": "grader-learning-curve", "svg.fonttype": "none"}

#: None drops each entry; with every entry gone the <metadata> block goes too.
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def learning_curve_svg(curve: LearningCurve) -> str | None:
    """Train and validation metric per boosting round as inline ``<svg>``.

    Returns None when the curve has no round with a value to plot. A series
    longer than ``rounds`` is cut to the rounds it can be placed against.
    """
    train = _series(curve.rounds, curve.train)
    validation = _series(curve.rounds, curve.validation)
    if not train[0] and not validation[0]:
        return None

    # Imported here: matplotlib is slow to import and builds a font cache on
    # first use, which a report without a curve should not pay for.
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context(_SVG_RC):
        # Fixed margins: a constrained layout would double the drawing time,
        # and every report draws one of these.
        figure = Figure(figsize=(7.5, 3.4))
        figure.subplots_adjust(left=0.1, right=0.98, top=0.96, bottom=0.15)
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        marker = "o" if max(len(train[0]), len(validation[0])) <= 30 else None
        for (rounds, values), label, colour in (
            (train, "train", _TRAIN_COLOUR),
            (validation, "validation", _VALIDATION_COLOUR),
        ):
            if rounds:
                axes.plot(
                    rounds, values, label=label, color=colour,
                    linewidth=1.8, marker=marker, markersize=3.5,
                )

        axes.set_xlabel("boosting round")
        # The metric name comes from the submission: never parse it as TeX.
        axes.set_ylabel(curve.metric, parse_math=False)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, color=_GRID_COLOUR, linewidth=0.8)
        _plain_frame(axes)
        axes.legend(frameon=False, loc="lower right")
        return _markup(figure)


def score_histogram_svg(scores: Sequence[float], max_score: float) -> str | None:
    """How many submissions scored in each tenth of ``max_score``, as
    inline ``<svg>``; None when there is no score or no points to plot.

    A full score falls in the last bar; scores outside 0..max are clipped
    to the nearest bar rather than dropped, so every submission counts.
    """
    if not scores or max_score <= 0:
        return None

    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    width = max_score / SCORE_BINS
    edges = [width * i for i in range(SCORE_BINS + 1)]
    counts = [0] * SCORE_BINS
    for score in scores:
        # Scaled rather than divided by ``width``: 2.1 // 0.7 floors to 2.
        index = int(min(max(score, 0.0), max_score) * SCORE_BINS / max_score)
        counts[min(index, SCORE_BINS - 1)] += 1

    with matplotlib.rc_context(_SVG_RC):
        figure = Figure(figsize=(7.5, 2.6), layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        axes.bar(
            edges[:-1], counts, width=width, align="edge",
            color=_SCORE_COLOUR, edgecolor="#ffffff", linewidth=1.2,
        )
        axes.set_xlim(0, max_score)
        axes.set_xticks(edges)
        axes.set_xlabel(f"score (out of {max_score:g})")
        axes.set_ylabel("submissions")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, axis="y", color=_GRID_COLOUR, linewidth=0.8)
        _plain_frame(axes)
        return _markup(figure)


def _plain_frame(axes: Any) -> None:
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _markup(figure: Any) -> str:
    """The figure as a bare ``<svg>`` element; call inside ``_SVG_RC``."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    markup = buffer.getvalue()
    # Drop the XML prolog and doctype: HTML wants the bare <svg> element.
    return markup[markup.index("<svg"):].strip()


def _series(rounds: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    count = min(len(rounds), len(values))
    return rounds[:count], values[:count]
