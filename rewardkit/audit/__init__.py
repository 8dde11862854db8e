"""`rewardkit audit`: attack a spec's own rewards before training.

A library of probes (`generic`, `math`, `tool_calls`, `code`; plugins through the entry-point group
`rewardkit.probes`) turns each sample's reference fields into adversarial completions; `run_audit`
scores them with the spec and reports every probe that earns a reward it should not, unless the
spec accepts it (`audit: accept:` with a reason).
"""

from rewardkit.audit.probes import ENTRY_POINT_GROUP, Probe, ProbeInput, all_probes
from rewardkit.audit.run import DEFAULT_RULES, RULES, AuditReport, Finding, run_audit

__all__ = ["DEFAULT_RULES", "ENTRY_POINT_GROUP", "RULES", "AuditReport", "Finding", "Probe", "ProbeInput",
           "all_probes", "run_audit"]
