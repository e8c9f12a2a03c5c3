#!/usr/bin/env python3
"""latency_proxy.py -- a TCP relay on 127.0.0.1 that adds a fixed one-way delay to every
byte in both directions, so that a loopback server looks like one across a network
(a request-response round trip costs 2 x DELAY more; bandwidth is not limited).

    latency_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Each direction of each connection is a delay line: a chunk read at time t is written at
t + DELAY, in order, so many requests in flight overlap their delays as they would on a
real network. Used by bench/cloud-throughput.sh --latency; never by the tests.
"""
import asyncio
import sys
import time


async def delay_line(reader, writer, delay):
    queue = asyncio.Queue()

    async def receive():
        while True:
            data = await reader.read(1 << 18)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


async def main():
    listen_port, target_port, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = delay_ms / 1000.0

    async def serve(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(delay_line(client_reader, server_writer, delay),
                             delay_line(server_reader, client_writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main())
