"""Container health: ComfyUI answers GET /system_stats on its port (HEALTHCHECK, core image).

Run by the system interpreter with the standard library only, so it needs neither curl nor
the virtualenv. It asks the loopback address unless COMFYUI_LISTEN names one specific
address ComfyUI listens on instead. Exit 0 healthy, 1 not (Docker's contract).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

ANY_ADDRESS = {"", "0.0.0.0", "::", "0.0.0.0,::"}  # noqa: S104 (addresses ComfyUI binds)


def url() -> str:
    listen = os.environ.get("COMFYUI_LISTEN", "0.0.0.0")  # noqa: S104 (start.sh's default)
    host = "127.0.0.1" if listen in ANY_ADDRESS else listen.split(",")[0]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('COMFYUI_PORT', '8188')}/system_stats"


def main() -> int:
    try:
        with urllib.request.urlopen(url(), timeout=8) as response:  # noqa: S310 (http only)
            stats = json.load(response)
    except (OSError, ValueError) as error:
        print(f"healthcheck: {url()}: {error}", file=sys.stderr)
        return 1
    if "system" not in stats:
        print(f"healthcheck: {url()}: no 'system' in the answer", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
