"""The use cases: each service takes its ports (and a clock) in its constructor and holds no AWS code.

- ``ingest``: validate an event, plan its jobs, publish them durably (the API, the scheduler)
- ``delivery``: one job through claim, recipient, render, send and its outcome (the worker)
- ``fanout``: expand a segment event page by page (the worker)
- ``campaigns``: cron-scheduled sends and the scheduler's tick
- ``segments``: static segments
- ``templates``: versioned templates, checked when saved, rendered for previews
- ``dlq``: listing and redriving dead letters
- ``status``: a job's, an event's and a user's history
- ``access``: API keys and their scopes
"""
