"""What an environment asks for: Azure's environment YAML, read into :class:`EnvironmentContent`.

An environment is given as Azure gives it: an ``image`` (recorded, never run: there is no
container runtime here), a ``conda_file`` (its ``dependencies:``: ``python=3.x``, conda
packages, and a ``pip:`` list), or ``requirements``, the lines of a plain ``requirements.txt``
(the CLI and SDK read the file a YAML names there). Its content is what a build depends on:
the Python version and the package lines, in order. Two environments with the same content
share one build; the :func:`content hash <EnvironmentContent.content_hash>` names it.

Conda packages are installed from PyPI, but only those :data:`CONDA_TO_PYPI` names: a conda
package is not a PyPI package, and guessing that one is could install something else. What
cannot be translated fails the build with a message that names it (see :func:`translate`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluiceway.errors import ValidationError

CONDA_TO_PYPI: Mapping[str, str] = {
    "numpy": "numpy",
    "pandas": "pandas",
    "scikit-learn": "scikit-learn",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "pyarrow": "pyarrow",
    "requests": "requests",
    "pyyaml": "pyyaml",
    "joblib": "joblib",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "pillow": "pillow",
    "tqdm": "tqdm",
    "click": "click",
    "six": "six",
    "setuptools": "setuptools",
    "wheel": "wheel",
    "cloudpickle": "cloudpickle",
    "threadpoolctl": "threadpoolctl",
    "python-dateutil": "python-dateutil",
    "pytz": "pytz",
    "statsmodels": "statsmodels",
    "sqlalchemy": "sqlalchemy",
    "networkx": "networkx",
    "sympy": "sympy",
    "h5py": "h5py",
    "numba": "numba",
    "pytorch": "torch",
    "torchvision": "torchvision",
    "tensorflow": "tensorflow",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "mlflow": "mlflow",
    "mlflow-skinny": "mlflow-skinny",
    "py-xgboost": "xgboost",
    "catboost": "catboost",
    "seaborn": "seaborn",
    "nltk": "nltk",
    "spacy": "spacy",
    "opencv": "opencv-python-headless",
    "pip": "",  # uv installs; pip itself is not needed
}
"""Conda package names installed from PyPI, and the PyPI name each one is installed as.

Only names whose PyPI package is the same software are listed; ``""`` means the package is
not needed here (``pip``).
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
_CONDA_SPEC = re.compile(
    r"^(?:[A-Za-z0-9][\w.-]*::)?[A-Za-z0-9][A-Za-z0-9._-]*"
    r"(?:\s*[<>=!~]*[A-Za-z0-9.*+_][A-Za-z0-9.*+_!<>=,|~-]*)?$"
)
_PYTHON_VERSION = re.compile(r"^(?P<version>3(\.\d+){1,2})(\.\*)?$")
_PIP_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~].*)?$"
)
UPLOADED_FILE_PREFIX = "azureml://"


