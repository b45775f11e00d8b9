"""Registries for the web UI's tests: real fitted pipelines, metric histories, alias moves, and hostile strings.

``build(path)`` makes the registry the server-side and browser tests click
through; ``XSS`` is the corpus of payloads that ``build_hostile`` puts
everywhere a user's text can go (tag keys and values, param keys and
values, metric keys, descriptions, input-signature feature names), since
model names and aliases are validated and cannot hold them.
"""

from __future__ import annotations

from pathlib import Path

from registry import Registry

#: Payloads that would run script, or inject an element, if a page or an SVG did not escape them.
XSS = (
    "<script>alert('xss-1')</script>",
    '"><img src=x onerror=alert("xss-2") id=xss-injected>',
    "'><svg onload=alert('xss-3')>",
    "</textarea></title></code><script>alert('xss-4')</script>",
    "<iframe srcdoc=\"<script>alert('xss-5')</script>\" id=xss-frame></iframe>",
    "javascript:alert('xss-6')",
    '<a href="javascript:alert(7)" id=xss-link>click</a>',
    "]]><script>alert('xss-8')</script><![CDATA[",
    "{{ 7 * 7 }}{% raw %}<b id=xss-bold>",
    "<style>body{display:none}</style><b id=xss-style>",
)

#: Markers that appear in a page only if a payload got through unescaped.
RAW_MARKERS = (
    "<script>alert",
    "<img src=x",
    "<svg onload",
    "<iframe",
    '<a href="javascript',
    "<b id=xss",
    "<style>body",
)


def _pipeline(c: float):  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=c, max_iter=300))]).fit(X, y)
    return model, X, y


def build(path: Path) -> Registry:
    """A registry with ``iris-lr`` (4 pipeline versions, lineage, step histories, alias moves) and ``tiny``."""
    reg = Registry(path)
    parent = None
    for index, c in enumerate((0.01, 0.1, 1.0, 10.0), start=1):
        model, X, y = _pipeline(c)
        accuracy = float(model.score(X, y))
        mv = reg.register(
            "iris-lr",
            model,
            metrics={"accuracy": accuracy, "f1_macro": accuracy - 0.01 * index, "loss": 1.0 / (index + 1)},
            tags={"team": "cv", "stage": "tuned" if index > 2 else "baseline"},
            description=f"Logistic regression, C={c}, on standardised iris features",
            data=(X, y),
            parent=parent,
        )
        for step, value in enumerate((0.6, 0.8, accuracy)):
            reg.log_metrics("iris-lr", mv.version, {"val_accuracy": value}, step=step)
        parent = mv.ref
    reg.set_alias("iris-lr", "staging", 2)
    reg.set_alias("iris-lr", "production", 2)
    reg.set_alias("iris-lr", "production", 3)
    reg.set_alias("iris-lr", "staging", 4)
    reg.register("tiny", {"weights": [1, 2, 3]}, params={"lr": 0.1}, metrics={"accuracy": 0.5}, tags={"team": "nlp"})
    return reg


def build_hostile(path: Path) -> Registry:
    """A registry whose every user-written string is an XSS payload (names stay valid: they are checked)."""
    reg = Registry(path)
    for index, payload in enumerate(XSS):
        reg.register(
            "hostile",
            {"i": index},
            params={payload: payload, "nested": {payload: [payload]}},
            metrics={payload: float(index), "accuracy": index / 10},
            tags={payload: payload, "plain": payload},
            description=payload,
            signature={"n_features": 1, "feature_names": [payload]},
        )
    reg.set_alias("hostile", "production", 2)
    reg.set_alias("hostile", "production", 3)
    reg.log_metrics("hostile", 3, {XSS[0]: 1.5}, step=1)
    return reg
