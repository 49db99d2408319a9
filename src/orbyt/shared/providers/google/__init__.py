"""Google Gemini (Generative Language API, `generateContent`), model ids `google/gemini-...`.

Requests go to `POST {base}/v1beta/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse` when streaming, with the key in `x-goog-api-key` (never
in the URL). The model id must be a plain name (`[A-Za-z0-9._-]`), so it cannot reach
another path on Google's host.

Request mapping (OpenAI -> Gemini):

    system / developer messages    systemInstruction.parts (text only, in order, wherever
                                   they appear in the conversation)
    user / assistant               contents[] with role user / model; consecutive turns of
                                   one role are merged; empty messages are skipped
    text parts, refusal parts      {"text"}
    image_url data URL             {"inlineData": {mimeType, data}}
    image_url http(s) URL          {"fileData": {mimeType, fileUri}}, mimeType from the
                                   extension (png, jpg, jpeg, webp, heic, heif, gif); a Files
                                   API URI may have none. Gemini itself may reject URIs that
                                   are not Files API / allowed URLs. Unknown type: rejected.
    input_audio (wav, mp3)         {"inlineData": {"audio/wav" | "audio/mp3"}}
    file.file_data (data URL)      {"inlineData"}; file.file_id: rejected
    assistant tool_calls           {"functionCall": {name, args}, "thoughtSignature"?}
    tool messages                  one user turn of {"functionResponse": {name, response}}
                                   in call order; the name comes from the assistant message
                                   that made the call; a JSON-object result is sent as is,
                                   anything else as {"result": "<content>"}
    temperature, top_p             generationConfig.temperature, .topP
    max_completion_tokens          generationConfig.maxOutputTokens (else max_tokens)
    stop                           .stopSequences; more than 5: rejected
    n                              .candidateCount (when > 1)
    seed, presence_penalty,        .seed, .presencePenalty, .frequencyPenalty
    frequency_penalty
    logprobs, top_logprobs         .responseLogprobs, .logprobs (answered as OpenAI logprobs)
    response_format                json_object -> .responseMimeType "application/json";
                                   json_schema -> also .responseJsonSchema; text -> nothing
    reasoning_effort               .thinkingConfig: thinkingLevel for Gemini 3+ (none and
                                   minimal -> MINIMAL, xhigh -> HIGH), thinkingBudget for 2.5
                                   (0/1024/1024/8192/24576/24576), includeThoughts unless
                                   "none"; ignored for models that do not think
    tools (function)               tools[0].functionDeclarations[{name, description,
                                   parametersJsonSchema}]; other tool types: rejected
    tool_choice                    toolConfig.functionCallingConfig.mode AUTO / NONE / ANY;
                                   a named function -> ANY + allowedFunctionNames
    dropped                        user, parallel_tool_calls, logit_bias, stream_options,
                                   tools[].function.strict, image detail, message name,
                                   assistant reasoning_content, metadata, store,
                                   service_tier, and any field not listed here
    rejected (InvalidRequest)      audio, prediction, web_search_options, functions,
                                   function_call, modalities other than ["text"], role
                                   "function", tool_call_id matching no earlier call,
                                   tool-call arguments that are not a JSON object

Tool call ids and thought signatures. Gemini does not always give function calls an id,
so each gets a deterministic OpenAI id, `call_<n>_<16 hex of sha256(responseId, choice,
n, name, arguments)>` (at most 40 characters, the longest id OpenAI accepts when the
conversation is later replayed to it). Ids are never sent back to Gemini: results are
matched to calls by name and order. Gemini 3 puts a `thoughtSignature` on function-call
parts (only the first of parallel calls) and requires it back exactly. The gateway is
stateless, so the signature travels inside the OpenAI tool call as
`extra_content: {"google": {"thought_signature": sig}}`, as Google's own OpenAI layer
does, and is restored from there. It is NOT encoded into the id: real signatures are
hundreds of bytes, which would break the 40-character limit above (and Mistral's 9).
When a Gemini 3 assistant turn comes back without one (a client that drops unknown
fields), its first call gets the documented placeholder `skip_thought_signature_validator`.

Responses: text parts -> content (None when empty), `thought: true` parts ->
reasoning_content, functionCall parts -> tool_calls; finish reasons STOP -> stop (tool_calls
when the choice has a call), MAX_TOKENS -> length, the safety family -> content_filter,
everything else -> stop; a blocked prompt (promptFeedback.blockReason, no candidates) ->
content_filter. Streams have no terminator: the stream is done once every choice has a
finishReason, and the latest usage is then emitted as a `{"choices": [], "usage"}` item.
Non-text output parts (executableCode, inline images, ...) are dropped.

Embeddings (`embedContent` / `batchEmbedContents`): `embeddings.py`, mapping table there.

Modules: `request` (URL, headers, body; `contents` translates the conversation, `config` the
generation, tool and reasoning fields), `response`, `stream` (`GoogleStreamState`), `errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from orbyt.shared.errors import UpstreamError
from orbyt.shared.providers.base import Adapter, Json, Target, UpstreamRequest
from orbyt.shared.providers.google import embeddings, errors, request, response, stream
from orbyt.shared.providers.google.stream import GoogleStreamState
from orbyt.shared.sse import SSEEvent

__all__ = ["ADAPTER", "GoogleAdapter", "GoogleStreamState"]


class GoogleAdapter:
    name: ClassVar[str] = "google"
    key_env: ClassVar[str] = "ORBYT_PROVIDERS__GOOGLE__KEYS"
    default_base_url: ClassVar[str] = request.DEFAULT_BASE_URL
    needs_key: ClassVar[bool] = True
    embeddings_tokens: ClassVar[bool] = False

    def build_request(self, body: Json, target: Target) -> UpstreamRequest:
        return request.build_request(body, target)

    def parse_response(self, raw: bytes, target: Target) -> Json:
        return response.parse_response(raw)

    def new_stream_state(self, body: Json, target: Target) -> GoogleStreamState:
        return stream.new_stream_state(body)

    def parse_event(self, event: SSEEvent, state: GoogleStreamState) -> list[Json]:
        return stream.parse_event(event, state)

    def build_embeddings_request(self, body: Json, target: Target) -> UpstreamRequest:
        return embeddings.build_embeddings_request(body, target)

    def parse_embeddings_response(self, raw: bytes, target: Target) -> Json:
        return embeddings.parse_embeddings_response(raw)

    def map_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return errors.map_error(status, headers, raw)


ADAPTER: Adapter[GoogleStreamState] = GoogleAdapter()
