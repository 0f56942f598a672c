"""FHIRPath: syntax checks at publish time and evaluation with the journey variables.

Evaluation reads the clock (`now()`, `today()`), so it happens in activities and in the API, never in
workflow code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.models import models as fhir_models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

_MODEL = fhir_models["r4"]


def _answer(inputs: list[Any], link_id: str) -> list[Any]:
    """`answer('pain-score')` on a survey event's data: the answers given to that question (linkId)."""
    found: list[Any] = []
    for item in inputs:
        answers = item.get("answers") if isinstance(item, dict) else None
        if isinstance(answers, dict):
            found.extend(answers.get(link_id) or [])
    return found


# Functions Aftercare adds to FHIRPath: `answer(linkId)` over `%event.data` of `survey.completed`.
_FUNCTIONS = {"userInvocationTable": {"answer": {"fn": _answer, "arity": {1: ["String"]}}}}


class FhirPathError(ValueError):
    """An expression that does not parse or cannot be evaluated."""


class _Raise(ErrorListener):
    def syntaxError(
        self, recognizer: Any, offendingSymbol: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise FhirPathError(f"column {column + 1}: {msg}")


def check_syntax(expression: str) -> None:
    """Raise `FhirPathError` naming the column when the expression is not valid FHIRPath."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.entireExpression()


@lru_cache(maxsize=2048)
def _compiled(expression: str) -> Callable[..., list[Any]]:
    check_syntax(expression)
    compiled: Callable[..., list[Any]] = fhirpathpy.compile(expression, _MODEL, _FUNCTIONS)
    return compiled


def evaluate(expression: str, root: Any, variables: Mapping[str, Any]) -> list[Any]:
    """Evaluate over `root` with `%name` variables; raise `FhirPathError` on failure."""
    try:
        return _compiled(expression)(root, dict(variables))
    except FhirPathError:
        raise
    except Exception as error:  # the engine raises bare exceptions for type errors and unknown variables
        raise FhirPathError(str(error) or type(error).__name__) from error


def is_true(expression: str, root: Any, variables: Mapping[str, Any]) -> bool:
    """FHIRPath's boolean reading of a result: empty is false, a single boolean is itself, any other
    single value is true; several values are an error."""
    result = evaluate(expression, root, variables)
    if not result:
        return False
    if len(result) > 1:
        raise FhirPathError(f"the expression gave {len(result)} values where one boolean was expected")
    value = result[0]
    return value if isinstance(value, bool) else True
