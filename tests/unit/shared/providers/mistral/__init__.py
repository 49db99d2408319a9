"""Mistral adapter: request translation, responses, streams and errors on wire transcripts.

One test module per adapter role (`test_request`, `test_response`, `test_stream`,
`test_errors`) plus `test_properties`; wire transcripts in `transcripts/`.
"""
