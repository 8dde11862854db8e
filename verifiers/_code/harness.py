"""Runs INSIDE the sandbox (never imported by rewardkit): run one test of solution.py, report.

Shipped as a file next to the program, run as `python3 harness.py`, in two processes:

- the judge (this process) reads the request from stdin (`nonce`, `mode` "assert" or "call",
  `code`/`entry_point` or `name`/`args`), runs the test code, and writes the report: a last
  line of stdout, the nonce followed by JSON;
- the program process, forked before the request is read, with stdin and stdout on /dev/null,
  loads solution.py and answers calls over a pipe: the test's `candidate(...)` and the
  program's other functions are stubs that send the arguments and get back the result.

So the program shares no memory with the test: patching the harness, walking up frames or
planting an object whose `__eq__` always says yes cannot make a test pass, and it holds no
descriptor that leads to the judge's stdout, where the report goes. The judge closes every
inherited descriptor but 0-2 before the fork, makes itself non-dumpable so the program cannot
ptrace it or open its descriptors through /proc, and takes the workdir off `sys.path` so a
file the program writes (`random.py`) is never imported by the test. Values cross the pipe as
tagged JSON of plain builtin values only; anything else the program returns fails the test.

Who is at fault when a test fails: if the exception came out of a call into the program (it
raised, exited or died), the program (a bug); otherwise the test's own check (a wrong answer).
With `check(candidate)`, only calls of the entry point count: a prompt's helper that the test
calls with the candidate's wrong answer raising is the test failing.
Kept compatible with Python 3.8+: sandbox images bring their own interpreter.
"""

import builtins
import json
import linecache
import os
import signal
import sys
import traceback

HARNESS = os.path.abspath(__file__ if "__file__" in globals() else "harness.py")
TEST_FILE = "<rewardkit-test>"
SETUP_FILE = "<rewardkit-test-setup>"
MAX_DEPTH = 200
SCALARS = (bool, int, float, str, type(None))


class Unencodable(Exception):
    pass


def encode(value, depth=0):
    """Plain builtin values as JSON, containers tagged so tuples, sets and dict keys survive."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deeply")
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        items = [encode(v, depth + 1) for v in value]
        if kind is set or kind is frozenset:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return {"$": kind.__name__, "v": items}
    if kind is dict:
        return {"$": "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is bytes:
        return {"$": "bytes", "v": value.decode("latin-1")}
    if kind is complex:
        return {"$": "complex", "v": [value.real, value.imag]}
    raise Unencodable(kind.__name__)


CONTAINERS = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}


def decode(data, depth=0):
    """The inverse of `encode`; raises ValueError on anything else (the program's messages are
    data, never code: no pickle, no eval)."""
    if type(data) in SCALARS:
        return data
    if depth > MAX_DEPTH + 1 or type(data) is not dict or type(data.get("v")) not in (list, str):
        raise ValueError("not an encoded value")
    tag, items = data.get("$"), data["v"]
    if tag in CONTAINERS and type(items) is list:
        return CONTAINERS[tag](decode(v, depth + 1) for v in items)
    if tag == "dict" and type(items) is list:
        out = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("bad dict item")
            out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        return out
    if tag == "bytes" and type(items) is str:
        return items.encode("latin-1")
    if tag == "complex" and type(items) is list and len(items) == 2:
        return complex(float(items[0]), float(items[1]))
    raise ValueError("unknown tag")


def describe(exc):
    try:
        lines = traceback.format_exception_only(type(exc), exc)
        text = lines[-1].strip() if lines else type(exc).__name__
    except BaseException:  # a hostile __str__
        try:
            text = type(exc).__name__
        except BaseException:
            text = "an exception"
    return text[:500]


# --- the program process --------------------------------------------------------------------------

def resolve(ns, name):
    if name in ns and callable(ns[name]):
        return ns[name]
    cls = ns.get("Solution")
    if isinstance(cls, type) and callable(getattr(cls, name, None)):
        return getattr(cls(), name)
    raise NameError(f"the program defines no function {name!r}")


def serve(rfd, wfd):
    """Load solution.py, say what it defines, then answer calls until the judge hangs up."""
    reader = os.fdopen(rfd, "r", encoding="utf-8")
    writer = os.fdopen(wfd, "w", encoding="utf-8")
    dumps = json.dumps

    def send(message):
        writer.write(dumps(message) + "\n")
        writer.flush()

    ns = {"__name__": "solution", "__builtins__": builtins}
    try:
        first = json.loads(reader.readline() or "{}")
        setup, wanted = first.get("setup") or "", set(first.get("wanted") or ())
        if setup:  # MBPP's test_setup_code: the program may rely on its imports
            exec(compile(setup, SETUP_FILE, "exec", dont_inherit=True), ns)
        with open("solution.py", encoding="utf-8") as fh:
            source = fh.read()
        exec(compile(source, "solution.py", "exec", dont_inherit=True), ns)
    except BaseException as exc:
        send({"loaded": False, "error": describe(exc)})
        return
    callables, values = [], {}
    for key, value in list(ns.items()):
        if not isinstance(key, str) or key.startswith("__"):
            continue
        if callable(value):
            callables.append(key)
            continue
        if key not in wanted:  # only constants the test names cross (a big table costs time)
            continue
        try:
            values[key] = encode(value)
        except BaseException:
            pass
    send({"loaded": True, "callables": callables, "values": values})
    for line in reader:
        try:
            call = json.loads(line)
            args = [decode(a) for a in call["args"]]
            kwargs = dict((str(k), decode(v)) for k, v in call.get("kwargs", {}).items())
        except BaseException as exc:
            send({"raised": "the harness could not read a call: " + describe(exc)})
            continue
        try:
            result = resolve(ns, call["name"])(*args, **kwargs)
        except BaseException as exc:
            send({"raised": describe(exc)})
            continue
        try:
            send({"value": encode(result)})
        except BaseException:
            try:
                shown = repr(result)[:300]
            except BaseException:
                shown = ""
            send({"not_plain": type(result).__name__, "repr": shown})


def start_program():
    """Fork the program process; returns (pid, to_program, from_program).

    A fork, not a fresh interpreter, to keep a test cheap. In a fork-server sandbox this
    process inherited the runner's memory (the request included), so the program may know the
    nonce; that alone forges nothing: it holds no descriptor that leads to the judge's stdout,
    and the judge's own output escapes every newline a value or message could carry."""
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_w)
            os.close(from_r)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.close(null)
            sys.stdin = open(os.devnull)
            sys.stdout = open(os.devnull, "w")
            set_dumpable(True)  # its own descendants stay visible to the sandbox's sweep
            serve(to_r, from_w)
        finally:
            os._exit(0)
    os.close(to_r)
    os.close(from_w)
    return pid, os.fdopen(to_w, "w", encoding="utf-8"), os.fdopen(from_r, "r", encoding="utf-8")


