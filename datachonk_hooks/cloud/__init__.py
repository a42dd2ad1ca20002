"""dbt Cloud as the package sees it: the run statuses (`status`), typed records (`records`),
typed errors (`errors`) and the client with its bounded retries (`client`).

Everything else in the package gets records and errors from here and never sees JSON or
HTTP.
"""
