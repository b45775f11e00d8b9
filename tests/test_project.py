"""The shape of the project: public API, import layers, lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import registry

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = {
    "Registry",
    "ModelVersion",
    "MetricPoint",
    "RegistryError",
    "ModelNotFound",
    "VersionNotFound",
    "AliasNotFound",
    "InvalidName",
    "CorruptedArtifact",
    "SerializationError",
    "SchemaVersionError",
    "EnvironmentMismatchWarning",
    # the error families and the errors callers catch most
    "NotFound",
    "InvalidInput",
    "TrustError",
    "InvalidMetric",
    "InvalidParam",
    "InvalidTag",
    "InvalidStep",
    "InvalidFormat",
    "InvalidArgument",
    "InvalidCatalogURL",
    "SignatureNotFound",
    "RegistryNotFound",
    "ReadOnlyRegistry",
    "NotPortable",
    "ModelPortabilityWarning",
    "MissingDependency",
    "PromotionRefused",
    # promotion gates
    "Verdict",
    "no_regression",
    "canary_passes",
    "environment_matches",
    "signed",
    "tagged",
    # return types of public calls
    "ModelSummary",
    "Imported",
    "VerifyReport",
    "GcReport",
    "RepairReport",
    # prediction canaries
    "CheckReport",
    "CanaryMismatch",
}


def test_public_api_is_listed_sorted_and_complete() -> None:
    assert registry.__all__ == sorted(registry.__all__)
    assert CONTRACT <= set(registry.__all__)
    for name in registry.__all__:
        assert getattr(registry, name).__module__.startswith("registry.")
    public = {
        name
        for name, value in vars(registry).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(registry.__all__)


def test_errors_have_one_base_and_the_matching_builtin() -> None:
    for name in registry.__all__:
        obj = getattr(registry, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, registry.RegistryError), name
    assert issubclass(registry.InvalidName, ValueError)
    for lookup in (registry.ModelNotFound, registry.VersionNotFound, registry.AliasNotFound):
        assert issubclass(lookup, LookupError)
    families = {registry.NotFound: LookupError, registry.InvalidInput: ValueError, registry.TrustError: None}
    for family, builtin in families.items():
        assert issubclass(family, registry.RegistryError)
        assert builtin is None or issubclass(family, builtin)
    for name in ("InvalidMetric", "InvalidParam", "InvalidTag", "InvalidStep", "InvalidFormat", "InvalidArgument"):
        assert issubclass(getattr(registry, name), registry.InvalidInput) and issubclass(
            getattr(registry, name), ValueError
        )
    assert issubclass(registry.SerializationError, TypeError) and issubclass(registry.StoreError, OSError)
    for trust in (
        registry.CorruptedArtifact,
        registry.UnsafeArtifact,
        registry.UntrustedTypes,
        registry.UntrustedArtifact,
    ):
        assert issubclass(trust, registry.TrustError)
    from registry.validation import validate_metrics

    try:
        validate_metrics({"accuracy": "high"})
    except registry.RegistryError as exc:  # a bad metric no longer slips past `except RegistryError`
        assert isinstance(exc, registry.InvalidMetric)
    else:
        raise AssertionError("a bad metric was accepted")


def test_public_functions_are_typed() -> None:
    import inspect

    for name, member in inspect.getmembers(registry.Registry, inspect.isfunction):
        if name.startswith("_") and name not in ("__init__", "__enter__", "__exit__"):
            continue
        signature = inspect.signature(member)
        assert signature.return_annotation is not inspect.Signature.empty, name
        for parameter in list(signature.parameters.values())[1:]:
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)
        assert member.__doc__ or name.startswith("__"), name


def test_import_layers_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is part of the test extra"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_registry_does_not_import_heavy_modules() -> None:
    heavy = ("sklearn", "numpy", "scipy", "pandas", "joblib", "alembic", "lark", "click", "rich")
    code = f"import sys, registry; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("paths", [["registry", "tests", "migrations", "benchmarks"]])
def test_ruff_is_clean(paths: list[str]) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is part of the test extra"
    result = subprocess.run([ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    formatted = subprocess.run([ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr  # the README says both run


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    """``registry/`` type-checks under the strict settings in pyproject.toml's [tool.mypy]."""
    import importlib.util

    assert importlib.util.find_spec("mypy"), "mypy is part of the test extra"
    result = subprocess.run([sys.executable, "-m", "mypy", "registry"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_comes_from_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert registry.__version__ == version("modelshelf") and registry.__version__[0].isdigit()


@pytest.mark.slow
def test_the_wheel_marks_the_package_typed(built_wheel: Path) -> None:
    """``py.typed`` ships in the wheel, so type checkers of projects that install it read our annotations."""
    import zipfile

    names = zipfile.ZipFile(built_wheel).namelist()
    assert "registry/py.typed" in names and "registry/limits.py" in names
