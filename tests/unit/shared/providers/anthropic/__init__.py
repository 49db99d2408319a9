"""Anthropic adapter: pure translations, checked against wire transcripts (a module per role).

Transcripts live in `transcripts/`: request pairs (`requests.json`), message and
error bodies (`*.json`) and SSE streams (`*.sse`, byte-for-byte as Anthropic frames them).
They are written to Anthropic's documented wire format; `TestTranscriptsMatchTheSDK` reads
the same bytes with the official `anthropic` SDK so a drifting transcript fails loudly.
"""
