"""nginx with Debian's nginx-rtmp module (``apt-get install nginx libnginx-mod-rtmp``) as
the reference relay: ``push`` to each destination and ``hls on``, configured in a temp dir.

One master and one worker (``worker_processes 1``): nginx-rtmp's ``live`` needs a stream's
publisher and players in one worker (``rtmp_auto_push`` is its multi-worker workaround), and
one event-loop process is also what Livebase is. The master only supervises.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODULE", "nginx_cmd", "write_conf"]

NGINX = "/usr/sbin/nginx"
MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

CONF = """\
load_module {module};
daemon off;
master_process on;
worker_processes 1;
user root root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            push rtmp://127.0.0.1:{d1}/live;
            push rtmp://127.0.0.1:{d2}/live;
            hls on;
            hls_path {hls};
            hls_fragment 2s;
            # The whole stream stays listed and on disk, so its frames can be counted.
            hls_playlist_length 300s;
            hls_cleanup off;
        }}
    }}
}}
"""


def write_conf(workdir: Path, port: int, dests: tuple[int, int], hls: Path) -> Path:
    hls.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    d1, d2 = dests
    conf.write_text(
        CONF.format(module=MODULE, dir=workdir, port=port, d1=d1, d2=d2, hls=hls),
        encoding="utf-8",
    )
    return conf


def nginx_cmd(conf: Path, workdir: Path) -> list[str]:
    # -e: the error log before the configuration is read (else /var/log/nginx/error.log).
    return [NGINX, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
