"""Reading dbt Cloud's list endpoints page by page (`limit` and `offset`, at most
PAGE_SIZE items a page), apart from the endpoints that use it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from datachonk_hooks.cloud.errors import BadResponseError
from datachonk_hooks.cloud.records import JSONDict, _int
from datachonk_hooks.cloud.transport import Transport

PAGE_SIZE = 100  # dbt Cloud refuses a larger `limit` on list endpoints


def paginate(
    transport: Transport,
    path: str,
    params: Mapping[str, str | int],
    *,
    what: tuple[str, int | None],
    limit: int | None = None,
) -> Iterator[JSONDict]:
    """The items of a list endpoint, page by page (PAGE_SIZE at most each), up to `limit`
    (None: every page); stops at a short page or at the total dbt Cloud reports."""
    offset, seen = 0, 0
    while True:
        page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - seen)
        envelope = transport.get(
            path, {**params, "limit": page_size, "offset": offset}, what=what, envelope=True
        )
        items = envelope.get("data")
        if not isinstance(items, list):
            raise BadResponseError(f"dbt Cloud returned no list for {path}")
        for item in items:
            if isinstance(item, Mapping):
                yield dict(item)
        seen += len(items)
        offset += len(items)
        total = _int(_dig(envelope, "extra", "pagination", "total_count"))
        if not items or len(items) < page_size or (total is not None and offset >= total):
            return
        if limit is not None and seen >= limit:
            return


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data
