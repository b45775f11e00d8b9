"""Validation of model and alias names, and parsing of references.

The rules are strict because names become parts of paths, URLs, shell
arguments and log lines on other machines:

* a model name is 1–128 ASCII characters: letters, digits, ``.``, ``_``,
  ``-``, starting with a letter or digit — ``iris-knn``, ``churn_v2.1``,
  ``3d-unet`` are valid; ``../x``, ``a/b``, ``""``, ``"iris\\n"``,
  ``"iris knn"``, ``"ιris"`` (a Greek iota) are not;
* an alias is 1–64 characters: lowercase letters, digits, ``_``, ``-``,
  starting with a letter — ``production``, ``canary-2`` are valid;
  ``Prod``, ``2nd``, ``a.b`` are not, and ``latest`` is reserved;
* a reference is ``NAME``, ``NAME:VERSION`` (a positive integer),
  ``NAME:latest`` or ``NAME@ALIAS``.

``re.fullmatch`` with explicit ASCII classes is used throughout:
``re.match(r"^…$")`` would accept a trailing newline, and ``\\w`` would
accept Unicode look-alikes.
"""

from __future__ import annotations

import re

from registry.domain import Ref
from registry.errors import InvalidName, InvalidReference
from registry.limits import MAX_ALIAS_LENGTH, MAX_NAME_LENGTH, MAX_VERSION

MODEL_NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}")
ALIAS_PATTERN = re.compile(rf"[a-z][a-z0-9_-]{{0,{MAX_ALIAS_LENGTH - 1}}}")
RESERVED_ALIASES = frozenset({"latest"})
_VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,9}")
_MAX_SHOWN = 80


def _shown(value: object) -> str:
    """A repr of bad input short enough for an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def validate_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidName`.

    >>> validate_model_name("iris-knn")
    'iris-knn'
    """
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise InvalidName(
            f"invalid model name {_shown(name)}: use 1-{MAX_NAME_LENGTH} ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example 'iris-knn')"
        )
    return name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid, non-reserved alias, else raise :class:`InvalidName`.

    >>> validate_alias("production")
    'production'
    """
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise InvalidName(
            f"invalid alias {_shown(alias)}: use 1-{MAX_ALIAS_LENGTH} lowercase ASCII letters, digits, '_' or '-', "
            "starting with a letter (for example 'production')"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidName(f"alias {alias!r} is reserved: it always means the newest version; choose another name")
    return alias


def validate_version(version: object) -> int:
    """Return ``version`` if it is an int (not a bool) from 1 to :data:`MAX_VERSION`, else :class:`InvalidReference`.

    The upper bound is the catalog column's: a larger number would reach the
    database driver, which fails in its own way (``OverflowError`` from
    SQLite, "integer out of range" from PostgreSQL) instead of saying what
    was wrong.
    """
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise InvalidReference(
            f"invalid version {_shown(version)}: versions are integers from 1 to {MAX_VERSION} (1, 2, 3, ...)"
        )
    return version


def parse_ref(text: object) -> Ref:
    """Parse ``NAME``, ``NAME:VERSION``, ``NAME:latest`` or ``NAME@ALIAS``.

    >>> parse_ref("iris-knn:3")
    Ref(name='iris-knn', version=3, alias=None)
    >>> parse_ref("iris-knn@production")
    Ref(name='iris-knn', version=None, alias='production')
    """
    if not isinstance(text, str):
        raise InvalidReference(f"invalid reference {_shown(text)}: expected a string like 'iris-knn:3'")
    name, sep_version, version_text = text.partition(":")
    name, sep_alias, alias_text = name.partition("@")
    if sep_version and sep_alias:
        raise InvalidReference(
            f"invalid reference {_shown(text)}: give a version (NAME:3) or an alias (NAME@production), not both"
        )
    try:
        validate_model_name(name)
    except InvalidName as exc:
        raise InvalidReference(f"invalid reference {_shown(text)}: {exc}") from None
    if sep_version:
        if version_text == "latest":
            return Ref(name)
        if not _VERSION_PATTERN.fullmatch(version_text):
            raise InvalidReference(
                f"invalid reference {_shown(text)}: after ':' comes a positive version number "
                "or 'latest' (for example 'iris-knn:3')"
            )
        return Ref(name, version=validate_version(int(version_text)))
    if sep_alias:
        if alias_text == "latest":
            return Ref(name)
        try:
            validate_alias(alias_text)
        except InvalidName as exc:
            raise InvalidReference(f"invalid reference {_shown(text)}: {exc}") from None
        return Ref(name, alias=alias_text)
    return Ref(name)


def resolve_ref(ref_or_name: object, version: object = None, alias: object = None) -> Ref:
    """Combine a reference string with the optional ``version``/``alias`` keywords.

    A reference may carry its own version or alias; giving another through the
    keywords is ambiguous and refused rather than guessed.
    """
    ref = parse_ref(ref_or_name)
    if version is None and alias is None:
        return ref
    if version is not None and alias is not None:
        raise InvalidReference("give either version= or alias=, not both")
    if ref.version is not None or ref.alias is not None:
        raise InvalidReference(
            f"reference {ref_or_name!r} already names a version or alias; drop the version=/alias= keyword"
        )
    if version is not None:
        return Ref(ref.name) if version == "latest" else Ref(ref.name, version=validate_version(version))
    return Ref(ref.name) if alias == "latest" else Ref(ref.name, alias=validate_alias(alias))
