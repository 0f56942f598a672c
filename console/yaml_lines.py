"""Where in a YAML text a validator's location (`("steps", 3, "goto")`) points: the line, so the editor
can show each error at its line."""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the node at `loc` (or of its nearest existing parent); None when the text does
    not parse."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        child: yaml.Node = node.value[part]
        return child
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                # point at the key's line: a value may start on the next line
                return value if isinstance(value, yaml.CollectionNode) else key
    return None


def yaml_error_line(error: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML syntax error names."""
    mark = getattr(error, "problem_mark", None)
    return int(mark.line) + 1 if mark is not None else None
