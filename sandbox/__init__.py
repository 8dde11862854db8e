"""Sandboxed execution of untrusted programs (model outputs). Nothing here runs them in-process."""

from rewardkit.sandbox.base import Limits, Program, RunResult, Sandbox, Status
from rewardkit.sandbox.select import SandboxUnavailable, available_backends, select_backend

__all__ = [
    "Limits",
    "Program",
    "RunResult",
    "Sandbox",
    "SandboxUnavailable",
    "Status",
    "available_backends",
    "select_backend",
]
