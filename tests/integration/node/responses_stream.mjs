// One Responses stream through Orbyt with the official Node `openai` SDK: the stream
// helper's events and final response, printed as JSON for the Python test to check.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GATEWAY_BASE_URL, apiKey: process.env.GATEWAY_API_KEY });
const tools = [
  {
    type: "function",
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
    strict: false,
  },
];
const stream = client.responses.stream({ model: process.env.GATEWAY_MODEL, input: "Weather?", tools });
const types = [];
let text = "";
stream.on("response.output_text.delta", (event) => {
  text += event.delta;
});
for await (const event of stream) {
  types.push(event.type);
}
const final = await stream.finalResponse();
console.log(JSON.stringify({ types, text, final }));
