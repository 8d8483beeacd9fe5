"""Reading Azure's environment YAML into what a build depends on."""

from __future__ import annotations

import pytest

from sluiceway.environments.spec import (
    EnvironmentContent,
    TranslationError,
    content_of,
    translate,
)
from sluiceway.errors import ValidationError

CONDA = {
    "name": "heart",
    "channels": ["conda-forge"],
    "dependencies": [
        "python=3.11",
        "pip",
        "conda-forge::scikit-learn=1.5",
        "numpy>=1.26",
        {"pip": ["lightgbm==4.3.0", "azureml://datastores/ds/paths/w/pkg-0.1-py3-none-any.whl"]},
    ],
}


def test_a_conda_file_gives_python_conda_and_pip() -> None:
    content = content_of({"image": "mcr.microsoft.com/azureml/x:latest", "conda_file": CONDA})
    assert content.python == "3.11"
    assert content.conda == ("pip", "conda-forge::scikit-learn=1.5", "numpy>=1.26")
    assert content.pip[0] == "lightgbm==4.3.0"
    assert content.uploaded_files() == [content.pip[1]]
    assert content.image == "mcr.microsoft.com/azureml/x:latest"


def test_the_hash_covers_the_content_not_the_image() -> None:
    one = content_of({"image": "a", "conda_file": CONDA})
    assert one.content_hash() == content_of({"image": "b", "conda_file": CONDA}).content_hash()
    assert one.content_hash() != content_of({"requirements": ["numpy"]}).content_hash()
    assert EnvironmentContent.from_json(one.to_json()) == one


def test_conda_packages_translate_through_the_table_and_say_so() -> None:
    lines, notes = translate(["conda-forge::scikit-learn=1.5", "numpy>=1.26", "pip", "pytorch"])
    assert lines == ["scikit-learn==1.5.*", "numpy>=1.26", "torch"]
    assert any("channel 'conda-forge' ignored" in n for n in notes)
    assert translate(["pandas=2.2.1=py311_0"])[0] == ["pandas==2.2.1"]
    with pytest.raises(TranslationError, match="'cudatoolkit', 'libgdal'"):
        translate(["numpy", "cudatoolkit=11.8", "libgdal"])


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"requirements": ["-e ."]}, "'-e .' is not accepted"),
        ({"requirements": ["--index-url https://x"]}, "is not accepted"),
        ({"requirements": ["/root/secret.whl"]}, "is not accepted"),
        ({"requirements": ["-r other.txt"]}, "names a requirements file"),
        ({"build": {"path": "docker"}}, "no container runtime"),
        ({"conda_file": {"dependencies": ["python=three"]}}, "python=three"),
        ({"conda_file": "env.yml"}, "must be the conda file's content"),
        ({"conda_file": {"dependencies": ["--index-url=x"]}}, "not a conda package spec"),
        ({"conda_file": {"dependencies": ["numpy --index-url=x"]}}, "not a conda package spec"),
    ],
)
def test_what_cannot_be_honoured_is_refused(definition: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        content_of(definition)