@dataclass(frozen=True)
class EnvironmentContent:
    """What a build depends on, and what is recorded besides.

    Attributes:
        python: the Python version asked for (``3.11``, ``3.11.7``); None: the server's.
        conda: conda package specs, as written (``numpy=1.26``), without python and pip.
        pip: pip requirement lines: requirement specifiers and uploaded wheels
            (``azureml://`` URIs of registered files).
        image: the base image named; recorded, not run.
    """

    python: str | None = None
    conda: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    image: str | None = None

    def content_hash(self) -> str:
        """The hash of what the build depends on (the image is not: it is not run)."""
        body = json.dumps(
            {"python": self.python, "conda": list(self.conda), "pip": list(self.pip)},
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "conda": list(self.conda),
            "pip": list(self.pip),
            "image": self.image,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvironmentContent:
        return cls(
            python=data.get("python"),
            conda=tuple(data.get("conda") or ()),
            pip=tuple(data.get("pip") or ()),
            image=data.get("image"),
        )

    def uploaded_files(self) -> list[str]:
        """The pip lines that are uploaded files (wheels), by URI."""
        return [line for line in self.pip if line.startswith(UPLOADED_FILE_PREFIX)]


def content_of(definition: Mapping[str, Any], *, where: str = "environment") -> EnvironmentContent:
    """The content of an environment definition (Azure's environment YAML, with its conda file
    read in as a mapping, or its requirements file as lines).

    Raises:
        ValidationError: the definition's shape is wrong; the message names the key.
    """
    build = definition.get("build")
    if build:
        raise ValidationError(
            f"{where}.build (a Docker build context) cannot be built here: there is no "
            "container runtime. Give a conda_file or requirements instead.",
            target=f"{where}.build",
        )
    image = definition.get("image")
    if image is not None and not isinstance(image, str):
        raise ValidationError(f"{where}.image must be an image name.", target=f"{where}.image")
    conda_file = definition.get("conda_file")
    requirements = definition.get("requirements")
    if conda_file is not None and requirements is not None:
        raise ValidationError(
            f"{where} gives both conda_file and requirements; give one of them.",
            target=f"{where}.requirements",
        )
    python: str | None = None
    conda: list[str] = []
    pip: list[str] = []
    if conda_file is not None:
        if not isinstance(conda_file, Mapping):
            raise ValidationError(
                f"{where}.conda_file must be the conda file's content (the CLI and SDK read a "
                f"local file in); got {type(conda_file).__name__}.",
                target=f"{where}.conda_file",
            )
        python, conda, pip = _read_conda(conda_file, f"{where}.conda_file")
    elif requirements is not None:
        pip = _lines(requirements, f"{where}.requirements")
    for line in pip:
        check_pip_line(line, f"{where}.requirements" if requirements is not None else where)
    return EnvironmentContent(
        python=python, conda=tuple(conda), pip=tuple(pip), image=image or None
    )


def _read_conda(
    conda_file: Mapping[str, Any], where: str
) -> tuple[str | None, list[str], list[str]]:
    dependencies = conda_file.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ValidationError(
            f"{where}.dependencies must be a list; got {type(dependencies).__name__}.",
            target=f"{where}.dependencies",
        )
    python: str | None = None
    conda: list[str] = []
    pip: list[str] = []
    for entry in dependencies:
        if isinstance(entry, Mapping):
            unknown = [str(k) for k in entry if k != "pip"]
            if unknown:
                raise ValidationError(
                    f"{where}.dependencies has a {unknown[0]!r} list; only 'pip' is accepted.",
                    target=f"{where}.dependencies",
                )
            pip.extend(_lines(entry.get("pip") or [], f"{where}.dependencies.pip"))
            continue
        if not isinstance(entry, str | int | float):
            raise ValidationError(
                f"{where}.dependencies holds {entry!r}; give package specs and a pip list.",
                target=f"{where}.dependencies",
            )
        spec = str(entry).strip()
        name = _conda_name(spec)
        if not name or not _CONDA_SPEC.match(spec):
            raise ValidationError(
                f"{where}.dependencies: {spec!r} is not a conda package spec (name, name=1.2, "
                "channel::name>=1).",
                target=f"{where}.dependencies",
            )
        if name == "python":
            python = _python_version(spec[len("python") :], where)
        else:
            conda.append(spec)
    return python, conda, pip


def _lines(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list):
        raise ValidationError(f"{where} must be a list of lines.", target=where)
    lines = []
    for item in value:
        line = str(item).split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _conda_name(spec: str) -> str:
    """The package name of a conda spec, without its channel (``conda-forge::numpy``)."""
    spec = spec.split("::", 1)[-1]
    found = _NAME.match(spec)
    return found.group(0).lower() if found else ""


def _python_version(rest: str, where: str) -> str:
    text = rest.strip().lstrip("=").strip()
    found = _PYTHON_VERSION.match(text)
    if not found:
        raise ValidationError(
            f"{where}: python{rest} is not a version this server can match; give "
            "python=3.<minor> or python=3.<minor>.<patch>.",
            target=f"{where}.dependencies",
        )
    return found.group("version")


def check_pip_line(line: str, where: str) -> None:
    """Refuse a pip line the server cannot honour safely, saying what is accepted.

    Accepted: requirement specifiers (``name``, ``name[extra]>=1,<2``) and uploaded files
    (``azureml://`` URIs; the CLI and SDK upload local wheels and read ``-r`` files in).

    Raises:
        ValidationError: anything else (options, local paths, URLs, editable installs).
    """
    if line.startswith(UPLOADED_FILE_PREFIX):
        if not line.endswith(".whl"):
            raise ValidationError(
                f"{where}: {line!r} is an uploaded file, but not a wheel (.whl); only wheels "
                "are installed from files.",
                target=where,
            )
        return
    if line.startswith(("-r", "--requirement")):
        raise ValidationError(
            f"{where}: {line!r} names a requirements file; the CLI and SDK read it in, so send "
            "its lines instead.",
            target=where,
        )
    if line.startswith("-") or "://" in line or "@" in line or line.startswith((".", "/", "~")):
        raise ValidationError(
            f"{where}: {line!r} is not accepted. Accepted: requirement specifiers "
            "(name, name==1.2, name[extra]>=1) and local wheels, which the CLI and SDK upload; "
            "pip options, URLs and local paths on the server are not.",
            target=where,
        )
    if not _PIP_REQUIREMENT.match(line.split(";", 1)[0].strip()):
        raise ValidationError(
            f"{where}: {line!r} is not a requirement specifier (name, name==1.2, name[extra]>=1).",
            target=where,
        )


class TranslationError(Exception):
    """Conda packages that have no PyPI package in :data:`CONDA_TO_PYPI`."""

    def __init__(self, unknown: Sequence[str]) -> None:
        known = ", ".join(sorted(k for k, v in CONDA_TO_PYPI.items() if v))
        super().__init__(
            f"conda package(s) {', '.join(repr(u) for u in unknown)} cannot be installed here: "
            "conda packages are installed from PyPI only where the name maps to a PyPI "
            f"package, and these do not. Mapped: {known}. Move them to the pip list under "
            "their PyPI names."
        )
        self.unknown = list(unknown)


def _pypi_version(spec: str, version: str, notes: list[str]) -> str:
    """A conda version constraint as a PyPI one (empty for none)."""
    if not version:
        return ""
    if version.startswith("=") and not version.startswith("=="):
        version = version[1:]
    elif version[0] in "<>=!~":
        return version
    # conda's 1.26[=build]: that version; 1.26 or 1.26.* matches any patch level.
    fields = version.split("=")
    if len(fields) > 1:
        notes.append(f"{spec}: build string {fields[1]!r} ignored")
    wanted = fields[0]
    if wanted.endswith("*") or wanted.count(".") < 2:
        return f"=={wanted.rstrip('*').rstrip('.')}.*"
    return f"=={wanted}"


def translate(conda: Sequence[str]) -> tuple[list[str], list[str]]:
    """PyPI requirement lines for conda package specs, and notes on what was changed.

    ``numpy=1.26`` becomes ``numpy==1.26.*``; ``numpy>=1.26`` stays; a build string
    (``numpy=1.26=py311_0``) and a channel (``conda-forge::``) are dropped, and said so.

    Raises:
        TranslationError: names every package that has no PyPI name.
    """
    lines: list[str] = []
    notes: list[str] = []
    unknown: list[str] = []
    for spec in conda:
        bare = spec
        if "::" in bare:
            channel, bare = bare.split("::", 1)
            notes.append(f"{spec}: channel {channel!r} ignored (installed from PyPI)")
        name = _conda_name(bare)
        pypi = CONDA_TO_PYPI.get(name)
        if pypi is None:
            unknown.append(name or spec)
            continue
        if not pypi:
            notes.append(f"{spec}: not needed (uv installs the packages)")
            continue
        requirement = pypi + _pypi_version(spec, bare[len(name) :].strip(), notes)
        if pypi != name:
            notes.append(f"conda package {name!r} is installed as PyPI package {pypi!r}")
        lines.append(requirement)
    if unknown:
        raise TranslationError(unknown)
    return lines, notes


__all__ = [
    "CONDA_TO_PYPI",
    "EnvironmentContent",
    "TranslationError",
    "check_pip_line",
    "content_of",
    "translate",
]
