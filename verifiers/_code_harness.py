"""Runs INSIDE the sandbox (never imported by rewardkit): load solution.py, run one test, report.

Shipped as a file next to the program. Reads a JSON request from stdin (which also keeps the
program from reading it later): `nonce`, `mode` ("assert" or "call"), and `code`/`entry_point`
(assert) or `name`/`args` (call). Writes the program's own output, then a last line: the nonce
followed by a JSON report. A program that ends the interpreter early (os._exit, closing stdout)
leaves no report, which the caller counts against it; without the nonce it cannot forge one.

Who is at fault when a test fails is read from the traceback: if the exception came out of a
call to the candidate (HumanEval's `check(candidate)`), or, for bare asserts, passed through
any frame that is not test code, the program raised (a bug); otherwise the test's own assertion
(or its use of a wrong return value) failed (a wrong answer). The candidate also has to return
plain values (an object with its own `__eq__` could pass any `==` assert), and builtins the
program patched are restored before the test reads them.
Kept compatible with Python 3.8+: sandbox images bring their own interpreter.
"""

import builtins
import json
import linecache
import os
import sys
import traceback

_write = os.write
_dumps = json.dumps
_loads = json.loads
_exit = os._exit
HARNESS = __file__ if "__file__" in globals() else "harness.py"
TEST_FILE = "<rewardkit-test>"
PLAIN = (int, float, str, bool, type(None), complex, bytes)
CONTAINERS = (list, tuple, dict, set, frozenset)


def describe(exc):
    try:
        lines = traceback.format_exception_only(type(exc), exc)
        text = lines[-1].strip() if lines else type(exc).__name__
    except BaseException:  # a hostile __str__
        text = type(exc).__name__
    return text[:500]


def program_at_fault(exc, through_candidate):
    """With `check(candidate)`, the program is at fault when the exception came out of a call to
    the candidate (a helper of the prompt that the test calls with a wrong answer is not the
    program raising); with bare asserts, when any frame on the way is not test code."""
    if isinstance(exc, NotPlainValue):
        return False
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if through_candidate:
            if code is CANDIDATE_CODE:
                return True
        elif code.co_filename != TEST_FILE and os.path.basename(code.co_filename) != os.path.basename(HARNESS):
            return True
        tb = tb.tb_next
    return False


def test_line(exc):
    """The test source line that was running when the test failed."""
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEST_FILE:
            line = linecache.getline(TEST_FILE, tb.tb_lineno).strip()
        tb = tb.tb_next
    return line[:300]


def not_plain(value, budget=1000000):
    """Name of the first value that is not a plain builtin value (an object with its own __eq__
    could pass any `==` assert), or None."""
    stack = [value]
    while stack and budget > 0:
        budget -= 1
        item = stack.pop()
        kind = type(item)
        if kind in PLAIN:
            continue
        if kind not in CONTAINERS:
            return kind.__name__
        if kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            stack.extend(item)
    return None


class NotPlainValue(AssertionError):
    pass


def guarded(fn, pristine):
    def candidate(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        finally:
            restore_builtins(pristine)
        bad = not_plain(result)
        if bad is not None:
            raise NotPlainValue(f"candidate returned a {bad} object; only plain values count")
        return result

    return candidate


_BUILTINS = builtins.__dict__
_list, _len = list, len


CANDIDATE_CODE = guarded(None, None).__code__


def restore_builtins(pristine):
    """Undo a program's edits to builtins (say, `abs = lambda x: 0`) before the test reads them.
    Compares by identity: a planted object's own __eq__ is never called."""
    changed = _len(_BUILTINS) != _len(pristine)
    if not changed:
        for key in _list(_BUILTINS):
            if key not in pristine or _BUILTINS[key] is not pristine[key]:
                changed = True
                break
    if changed:
        _BUILTINS.clear()
        _BUILTINS.update(pristine)


def load(source, pristine):
    ns = {"__name__": "solution", "__builtins__": builtins}
    exec(compile(source, "solution.py", "exec", dont_inherit=True), ns)
    restore_builtins(pristine)
    return ns


def resolve(ns, name):
    if name in ns and callable(ns[name]):
        return ns[name]
    cls = ns.get("Solution")
    if isinstance(cls, type) and callable(getattr(cls, name, None)):
        return getattr(cls(), name)
    raise NameError(f"the program defines no function {name!r}")


def run(request, source, pristine):
    try:
        ns = load(source, pristine)
    except BaseException as exc:
        return {"ok": False, "fault": "program", "stage": "load", "error": describe(exc)}
    if request["mode"] == "call":
        try:
            fn = resolve(ns, request["name"])
            result = fn(*request["args"])
        except BaseException as exc:
            return {"ok": False, "fault": "program", "stage": "call", "error": describe(exc)}
        finally:
            restore_builtins(pristine)
        return {"ok": True, "result": encode(result)}
    code = request["code"]
    linecache.cache[TEST_FILE] = (len(code), None, code.splitlines(True), TEST_FILE)
    try:
        compiled = compile(code, TEST_FILE, "exec", dont_inherit=True)
    except BaseException as exc:
        return {"ok": False, "fault": "test", "stage": "test-compile", "error": describe(exc)}
    entry = request.get("entry_point") or ""
    try:
        exec(compiled, ns)
        if entry:
            if entry not in ns or not callable(ns[entry]):
                raise_missing(entry)
            check = ns.get("check")
            if not callable(check):
                return {"ok": False, "fault": "test", "stage": "test", "error": "the test defines no check()"}
            check(guarded(ns[entry], pristine))
    except MissingEntry as exc:
        return {"ok": False, "fault": "program", "stage": "load", "error": str(exc)}
    except BaseException as exc:
        fault = "program" if program_at_fault(exc, bool(entry)) else "test"
        return {"ok": False, "fault": fault, "stage": "test", "error": describe(exc), "line": test_line(exc)}
    return {"ok": True}


class MissingEntry(Exception):
    pass


def raise_missing(entry):
    raise MissingEntry(f"the program defines no function {entry!r}")


def encode(value):
    try:
        return {"json": _loads(_dumps(value))}
    except BaseException:
        pass
    try:
        return {"repr": repr(value)[:300]}
    except BaseException:
        return {"repr": f"<unprintable {type(value).__name__}>"}


def main():
    request = json.loads(sys.stdin.read())
    nonce = request.pop("nonce")
    with open("solution.py", encoding="utf-8") as fh:
        source = fh.read()
    pristine = dict(_BUILTINS)
    report = run(request, source, pristine)
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    try:
        line = _dumps(report)
    except BaseException:
        line = _dumps({"ok": False, "fault": "program", "stage": "report", "error": "unreportable result"})
    _write(1, ("\n" + nonce + line + "\n").encode("utf-8", "replace"))
    if not report.get("ok") and report.get("fault") == "program":
        _write(2, ("rewardkit harness: program raised " + str(report.get("error")) + "\n").encode(
            "utf-8", "replace"))
        _exit(1)
    _exit(0)


if __name__ == "__main__":
    main()
