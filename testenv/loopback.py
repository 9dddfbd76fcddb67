"""Extra IPv4 addresses on the loopback interface (root needed), for processes that must
answer at an address the API server accepts in an EndpointSlice (it refuses 127.0.0.0/8)."""

from __future__ import annotations

import shutil
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"
# What `ip addr add` says when the address is there already: older iproute2 relays the kernel's
# EEXIST, newer iproute2 (Debian 12's and later) words it itself.
_ALREADY_THERE = ("File exists", "Address already assigned")


def add_loopback_address(ip: str) -> None:
    """Put `ip` on lo as a /32; one that is there already (left by a killed run) is kept."""
    done = subprocess.run(
        [IP, "addr", "add", f"{ip}/32", "dev", "lo"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 and not any(text in done.stderr for text in _ALREADY_THERE):
        raise ValueError(f"cannot put {ip} on lo (root needed): {done.stderr.strip()}")


def remove_loopback_address(ip: str) -> None:
    subprocess.run([IP, "addr", "del", f"{ip}/32", "dev", "lo"], capture_output=True, check=False)
