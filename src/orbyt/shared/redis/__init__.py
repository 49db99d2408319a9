"""Everything Orbyt does with Redis (DESIGN §1, §6).

- `options`: the one URL parser (redis://, rediss://, redis+sentinel://) for every client;
- `clients`: redis-py and arq clients built from it, Sentinel master discovery;
- `connect`, `link`, `fast`, `hub`: the hardened hand-written RESP connections of the hot
  paths (opening one; liveness and reconnects; pipelined commands; the pub/sub hub);
- `queue`: the chat queue protocol (enqueue, claim, withdraw, abandon, worker liveness);
- `arq_fence`: the arq internals Orbyt relies on;
- `roles`: which Redis (durable state or ephemeral queue) each use goes to.
"""
