"""Proof the fakes' embeddings wires are faithful: the official SDKs (openai, google-genai,
mistralai) embed against them and parse every answer."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from mistralai.client import Mistral
from mistralai.client import errors as mistral_errors

from . import Error, FakeGemini, FakeMistral, FakeOpenAI, Reply
from .embeddings import vector

pytestmark = pytest.mark.timeout(10)

KEY = "sk-test-key-0123456789"


def _close(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b):
        return False
    return all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def oai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def oai(oai_fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    oai_fake.reset()
    with openai.OpenAI(api_key=KEY, base_url=oai_fake.base_url, max_retries=0) as client:
        yield client


def test_openai_embeddings(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    res = oai.embeddings.create(model="text-embedding-3-small", input="hello")
    assert oai_fake.last.path == "/v1/embeddings"
    assert oai_fake.last.json["encoding_format"] == "base64"  # the SDK's default, decoded
    assert res.object == "list" and res.model == "text-embedding-3-small"
    assert _close(res.data[0].embedding, vector("hello", 1536))
    assert res.usage.prompt_tokens == res.usage.total_tokens > 0

    res = oai.embeddings.create(
        model="text-embedding-3-large", input=["a", "b"], dimensions=8, encoding_format="float"
    )
    assert [d.index for d in res.data] == [0, 1]
    assert _close(res.data[1].embedding, vector("b", 8))
    tokens = oai.embeddings.create(model="text-embedding-3-small", input=[[1, 2], [3]])
    assert len(tokens.data) == 2 and len(tokens.data[0].embedding) == 1536


def test_openai_embeddings_errors(oai: openai.OpenAI, oai_fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        oai.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)
    oai_fake.script(Error(429, retry_after=1))
    with pytest.raises(openai.RateLimitError):
        oai.embeddings.create(model="text-embedding-3-small", input="x")


@pytest.fixture(scope="module")
def gem_fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def gem(gem_fake: FakeGemini) -> Iterator[genai.Client]:
    gem_fake.reset()
    options = gtypes.HttpOptions(base_url=gem_fake.base_url, api_version="v1beta")
    client = genai.Client(api_key=KEY, http_options=options)
    yield client
    client.close()


def test_gemini_embeddings(gem: genai.Client, gem_fake: FakeGemini) -> None:
    res = gem.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert gem_fake.last.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert res.embeddings is not None and len(res.embeddings) == 2
    assert _close(res.embeddings[1].values or [], vector("b", 3072))
    config = gtypes.EmbedContentConfig(output_dimensionality=16)
    res = gem.models.embed_content(model="gemini-embedding-001", contents="a", config=config)
    assert res.embeddings is not None and len(res.embeddings[0].values or []) == 16
    assert gem_fake.last.json["requests"][0]["outputDimensionality"] == 16
    gem_fake.script(Error(503))
    with pytest.raises(genai_errors.ServerError):
        gem.models.embed_content(model="gemini-embedding-001", contents="a")


def test_gemini_embed_content_wire(gem_fake: FakeGemini) -> None:
    """`embedContent` (one input), as Orbyt sends it; the SDK only uses the batch method."""
    gem_fake.reset()
    url = f"{gem_fake.base_url}/v1beta/models/gemini-embedding-001:embedContent"
    body = {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4}
    answer = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}).json()
    assert _close(answer["embedding"]["values"], vector("a", 4))


@pytest.fixture(scope="module")
def mis_fake() -> Iterator[FakeMistral]:
    with FakeMistral(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def mis(mis_fake: FakeMistral) -> Iterator[Mistral]:
    mis_fake.reset()
    with Mistral(api_key=KEY, server_url=mis_fake.base_url) as client:
        yield client


def test_mistral_embeddings(mis: Mistral, mis_fake: FakeMistral) -> None:
    mis_fake.script(Reply(usage=(7, 0)))
    res = mis.embeddings.create(model="mistral-embed", inputs=["a", "b"])
    assert mis_fake.last.path == "/v1/embeddings"
    assert len(res.data) == 2 and res.usage.prompt_tokens == 7
    assert _close(res.data[0].embedding or [], vector("a", 1024))
    with pytest.raises(mistral_errors.SDKError):
        mis.embeddings.create(model="mistral-embed", inputs="a", output_dimension=8)
    mis_fake.script(Error(429))
    with pytest.raises(mistral_errors.SDKError):
        mis.embeddings.create(model="mistral-embed", inputs="a")
