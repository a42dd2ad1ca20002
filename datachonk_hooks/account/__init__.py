"""The account part: connecting to a dbt Cloud account and reading it (`connect`, `status`,
`projects`, `jobs`).

One job per module: `workspace` (where the settings come from, the quick client), `connect`
and `verify` (asking, checking with dbt Cloud, saving), `status`, `listings` (reading projects
and jobs) and `tables` (showing them).

Project names, job names and dbt Cloud's messages are text from outside: every line these
commands show (the tables, `status`, what `connect` says) goes through `sanitize`.
"""
