"""Small text helpers shared by the format, length and math verifiers."""

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
