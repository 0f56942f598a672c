"""Rendering: strict, sandboxed, never half a message."""

from __future__ import annotations

import pytest

from aftercare.templating import TemplateRenderError, check_template_syntax, render


def test_variables_render() -> None:
    assert render("Hi {{ patient.given }}", {"patient": {"given": "Ana"}}) == "Hi Ana"


def test_a_missing_variable_fails_instead_of_rendering_a_gap() -> None:
    with pytest.raises(TemplateRenderError, match="nickname"):
        render("Hi {{ patient.nickname }}", {"patient": {"given": "Ana"}})


def test_the_sandbox_refuses_reaching_into_python_internals() -> None:
    with pytest.raises(TemplateRenderError):
        render("{{ patient.__class__.__mro__[1].__subclasses__() }}", {"patient": {}})


def test_html_output_escapes_inserted_values() -> None:
    assert render("<p>{{ name }}</p>", {"name": "<b>x</b>"}, html=True) == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(TemplateRenderError, match="line 2"):
        check_template_syntax("Hello\n{{ patient.given }")
