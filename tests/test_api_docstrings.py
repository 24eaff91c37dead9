"""Every public function of :mod:`epimpute.api` documents each of its parameters and its
return value in numpydoc sections."""

import inspect
import re

import pytest

from epimpute import api


def _section(doc: str, title: str) -> list[str]:
    """Names at the section's first indent level (``name`` or ``name : type`` lines)."""
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = lines.index(title) + 2
    except ValueError:
        return []
    assert lines[start - 1] == "-" * len(title)
    names = []
    for line, below in zip(lines[start:], [*lines[start + 1:], ""]):
        if re.fullmatch(r"-+", below):  # the next section's title
            break
        if line and not line.startswith(" "):
            names.append(line.split(" : ")[0].strip())
    return names


@pytest.mark.parametrize("name", api.__all__)
def test_public_functions_document_every_parameter_and_the_return_value(name):
    function = getattr(api, name)
    documented = _section(function.__doc__ or "", "Parameters")
    assert documented == list(inspect.signature(function).parameters), name
    assert _section(function.__doc__, "Returns"), f"{name} has no Returns section"


def test_the_section_reader_sees_a_missing_parameter():
    def half(a: int, b: int) -> int:
        """Half documented.

        Parameters
        ----------
        a
            The first.

        Returns
        -------
        Total
            Something.

        Raises
        ------
        ValueError
            Never.
        """
        return a + b

    assert _section(half.__doc__, "Parameters") == ["a"]
    assert _section(half.__doc__, "Returns") == ["Total"]
    assert _section(half.__doc__, "Examples") == []
