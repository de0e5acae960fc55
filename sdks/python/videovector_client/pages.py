# Copied by videovector-codegen from codegen/python/pages.py; edit it there.
"""Lists as iterators of items: every paginated operation (``x-pagination`` in the spec:
``*_list``) answers a page of ``items`` and a ``next_cursor``; ``items()`` asks for each next
page with the same arguments and ``cursor`` set to the last page's ``next_cursor``, only as
the iteration reaches it:

    from videovector_client.pages import items

    for index in items(index_list, client=api, limit=100):
        print(index.id, index.name)

A page the server refuses raises its ``ProblemError``.
"""

from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from .problems import ok
from .types import UNSET


def items(operation: ModuleType, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Every item of the list ``operation`` (an ``api`` module such as ``index_list``)
    answers for ``args`` and ``kwargs`` (``client=`` among them), page after page."""
    cursor = kwargs.pop("cursor", UNSET)
    while True:
        page = ok(operation.sync_detailed(*args, cursor=cursor, **kwargs))
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def aitems(operation: ModuleType, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """``items()`` with the operation's ``asyncio_detailed``."""
    cursor = kwargs.pop("cursor", UNSET)
    while True:
        page = ok(await operation.asyncio_detailed(*args, cursor=cursor, **kwargs))
        for item in page.items:
            yield item
        if not page.next_cursor:
            return
        cursor = page.next_cursor
