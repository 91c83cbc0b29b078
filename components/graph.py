"""The target dependency graph: closure over parents and a build order.

Pure functions over ``catalog.TARGETS`` (or any mapping of the same shape, so tests can
feed a graph with a cycle). Errors are raised before any resource exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from components.catalog import TARGETS, Target


class GraphError(ValueError):
    """An unknown target or a dependency cycle."""


def selected_with_parents(
    wanted: Iterable[str], catalog: Mapping[str, Target] = TARGETS
) -> list[str]:
    """The wanted targets plus every ancestor, parents first (a topological order).

    Ties keep catalog order, so the plan reads the same on every run.
    """
    order: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name not in catalog:
            via = f" (parent of {path[-1]})" if path else ""
            raise GraphError(
                f"unknown target {name!r}{via}; known targets: {', '.join(sorted(catalog))}"
            )
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise GraphError(f"dependency cycle between targets: {cycle}")
        state[name] = "visiting"
        for parent in catalog[name].parents.values():
            visit(parent, (*path, name))
        state[name] = "done"
        order.append(name)

    wanted_set = set(wanted)
    for name in sorted(wanted_set, key=lambda n: _rank(n, catalog)):
        visit(name, ())
    return order


def _rank(name: str, catalog: Mapping[str, Target]) -> int:
    names = list(catalog)
    return names.index(name) if name in catalog else len(names)
