"""OpenAI's Responses API on top of Chat Completions: pure translations (no I/O but `store`).

- `request`: a validated `/v1/responses` body → the chat body every adapter already takes,
  and the echo fields a Response object repeats.
- `output`: a normalised chat answer → a Response object and its output items
  (`message` / `function_call` / `reasoning`), usage, status and incomplete details.
- `events`: the Responses stream (`response.created` ... `response.completed`) rendered
  from normalised chat chunks, with sequence numbers, as ready SSE bytes.
- `store`: the Redis key names and record shape of stored responses.
- `prepare`: a validated body, its plan and stored history → the job's chat body and view
  (shared by `POST /v1/responses` and `/v1/responses` batch lines).

The queued job carries `kind = "responses"` and a `responses` view (`ResponsesView`): the
response id, creation time, echo fields and what to store.
"""
