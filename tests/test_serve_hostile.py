"""Hostile and broken requests against a real server with a token: each gets the right status and
a one-line reason naming the field, the token never shows, and the next request is still served."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from rk_serve import SPECS, Server

TOKEN = "s3cret-token-never-echoed"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"samples": [{"completion": "<think>x</think><answer>Paris</answer>", "prompt": "p",
                     "fields": {"answer": "Paris"}}]}


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    with Server(SPECS / "quickstart.yaml", "--token-env", "RK_TEST_TOKEN", "--max-body-bytes", "1000000",
                "--max-samples", "16", "--max-array-length", "1000", env={"RK_TEST_TOKEN": TOKEN}) as server:
        yield server
    assert TOKEN not in "".join(server.lines)


def _raw(srv: Server, body: bytes, headers: dict[str, str] | None = None, path: str = "/score") -> tuple[int, dict]:
    answer = srv.http.post(path, content=body, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
    return answer.status_code, answer.json()


def _still_serves(srv: Server) -> None:
    answer = srv.post("/score", GOOD, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["total"] == 3.0


CASES = [
    ("malformed JSON", b'{"samples": [', 400, "malformed JSON", None),
    ("a string where a list is", b'{"samples": "abc"}', 422, "samples: ", "samples"),
    ("a number as completion", b'{"samples": [{"completion": 3}]}', 422, "valid string", "samples[0].completion"),
    ("a missing completion", b'{"samples": [{"prompt": "p"}]}', 422, "missing required field",
     "samples[0].completion"),
    ("a missing samples key", b"{}", 422, "missing required field", "samples"),
    ("an unknown key", b'{"samples": [{"completion": "x", "answer": 1}]}', 422, "unknown field 'answer'",
     "samples[0].answer"),
    ("a batch over --max-samples", json.dumps({"samples": [{"completion": "x"}] * 17}).encode(), 422,
     "17 samples, over the cap of 16", "samples"),
    ("an array over --max-array-length", json.dumps({"samples": [{"completion": "x", "fields": {
        "answer": list(range(1001))}}]}).encode(), 422, "array of 1001 items", "samples[0].fields.answer"),
    ("JSON nested 10,000 deep", b'{"samples": [{"completion": "x", "fields": {"a": ' + b"[" * 10_000
     + b"]" * 10_000 + b"}}]}", 422, "nested deeper than 64", None),
    ("invalid UTF-8", b'{"samples": [{"completion": "\xff\xfe"}]}', 400, "not valid UTF-8 (byte 29", None),
    ("OpenRLHF: fewer prompts than queries", b'{"query": ["a", "b"], "prompts": ["a"]}', 422,
     "1 prompts for 2 queries", "prompts"),
]


@pytest.mark.parametrize(("what", "body", "status", "says", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_status_and_field_then_next_is_served(srv: Server, what: str, body: bytes, status: int,
                                                               says: str, field: str | None) -> None:
    path = "/get_reward" if what.startswith("OpenRLHF") else "/score"
    code, answer = _raw(srv, body, path=path)
    assert code == status, answer
    assert says in answer["error"] and "\n" not in answer["error"]
    if field is not None:
        assert answer["field"] == field and answer["error"].startswith(field)
    if "deep" in what:
        assert answer["field"].startswith("samples[0].fields.a[0][0]")
    _still_serves(srv)


def test_a_50_mb_body_gets_413_whether_announced_or_streamed(srv: Server) -> None:
    big = b'{"samples": [{"completion": "' + b"x" * (50 << 20) + b'"}]}'
    code, answer = _raw(srv, big)
    assert code == 413 and "over the cap of 1000000" in answer["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
        yield b'{"samples": [{"completion": "'
        for _ in range(50):
            yield b"x" * (1 << 20)
        yield b'"}]}'

    answer = srv.http.post("/score", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413 and "at least" in answer.json()["error"]
    _still_serves(srv)


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_a_wrong_or_missing_token_gets_401_without_the_token(srv: Server, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for path in ("/score", "/get_reward", "/verify", "/spec", "/metrics"):
        answer = srv.http.request("GET" if path in ("/spec", "/metrics") else "POST", path, json=GOOD, headers=headers)
        assert answer.status_code == 401, (path, answer.text)
        assert TOKEN not in answer.text and answer.headers["www-authenticate"] == "Bearer"
    assert srv.get("/health").status_code == 200  # probes need no token
    _still_serves(srv)


def test_an_unknown_path_gets_404_listing_the_endpoints(srv: Server) -> None:
    answer = srv.post("/scores", GOOD, headers=AUTH)
    assert answer.status_code == 404
    assert "no endpoint at '/scores'" in answer.json()["error"] and "/score" in answer.json()["error"]
    _still_serves(srv)


def test_a_client_that_sends_half_a_body_and_leaves_does_not_hurt(srv: Server) -> None:
    url = urlparse(srv.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"samples\"")
    _still_serves(srv)


def test_the_completion_text_is_never_markup_or_code_in_the_server(srv: Server) -> None:
    """Untrusted text comes back as data: a completion that looks like markup or a program is
    scored as text (the quickstart spec runs no code at all)."""
    body = {"samples": [{"completion": "[bold red]__import__('os').system('touch /tmp/pwned')[/]", "prompt": "p",
                         "fields": {"answer": "Paris"}}]}
    answer = srv.post("/score", body, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["results"][0]["scores"]["format"]["score"] == 0.0
