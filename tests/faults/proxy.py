"""A TCP proxy that can make its upstream (e.g. PostgreSQL) unreachable and reachable again.

    proxy = TcpProxy("127.0.0.1", 5432).start()   # connect to 127.0.0.1:proxy.port instead
    proxy.cut()        # open connections are reset; new ones are accepted and then hear nothing
    proxy.restore()    # forwarding again; connections made while cut are closed
    proxy.close()

A cut looks like a host that has gone away: a client does not get "connection refused" at once
but waits, which is what a short connect timeout has to deal with. Threads, not asyncio, so it
runs beside any event loop (or none).
"""

import socket
import struct
import threading
from typing import Self


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: the peer sees the connection die (RST) instead of a polite goodbye;
    # shutdown first wakes the thread blocked reading it (close alone does not).
    for step in (lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
                 lambda: sock.shutdown(socket.SHUT_RDWR)):
        try:
            step()
        except OSError:
            pass
    sock.close()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.host, self.port = host, self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.is_cut = False
        self.closed = False
        self.live: set[socket.socket] = set()  # both ends of every forwarded connection
        self.held: set[socket.socket] = set()  # accepted while cut: never answered
        self.accepted = 0

    def start(self) -> Self:
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()
        return self

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
            live, self.live = self.live, set()
        for sock in live:
            _reset(sock)

    def restore(self) -> None:
        with self.lock:
            self.is_cut = False
            held, self.held = self.held, set()
        for sock in held:
            _reset(sock)

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.cut()
        self.restore()
        self.listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- internals ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # listener closed
            with self.lock:
                self.accepted += 1
                if self.closed:
                    client.close()
                    return
                if self.is_cut:
                    self.held.add(client)
                    continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self.lock:
            if self.is_cut or self.closed:
                _reset(client)
                _reset(upstream)
                return
            self.live.update((client, upstream))
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # one side was cut or closed
        # Either side ending ends the connection (PostgreSQL's protocol has no half-close).
        with self.lock:
            mine = src in self.live or dst in self.live
            self.live.difference_update((src, dst))
        if mine:
            _reset(src)
            _reset(dst)
