"""A thin ctypes binding of libsrt 1.5: the calls Livebase needs, raising ``SrtError``.

libsrt is Haivision's SRT library, packaged by Debian as ``libsrt1.5-gnutls`` or
``libsrt1.5-openssl``. Every call here may block (connect, accept, receive, send, close), so
callers make them from a worker thread, never from the event loop. libsrt keeps its last error
per thread, which is why each wrapper reads it at once, in the thread that failed.

Constants are those of ``srtcore/srt.h`` and ``srtcore/access_control.h`` in libsrt 1.5.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, Final

from ingest.srt.streamid import STREAM_ID_MAX, AccessReject

__all__ = [
    "SRT_LIVE_MAX_PAYLOAD",
    "SRT_LIVE_PAYLOAD",
    "AccessReject",
    "LibSrt",
    "Opt",
    "RejectReason",
    "SrtError",
    "SrtUnavailable",
    "libsrt",
]

# The Debian packages' sonames first (no subprocess needed), then whatever ldconfig knows.
_SONAMES: Final = ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5")
_LIBRARY_NAMES: Final = ("srt-gnutls", "srt-openssl", "srt")
PACKAGES: Final = "libsrt1.5-gnutls (or libsrt1.5-openssl)"

SRT_LIVE_PAYLOAD: Final = 1316  # 7 MPEG-TS packets: SRT_LIVE_DEF_PLSIZE
SRT_LIVE_MAX_PAYLOAD: Final = 1456  # SRT_LIVE_MAX_PLSIZE: an MTU less the UDP and SRT headers
_SRTT_LIVE: Final = 0
_LOG_CRIT: Final = 2  # syslog levels; libsrt writes to stderr at LOG_ERR and above otherwise


class Opt(enum.IntEnum):
    """``SRT_SOCKOPT`` values used here."""

    SNDSYN = 1
    RCVSYN = 2
    SNDTIMEO = 13
    RCVTIMEO = 14
    LATENCY = 23
    PASSPHRASE = 26
    PBKEYLEN = 27
    CONNTIMEO = 36
    PEERLATENCY = 44
    STREAMID = 46
    TRANSTYPE = 50
    PEERIDLETIMEO = 55


class Errno(enum.IntEnum):
    """``SRT_ERRNO`` values this code tells apart."""

    ECONNSETUP = 1000
    ENOSERVER = 1001
    ECONNREJ = 1002
    ESECFAIL = 1004
    ECONNLOST = 2001
    ENOCONN = 2002
    EINVSOCK = 5004
    EASYNCRCV = 6002
    ETIMEOUT = 6003


class RejectReason(enum.IntEnum):
    """``SRT_REJECT_REASON``: why libsrt refused a connection."""

    UNKNOWN = 0
    SYSTEM = 1
    PEER = 2
    RESOURCE = 3
    ROGUE = 4
    BACKLOG = 5
    IPE = 6
    CLOSE = 7
    VERSION = 8
    RDVCOOKIE = 9
    BADSECRET = 10
    UNSECURE = 11
    MESSAGEAPI = 12
    CONGESTION = 13
    FILTER = 14
    GROUP = 15
    TIMEOUT = 16


class SrtUnavailable(RuntimeError):
    """libsrt is not installed (or not a version this binding knows)."""


class SrtError(OSError):
    """A failed libsrt call: ``code`` is the SRT_ERRNO, ``reject`` the reject reason of a
    refused connection (an ``RejectReason`` or an ``AccessReject`` value), else None."""

    def __init__(self, what: str, code: int, message: str, reject: int | None = None) -> None:
        super().__init__(f"{what}: {message}")
        self.code = code
        self.reject = reject

    @property
    def timed_out(self) -> bool:
        return self.code in (Errno.EASYNCRCV, Errno.ETIMEOUT)


# int srt_listen_callback_fn(void* opaq, SRTSOCKET ns, int hsversion,
#                            const struct sockaddr* peeraddr, const char* streamid)
_LISTEN_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)
ListenHandler = Callable[[int, str, str], int | None]
"""(new socket, peer, stream id) -> None to accept, or a reject code (AccessReject) to refuse."""


def _sockaddr(host: str, port: int) -> ctypes.Array[ctypes.c_char]:
    """A sockaddr_in or sockaddr_in6 for a literal address (resolve names before)."""
    address = ipaddress.ip_address(host)
    if address.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + address.packed
        return ctypes.create_string_buffer(raw + bytes(8), 16)
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + address.packed
    return ctypes.create_string_buffer(raw + struct.pack("=I", 0), 28)


def format_sockaddr(raw: bytes) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a sockaddr_in or sockaddr_in6."""
    if len(raw) < 8:
        return "?"
    (family,) = struct.unpack_from("=H", raw)
    (port,) = struct.unpack_from("!H", raw, 2)
    if family == socket.AF_INET:
        return f"{ipaddress.IPv4Address(raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        host = ipaddress.IPv6Address(raw[8:24])
        shown = host.ipv4_mapped or host
        return f"{shown}:{port}" if host.ipv4_mapped else f"[{shown}]:{port}"
    return "?"


