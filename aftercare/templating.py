"""Message rendering: Jinja2 in a sandbox, with strict undefined variables.

A template that refers to something missing fails to render instead of sending a message with a hole
in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_text = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)
_html = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateRenderError(ValueError):
    """A template that does not parse or cannot be rendered with the data at hand."""


def check_template_syntax(source: str) -> None:
    """Raise `TemplateRenderError` naming the line when the source is not valid Jinja2."""
    try:
        _text.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateRenderError(f"line {error.lineno}: {error.message}") from error


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Any:
    return (_html if html else _text).from_string(source)


def render(source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """Render `source`; HTML output escapes the variables it inserts."""
    try:
        return str(_compile(source, html).render(**variables)).strip()
    except TemplateError as error:
        raise TemplateRenderError(error.message or type(error).__name__) from error
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise TemplateRenderError(f"{type(error).__name__}: {error}") from error
