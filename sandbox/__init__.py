"""Sandboxed execution of untrusted programs (model outputs). Nothing here runs them in-process."""

from rewardkit.sandbox.base import Limits, Program, RunResult, Sandbox, Status, get_sandbox

__all__ = ["Limits", "Program", "RunResult", "Sandbox", "Status", "get_sandbox"]