def close_other_fds():
    try:
        top = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        top = 65536
    os.closerange(3, max(top, 256))


def set_dumpable(flag):
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 1 if flag else 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except BaseException:
        pass


# --- the judge ------------------------------------------------------------------------------------

class ProgramRaised(Exception):
    """The program raised (or exited, or died) during a call: its fault."""


class HelperRaised(Exception):
    """A function of the program other than the entry point, called by a `check(candidate)`
    test (HumanEval's `poly`, given in the prompt), raised: the test fed it a wrong answer."""


class NotPlainValue(AssertionError):
    """The program returned something that is not a plain value: a wrong answer."""


class ProgramEnded(Exception):
    def __init__(self, text, signal_name=""):
        Exception.__init__(self, text)
        self.signal_name = signal_name


class Program:
    def __init__(self):
        self.pid, self.writer, self.reader = start_program()

    def send_setup(self, setup, wanted):
        try:
            self.writer.write(json.dumps({"setup": setup, "wanted": wanted}) + "\n")
            self.writer.flush()
        except OSError:
            pass  # it is gone already: the load step says how it ended

    def receive(self):
        line = self.reader.readline()
        try:
            message = json.loads(line) if line else None
        except ValueError:
            message = None
        if type(message) is not dict:
            raise self.ended("wrote something that is not a reply to its channel to the test" if line else "")
        return message

    def call(self, name, args, kwargs):
        reply = self.ask(name, args, kwargs)
        if "not_plain" in reply:
            kind = str(reply["not_plain"])[:60]
            raise NotPlainValue(f"the program returned a {kind} object; only plain values count")
        return self.value(reply)

    def ask(self, name, args, kwargs):
        """Send one call; the reply, or ProgramRaised / ProgramEnded."""
        try:
            wire = {"name": name, "args": [encode(a) for a in args],
                    "kwargs": dict((k, encode(v)) for k, v in (kwargs or {}).items())}
        except Unencodable as exc:
            raise TypeError(f"the test passed a value the program process cannot receive: {exc}") from None
        try:
            self.writer.write(json.dumps(wire) + "\n")
            self.writer.flush()
        except OSError:
            raise self.ended() from None
        reply = self.receive()
        if "raised" in reply:
            raise ProgramRaised(str(reply["raised"]))
        return reply

    def value(self, reply):
        try:
            return decode(reply.get("value"))
        except (ValueError, TypeError, RecursionError):
            raise self.ended("sent an unreadable value") from None

    def ended(self, what=""):
        """The program process stopped answering: how it ended."""
        import time

        status = None
        for _ in range(50):
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.002)
        else:
            self.kill()
            return ProgramEnded("the program " + (what or "closed its channel to the test"))
        self.pid = 0
        if os.WIFSIGNALED(status):
            try:
                name = signal.Signals(os.WTERMSIG(status)).name
            except ValueError:
                name = f"signal {os.WTERMSIG(status)}"
            return ProgramEnded(f"the program was killed by {name}", name)
        return ProgramEnded(f"the program ended the interpreter (exit code {os.WEXITSTATUS(status)})")

    def stub(self, name, blame=True):
        def call_program(*args, **kwargs):
            try:
                return self.call(name, args, kwargs)
            except ProgramRaised as exc:
                if blame:
                    raise
                raise HelperRaised(str(exc)) from None

        call_program.__name__ = name
        return call_program

    def kill(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.pid = 0


def failure(exc):
    """A report for an exception that ended the test."""
    if isinstance(exc, ProgramEnded):
        report = {"ok": False, "fault": "program", "stage": "test", "error": str(exc)}
        if exc.signal_name:
            report["signal"] = exc.signal_name
        return report
    fault = "program" if isinstance(exc, ProgramRaised) else "test"
    error = str(exc) if isinstance(exc, (ProgramRaised, HelperRaised)) else describe(exc)
    return {"ok": False, "fault": fault, "stage": "test", "error": error, "line": test_line(exc)}


def test_line(exc):
    """The test source line that was running when the test failed."""
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEST_FILE:
            line = linecache.getline(TEST_FILE, tb.tb_lineno).strip()
        tb = tb.tb_next
    return line[:300]


def judge(program, request):
    setup = str(request.get("setup") or "")
    compiled = None
    if request["mode"] != "call":
        code = request["code"]
        linecache.cache[TEST_FILE] = (len(code), None, code.splitlines(True), TEST_FILE)
        try:
            compiled = compile(code, TEST_FILE, "exec", dont_inherit=True)
        except BaseException as exc:
            return {"ok": False, "fault": "test", "stage": "test-compile", "error": describe(exc)}
    program.send_setup(setup, sorted(names_used(compiled)) if compiled is not None else [])
    try:
        loaded = program.receive()
    except ProgramEnded as exc:
        return {"ok": False, "fault": "program", "stage": "load", "error": str(exc)}
    if not loaded.get("loaded"):
        return {"ok": False, "fault": "program", "stage": "load", "error": str(loaded.get("error"))[:500]}
    callables = [str(n) for n in loaded.get("callables") or []]
    if compiled is None:
        try:
            reply = program.ask(request["name"], request["args"], None)
            if "not_plain" in reply:
                return {"ok": True, "result": {"repr": str(reply.get("repr") or reply["not_plain"])[:300]}}
            return {"ok": True, "result": as_json(program.value(reply))}
        except (ProgramRaised, ProgramEnded) as exc:
            return failure(exc)
    ns = {"__name__": "__rewardkit_test__", "__builtins__": builtins}
    if setup:
        try:
            exec(compile(setup, SETUP_FILE, "exec", dont_inherit=True), ns)
        except BaseException as exc:
            return {"ok": False, "fault": "test", "stage": "test-compile", "error": "setup: " + describe(exc)}
    for name, value in (loaded.get("values") or {}).items():
        try:
            ns[str(name)] = decode(value)
        except (ValueError, TypeError, RecursionError):
            pass
    entry = request.get("entry_point") or ""
    for name in callables:
        ns[name] = program.stub(name, blame=not entry or name == entry)
    if entry and entry not in callables:
        return {"ok": False, "fault": "program", "stage": "load",
                "error": f"the program defines no function {entry!r}"}
    try:
        exec(compiled, ns)
        if entry:
            check = ns.get("check")
            if not callable(check):
                return {"ok": False, "fault": "test", "stage": "test", "error": "the test defines no check()"}
            check(program.stub(entry))
    except BaseException as exc:
        return failure(exc)
    return {"ok": True}


def names_used(code):
    """Every global name the test's code objects refer to."""
    names, stack = set(), [code]
    while stack:
        item = stack.pop()
        names.update(item.co_names)
        stack.extend(c for c in item.co_consts if hasattr(c, "co_names"))
    return names


def as_json(value):
    try:
        return {"json": json.loads(json.dumps(value))}
    except BaseException:
        return {"repr": repr(value)[:300]}


def main():
    here = os.path.dirname(HARNESS)
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) not in (here, os.getcwd())]
    close_other_fds()  # no inherited handle to stdout (or the request) may reach the program
    set_dumpable(False)  # before the fork: the program can never read this process's memory
    try:
        program = Program()
    except OSError as exc:  # e.g. the process limit: the sandbox's problem, not the program's
        program, report = None, {"ok": False, "fault": "harness", "stage": "start",
                                 "error": "cannot start the program process: " + describe(exc)}
    request = json.loads(sys.stdin.read())
    nonce = request.pop("nonce")
    if program is not None:
        try:
            report = judge(program, request)
        except BaseException as exc:
            report = {"ok": False, "fault": "harness", "stage": "harness", "error": describe(exc)}
        program.kill()
    try:
        line = json.dumps(report)
    except BaseException:
        line = json.dumps({"ok": False, "fault": "harness", "stage": "report", "error": "unreportable"})
    write_all(1, ("\n" + nonce + line + "\n").encode("utf-8", "replace"))
    if not report.get("ok") and report.get("fault") == "program":
        write_all(2, ("rewardkit harness: program raised " + str(report.get("error")) + "\n").encode(
            "utf-8", "replace"))
        os._exit(1)
    os._exit(0)


def write_all(fd, data):
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


if __name__ == "__main__":
    main()