class LibSrt:
    """The loaded library. Thread-safe as libsrt is; each call may block its thread."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
        p_int, p_size = ctypes.POINTER(c_int), ctypes.POINTER(ctypes.c_size_t)
        signatures: dict[str, tuple[Any, list[Any]]] = {
            "srt_startup": (c_int, []),
            "srt_cleanup": (c_int, []),
            "srt_create_socket": (c_int, []),
            "srt_setsockflag": (c_int, [c_int, c_int, c_void_p, c_int]),
            "srt_getsockflag": (c_int, [c_int, c_int, c_void_p, p_int]),
            "srt_bind_acquire": (c_int, [c_int, c_int]),
            "srt_listen": (c_int, [c_int, c_int]),
            "srt_accept": (c_int, [c_int, c_void_p, p_int]),
            "srt_listen_callback": (c_int, [c_int, _LISTEN_CALLBACK, c_void_p]),
            "srt_connect": (c_int, [c_int, c_void_p, c_int]),
            "srt_recvmsg": (c_int, [c_int, c_void_p, c_int]),
            "srt_sendmsg2": (c_int, [c_int, c_char_p, c_int, c_void_p]),
            "srt_close": (c_int, [c_int]),
            "srt_getlasterror": (c_int, [p_int]),
            "srt_getlasterror_str": (c_char_p, []),
            "srt_getrejectreason": (c_int, [c_int]),
            "srt_setrejectreason": (c_int, [c_int, c_int]),
            "srt_rejectreason_str": (c_char_p, [c_int]),
            "srt_setloglevel": (None, [c_int]),
            "srt_getversion": (ctypes.c_uint32, []),
            "srt_getsndbuffer": (c_int, [c_int, p_size, p_size]),
        }
        for name, (restype, argtypes) in signatures.items():
            try:
                function = getattr(lib, name)
            except AttributeError:
                raise SrtUnavailable(f"libsrt has no {name}; install {PACKAGES}") from None
            function.restype, function.argtypes = restype, argtypes
        self._handlers: dict[int, ListenHandler] = {}
        # One callback for the life of the process: libsrt may call it until a listener is
        # fully closed, and a collected ctypes callback would crash the service.
        self._callback = _LISTEN_CALLBACK(self._on_listen)
        lib.srt_setloglevel(_LOG_CRIT)

    @property
    def version(self) -> str:
        v = int(self._lib.srt_getversion())
        return f"{v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}"

    def _fail(self, what: str, sock: int | None = None) -> SrtError:
        code = int(self._lib.srt_getlasterror(None))
        message = (self._lib.srt_getlasterror_str() or b"").decode("utf-8", "replace")
        reject = None
        if sock is not None and code == Errno.ECONNREJ:
            reject = int(self._lib.srt_getrejectreason(sock))
            message = f"{message} ({self.reject_text(reject)})"
        return SrtError(what, code, message, reject)

    def reject_text(self, reason: int) -> str:
        if reason >= 1000:
            try:
                return f"refused by the listener: {AccessReject(reason).name} ({reason})"
            except ValueError:
                return f"refused by the listener with code {reason}"
        text = self._lib.srt_rejectreason_str(reason) or b"unknown reason"
        return str(text.decode("utf-8", "replace"))

    def _check(self, result: int, what: str, sock: int | None = None) -> int:
        if result < 0:
            raise self._fail(what, sock)
        return result

    def startup(self) -> None:
        """Start libsrt's threads; counted, so every ``startup`` needs its ``cleanup``."""
        self._check(int(self._lib.srt_startup()), "srt_startup")

    def cleanup(self) -> None:
        self._lib.srt_cleanup()

    # --- sockets ------------------------------------------------------------------------------

    def socket(self) -> int:
        """A new socket in live mode (the TS-over-UDP profile every encoder uses)."""
        sock = self._check(int(self._lib.srt_create_socket()), "srt_create_socket")
        try:
            self.set_int(sock, Opt.TRANSTYPE, _SRTT_LIVE)
        except SrtError:
            self._lib.srt_close(sock)
            raise
        return sock

    def set_int(self, sock: int, opt: Opt, value: int) -> None:
        raw = ctypes.c_int(value)
        result = self._lib.srt_setsockflag(sock, opt, ctypes.byref(raw), ctypes.sizeof(raw))
        self._check(int(result), f"setting {opt.name}")

    def get_int(self, sock: int, opt: Opt) -> int:
        raw = ctypes.c_int()
        length = ctypes.c_int(ctypes.sizeof(raw))
        result = self._lib.srt_getsockflag(sock, opt, ctypes.byref(raw), ctypes.byref(length))
        self._check(int(result), f"reading {opt.name}")
        return int(raw.value)

    def set_str(self, sock: int, opt: Opt, value: str) -> None:
        raw = value.encode("utf-8")
        buffer = ctypes.create_string_buffer(raw, len(raw) + 1)
        try:
            self._check(int(self._lib.srt_setsockflag(sock, opt, buffer, len(raw))), opt.name)
        finally:
            ctypes.memset(buffer, 0, len(buffer))  # no copy of a passphrase left in freed memory

    def get_str(self, sock: int, opt: Opt, size: int = STREAM_ID_MAX + 1) -> str:
        buffer = ctypes.create_string_buffer(size)
        length = ctypes.c_int(size)
        result = self._lib.srt_getsockflag(sock, opt, buffer, ctypes.byref(length))
        self._check(int(result), f"reading {opt.name}")
        return buffer.raw[: length.value].decode("utf-8", "replace")

    def bind_acquire(self, sock: int, udp_fd: int) -> None:
        """Bind to an already bound UDP socket, which libsrt then owns and closes with the
        SRT socket (hand it a ``dup`` to keep one of your own)."""
        self._check(int(self._lib.srt_bind_acquire(sock, udp_fd)), "srt_bind_acquire")

    def listen(self, sock: int, backlog: int = 16) -> None:
        self._check(int(self._lib.srt_listen(sock, backlog)), "srt_listen")

    def on_listen(self, sock: int, handler: ListenHandler) -> None:
        """Let ``handler`` accept or refuse each caller during the handshake. It runs on a
        libsrt thread that serves every connection of the port, so it must return at once."""
        self._handlers[sock] = handler
        result = self._lib.srt_listen_callback(sock, self._callback, ctypes.c_void_p(sock))
        self._check(int(result), "srt_listen_callback")

    def _on_listen(
        self, opaque: int | None, sock: int, _version: int, peer: int | None, stream_id: bytes
    ) -> int:
        # An exception must not escape into libsrt's thread: anything unexpected refuses.
        try:
            handler = self._handlers.get(opaque or 0)
            if handler is None:
                reject: int | None = AccessReject.FORBIDDEN
            else:
                raw = ctypes.string_at(peer, 28) if peer else b""
                text = (stream_id or b"").decode("utf-8", "replace")
                reject = handler(sock, format_sockaddr(raw), text)
            if reject is None:
                return 0
            self._lib.srt_setrejectreason(sock, int(reject))
        except Exception:
            logging.getLogger("livebase.ingest.srt").exception("screening an SRT caller failed")
            self._lib.srt_setrejectreason(sock, int(AccessReject.BAD_REQUEST))
        return -1

    def accept(self, sock: int) -> tuple[int, str]:
        """The next connected caller and its ``host:port``."""
        buffer = ctypes.create_string_buffer(128)
        length = ctypes.c_int(128)
        client = self._check(
            int(self._lib.srt_accept(sock, buffer, ctypes.byref(length))), "srt_accept"
        )
        return client, format_sockaddr(buffer.raw[: length.value])

    def connect(self, sock: int, host: str, port: int) -> None:
        """Connect to a literal address (resolve names first); a refusal carries ``reject``."""
        address = _sockaddr(host, port)
        self._check(int(self._lib.srt_connect(sock, address, len(address))), "connect", sock)

    def recv(self, sock: int, buffer: ctypes.Array[ctypes.c_char]) -> bytes:
        """One message, or b"" when ``RCVTIMEO`` passed without one."""
        size = int(self._lib.srt_recvmsg(sock, buffer, len(buffer)))
        if size < 0:
            error = self._fail("receive")
            if error.timed_out:
                return b""
            raise error
        return buffer.raw[:size]

    def send(self, sock: int, message: bytes) -> None:
        self._check(int(self._lib.srt_sendmsg2(sock, message, len(message), None)), "send")

    def unsent(self, sock: int) -> int:
        """Bytes in the send buffer not yet acknowledged by the peer."""
        blocks, size = ctypes.c_size_t(), ctypes.c_size_t()
        result = self._lib.srt_getsndbuffer(sock, ctypes.byref(blocks), ctypes.byref(size))
        self._check(int(result), "srt_getsndbuffer")
        return int(size.value)

    def close(self, sock: int) -> None:
        self._handlers.pop(sock, None)
        self._lib.srt_close(sock)


_loaded: LibSrt | None = None
_lock = threading.Lock()


def _open() -> ctypes.CDLL:
    candidates = list(_SONAMES)
    candidates += [n for n in map(ctypes.util.find_library, _LIBRARY_NAMES) if n]
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise SrtUnavailable(
        f"libsrt 1.5 is not installed; install the Debian package {PACKAGES} "
        "(scripts/setup.sh does it when run as root)"
    )


def libsrt() -> LibSrt:
    """The process's libsrt, loaded on first use; ``SrtUnavailable`` names the package."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = LibSrt(_open())
        return _loaded
