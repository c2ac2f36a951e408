"""Drives the real channels_redis RedisChannelLayer for tests/redis_wire.rs.

Run with the legacy venv's python. Reads one JSON command per line on stdin and answers one JSON
line on stdout. Bytes travel as {"__bytes__": "<hex>"}; every reply that carries a message also
carries its Python repr(), which shows the exact types (str vs bytes, int vs float) and key order.

    {"op": "init", "hosts": [...], "prefix": "...", "capacity": 100, "expiry": 60,
     "group_expiry": 86400, "keys": [...]}
    {"op": "new_channel"}                       -> {"channel": "specific.<cp>!<uuid>"}
    {"op": "group_add", "group": g, "channel": c}
    {"op": "group_discard", "group": g, "channel": c}
    {"op": "group_send", "group": g, "message": {...}}
    {"op": "send", "channel": c, "message": {...}}  -> {"ok": true} or {"error": "ChannelFull"}
    {"op": "receive", "channel": c, "timeout": s}   -> {"repr": ..., "message": ...} or {"timeout": true}
    {"op": "hash", "names": [...], "ring": n}       -> {"shards": [...]}
    {"op": "packb", "message": {...}}               -> {"hex": ...}
"""

import asyncio
import json
import logging
import sys

import msgpack
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from channels_redis.utils import _consistent_hash

logging.basicConfig(level=logging.INFO, stream=sys.stderr)


def from_json(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return bytes.fromhex(value["__bytes__"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value):
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


async def handle(layer, cmd):
    op = cmd["op"]
    if op == "init":
        return RedisChannelLayer(
            hosts=cmd["hosts"],
            prefix=cmd.get("prefix", "asgi"),
            capacity=cmd.get("capacity", 100),
            expiry=cmd.get("expiry", 60),
            group_expiry=cmd.get("group_expiry", 86400),
            symmetric_encryption_keys=cmd.get("keys") or None,
        ), {"ok": True}
    if op == "new_channel":
        return layer, {"channel": await layer.new_channel()}
    if op == "group_add":
        await layer.group_add(cmd["group"], cmd["channel"])
        return layer, {"ok": True}
    if op == "group_discard":
        await layer.group_discard(cmd["group"], cmd["channel"])
        return layer, {"ok": True}
    if op == "group_send":
        await layer.group_send(cmd["group"], from_json(cmd["message"]))
        return layer, {"ok": True}
    if op == "send":
        try:
            await layer.send(cmd["channel"], from_json(cmd["message"]))
        except ChannelFull:
            return layer, {"error": "ChannelFull"}
        return layer, {"ok": True}
    if op == "receive":
        try:
            msg = await asyncio.wait_for(layer.receive(cmd["channel"]), cmd.get("timeout", 5))
        except asyncio.TimeoutError:
            return layer, {"timeout": True}
        return layer, {"repr": repr(msg), "message": to_json(msg)}
    if op == "hash":
        return layer, {"shards": [_consistent_hash(n, cmd["ring"]) for n in cmd["names"]]}
    if op == "packb":
        return layer, {"hex": msgpack.packb(from_json(cmd["message"]), use_bin_type=True).hex()}
    raise ValueError(f"unknown op {op!r}")


async def main():
    loop = asyncio.get_running_loop()
    layer = None
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        try:
            layer, reply = await handle(layer, json.loads(line))
        except Exception as e:  # reported to the test, which fails with it
            reply = {"exception": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    if layer is not None:
        await layer.close_pools()


if __name__ == "__main__":
    asyncio.run(main())
