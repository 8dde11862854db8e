"""Small text helpers shared by the format, length, math and tool-call verifiers."""

from __future__ import annotations

from rewardkit.verifier import Sample, completion_text


def sample_text(sample: Sample) -> str:
    """The completion as a `str`, whatever the data holds.

    Raw bytes (e.g. invalid UTF-8 read from a file) are decoded with replacement characters
    rather than rendered as a `b'...'` repr, so length and shape checks see the real text.
    """
    completion = sample.get("completion", "")
    if completion is None:
        return ""
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion).decode("utf-8", errors="replace")
    text = completion_text(sample)
    return text if isinstance(text, str) else str(text)


def clip(text: str, width: int = 40) -> str:
    """A short, one-line, printable excerpt of `text` for a reason string."""
    flat = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    flat = flat.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def one_line(message: str, width: int = 240) -> str:
    """Make any message (an exception text, say) fit on one line of bounded length."""
    return clip(" ".join(message.split()), width)


def strip_thinking(text: str, tag: str = "think") -> str:
    """The text without its `<think>...</think>` blocks (an unclosed one runs to the end).

    An answer in the reasoning is not the answer: without this, `<think>\\boxed{42}</think>` and
    a different final answer scored as 42 (found by `rewardkit audit`, probe think_vs_answer).
    Linear time: one scan with `str.find`."""
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    if open_tag not in text:
        return text
    out, i = [], 0
    while True:
        start = text.find(open_tag, i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:
            break
        i = end + len(close_tag)
    return "".join(out)
