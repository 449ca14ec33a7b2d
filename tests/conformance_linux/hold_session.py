"""Child process of the kill-safety tests: open a session, leave a blocking accept and a
shell command (``sleep 60``) running inside it, report, then wait to be killed.

Prints one JSON line: {"pid", "inode", "tun_fd"}.  Exits 0 after a clean close when
interrupted with SIGINT (Ctrl-C)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from conformance.target import CaseConfig, Setting
from conformance.targets.linux import LinuxTarget


def main() -> int:
    try:
        with LinuxTarget().open(CaseConfig("hold")) as s:
            fd = s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)).result.ret  # type: ignore[union-attr]
            s.syscall("bind", (fd, ("192.168.0.1", 8080)))
            s.syscall("listen", (fd, 8))
            accept = s.syscall("accept", (fd,))
            assert not accept.done
            threading.Thread(target=s.apply, args=(Setting("shell", "sleep 60"),), daemon=True).start()
            print(json.dumps({"pid": os.getpid(), "inode": s.netns.inode, "tun_fd": s._tun_fd}), flush=True)
            time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
