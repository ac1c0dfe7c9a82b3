"""Materialised paths for the org tree and the reporting line.

A path is the chain of ids from the root down to the node, each written as a fixed-width
run of digits, e.g. department 5 under department 1 is "0000000100000005". Because every
character is a digit and every segment has the same width, a subtree is one contiguous
range of the path column, [path, next(path)), which both SQLite and PostgreSQL answer from
a plain B-tree index, whatever the database's collation. No recursion in Python.
"""

from __future__ import annotations

from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Substr

SEGMENT = 8
MAX_PATH = 255


def segment(node_id: int) -> str:
    if node_id >= 10**SEGMENT:
        raise ValueError(f"id {node_id} does not fit a path segment")
    return f"{node_id:0{SEGMENT}d}"


def child_path(parent_path: str, node_id: int) -> str:
    path = parent_path + segment(node_id)
    if len(path) > MAX_PATH:
        raise ValueError("the tree is deeper than a path can hold")
    return path


def upper_bound(path: str) -> str:
    """The smallest path that is not inside the subtree of `path`."""
    return str(int(path) + 1).zfill(len(path))


def subtree_q(field: str, path: str, *, include_self: bool = True) -> Q:
    lower = path if include_self else path + "0" * SEGMENT
    return Q(**{f"{field}__gte": lower, f"{field}__lt": upper_bound(path)})


def ancestor_ids(path: str) -> list[int]:
    """Ids on the path from the root down to and including the node, read from the string."""
    return [int(path[i : i + SEGMENT]) for i in range(0, len(path), SEGMENT)]


def depth(path: str) -> int:
    return len(path) // SEGMENT


def move_subtree(queryset, field: str, old_path: str, new_path: str) -> int:  # type: ignore[no-untyped-def]
    """Rewrite the prefix of every path in the subtree in one UPDATE."""
    if new_path.startswith(old_path):
        raise ValueError("cannot move a node under itself")
    return queryset.filter(subtree_q(field, old_path)).update(
        **{field: Concat(Value(new_path), Substr(F(field), len(old_path) + 1))}
    )
