"""What each SageMaker training image ships, so a job here can fail an
import exactly where it would fail on AWS.

The jobs run on this machine's Python, which has every package the grader
needs. An image profile names the importable modules the real image lacks;
a ``requirements.txt`` in the source dir can add them back, as the toolkit
would ``pip install`` them, provided the grader's environment has a
matching version (there is no network to install anything else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class ImageProfile:
    label: str
    #: Importable top-level modules this image does not ship.
    missing_modules: frozenset[str]
    framework: str


_XGBOOST = ImageProfile("the SageMaker XGBoost image", frozenset({"torch"}), "xgboost")
# aws/deep-learning-containers: the PyTorch training images ship numpy, pandas,
# scikit-learn, scipy and matplotlib, but not xgboost.
_PYTORCH = ImageProfile("the SageMaker PyTorch training image", frozenset({"xgboost"}), "pytorch")
_SKLEARN = ImageProfile(
    "the SageMaker scikit-learn image", frozenset({"xgboost", "torch"}), "sklearn"
)
_CUSTOM = ImageProfile("a custom image", frozenset(), "custom")

_PATTERNS = (
    (re.compile(r"/sagemaker-xgboost:"), _XGBOOST),
    (re.compile(r"/pytorch-training(-neuron)?:"), _PYTORCH),
    (re.compile(r"/sagemaker-scikit-learn:"), _SKLEARN),
)

#: Distributions whose import name differs from the project name.
_IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL"}


def profile_for(image_uri: str) -> ImageProfile:
    """The profile of the image a job asked for; unknown images get none."""
    for pattern, profile in _PATTERNS:
        if pattern.search(image_uri or ""):
            return profile
    return _CUSTOM


@dataclass(frozen=True)
class RequirementsOutcome:
    """Which modules requirements.txt makes importable, or why pip would fail."""

    added_modules: frozenset[str]
    error: str | None = None


def resolve_requirements(path: Path) -> RequirementsOutcome:
    """Check each requirement against what this machine has installed.

    A requirement this machine cannot satisfy fails the job with pip's own
    wording, as the toolkit's ``pip install -r requirements.txt`` would.
    """
    if not path.is_file():
        return RequirementsOutcome(frozenset())
    added: set[str] = set()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            return RequirementsOutcome(
                frozenset(),
                f"ERROR: Invalid requirement: '{line}' (from line {number} of requirements.txt)",
            )
        name = canonicalize_name(requirement.name)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            return RequirementsOutcome(
                frozenset(),
                "ERROR: Could not find a version that satisfies the requirement "
                f"{line} (the grader runs offline and can only provide packages "
                "it has installed)",
            )
        if requirement.specifier and not requirement.specifier.contains(
            installed, prereleases=True
        ):
            return RequirementsOutcome(
                frozenset(),
                f"ERROR: No matching distribution found for {line} "
                f"(the grader can provide {name}=={installed})",
            )
        added.add(_IMPORT_NAMES.get(name, name.replace("-", "_")))
    return RequirementsOutcome(frozenset(added))
