"""Faithful fake upstream LLM providers for tests (loopback only).

with FakeAnthropic() as fake:
    fake.script(Error(529), Reply(text="hi", ttft=0.2))
    ...  # point the gateway / SDK at fake.base_url
    assert fake.requests[0].headers["anthropic-version"] == "2023-06-01"
"""

from .behaviours import DEFAULT_TEXT, Behaviour, Error, Hang, Reply, Reset, Timing, Usage
from .echo import echo_key, key_forms
from .fake_anthropic import FakeAnthropic
from .fake_deepseek import FakeDeepSeek
from .fake_gemini import SKIP_SIGNATURE, FakeGemini
from .fake_mistral import FakeMistral
from .fake_openai import FakeOpenAI
from .server import FakeServer
from .wire import Call, ErrorSpec, Frame, Recorded

__all__ = [
    "DEFAULT_TEXT",
    "SKIP_SIGNATURE",
    "Behaviour",
    "Call",
    "Error",
    "ErrorSpec",
    "FakeAnthropic",
    "FakeDeepSeek",
    "FakeGemini",
    "FakeMistral",
    "FakeOpenAI",
    "FakeServer",
    "Frame",
    "Hang",
    "Recorded",
    "Reply",
    "Reset",
    "Timing",
    "Usage",
    "echo_key",
    "key_forms",
]
