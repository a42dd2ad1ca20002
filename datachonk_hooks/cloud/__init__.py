"""dbt Cloud as the package sees it: the run statuses (`status`), typed records (`records`),
typed errors (`errors`) and the client (`client`: the endpoints), which talks HTTP through
`transport` (deadlines from `exchange`, bounded retries, redirects refused), reads lists
with `paging` and learns what an error answer means from `answers`.

Everything else in the package gets records and errors from here and never sees JSON or
HTTP.
"""

from __future__ import annotations
