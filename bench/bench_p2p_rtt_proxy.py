"""TCP proxy that delays every chunk by a fixed one-way delay, both ways: a WAN-like round-trip time on
loopback (no netem needed). Used by bench_p2p.sh to show what yamux flow control does over distance.

    python3 bench_p2p_rtt_proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_MS

Prints "ready" once listening; serves until killed."""
import asyncio
import sys
import time

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000.0


async def pump(reader, writer):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        await queue.put((time.monotonic() + DELAY, data))
    await queue.put((0, None))
    await task


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection('127.0.0.1', TARGET)
    await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer),
                         return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, '127.0.0.1', LISTEN)
    print('ready', flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
