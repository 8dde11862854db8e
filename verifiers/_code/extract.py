"""Find the program in a completion and reject, without running it, what cannot compile.

Models wrap code in Markdown fences and surround it with prose; the last fenced block of the
task's language is the answer by convention (an earlier block is usually a draft or an example).
Without any fence the whole text is the program. Compiling is done in-process: `compile()` parses
and emits bytecode but executes nothing, and with the size cap it is cheap and bounded even for
hostile input (CPython's parser and compiler raise on deep nesting instead of crashing).
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGE_TAGS: dict[str, frozenset[str]] = {
    "python": frozenset({"python", "py", "python3", "py3", "python3.x", "pycon"}),
}


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    closed: bool


def fenced_blocks(text: str) -> list[Block]:
    """Markdown fenced blocks (``` or ~~~, three or more), in order; a trailing unclosed block
    (a generation cut at the token limit) is kept with `closed=False`. Linear in the text."""
    blocks: list[Block] = []
    fence = ""  # the opening fence while inside a block
    lang = ""
    body: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if not fence:
            if stripped.startswith(("```", "~~~")):
                char = stripped[0]
                run = len(stripped) - len(stripped.lstrip(char))
                info = stripped[run:].strip()
                if char == "`" and "`" in info:
                    continue  # inline code such as ```x``` on one line, not a fence
                fence, lang, body = char * run, (info.split() or [""])[0].lower(), []
            continue
        if stripped.startswith(fence) and not stripped.lstrip(fence[0]):
            blocks.append(Block(lang, "\n".join(body) + "\n", True))
            fence = ""
            continue
        body.append(line)
    if fence:
        blocks.append(Block(lang, "\n".join(body) + "\n", False))
    return blocks


def extract_program(text: str, language: str = "python") -> str:
    """The last fenced block tagged with the language, else the last untagged block, else the
    whole text. An unclosed block counts only when nothing closed qualifies."""
    tags = LANGUAGE_TAGS.get(language, frozenset({language}))
    blocks = fenced_blocks(text)
    for wanted in (lambda b: b.lang in tags, lambda b: b.lang == ""):
        chosen = [b for b in blocks if wanted(b)]
        closed = [b for b in chosen if b.closed]
        if closed:
            return closed[-1].text
        if chosen:
            return chosen[-1].text
    return text


def compile_problem(source: str, max_chars: int, filename: str = "solution.py") -> str | None:
    """Why `source` cannot be a Python program (too long, not encodable, syntax error), or None.

    Nothing is executed. Every failure mode of the compiler on hostile text (nesting limits,
    null bytes, lone surrogates, huge literals) comes back as a reason, never as an exception.
    """
    if len(source) > max_chars:
        return f"program is {len(source):,} characters, over the {max_chars:,} cap (not run)"
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"program is not valid UTF-8 text (lone surrogate at character {exc.start}; not run)"
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:  # includes IndentationError and TabError
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"does not compile: {type(exc).__name__}: {exc.msg}{where}"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        detail = str(exc) or "nesting too deep for the compiler"
        return f"does not compile: {type(exc).__name__}: {detail[:200]}"
    return None
