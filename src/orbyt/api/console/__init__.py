"""The admin console: server-rendered pages at /console over the admin API's functions.

session.py   sign-in with the admin key, session cookie, CSRF tokens
pages.py     the pages (keys, usage and cost, routes, batches) and their forms
queries.py   what the admin API answers and the pages show (one source of truth)
reports.py   pure usage reports: date ranges, percentiles, grouping, CSV
templates/   Jinja2 templates; static/ the stylesheet, script and vendored libraries
"""
