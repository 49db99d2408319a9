"""The Gemini adapter on wire transcripts (`transcripts/`): one test module per adapter role.

The transcripts follow the documented Generative Language API shapes (PROVIDERS.md §3);
thought signatures in them are opaque base64 of the real length class (hundreds of bytes).
"""
