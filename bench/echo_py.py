"""asyncio / uvloop protocol echo server: python3 echo_py.py <asyncio|uvloop> <port>"""
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


if sys.argv[1] == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
srv = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", int(sys.argv[2]), backlog=4096))
loop.run_forever()
