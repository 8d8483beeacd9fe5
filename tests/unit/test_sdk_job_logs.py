"""Following a job's log and waiting for a cancel, over an in-memory transport."""

from __future__ import annotations

import httpx

from sluiceway.sdk.connection import Connection
from sluiceway.sdk.job_operations import JobOperations, LogTail


class GrowingLog:
    """A server whose log file grows by one chunk per request, and whose job ends when the
    log has no more chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.content = b""
        self.offsets: list[int] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/jobs/j/logs/"):
            if path != "/jobs/j/logs/job_progress_overview.txt":
                return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no"}})
            if self.chunks:
                self.content += self.chunks.pop(0)
            offset = int(request.url.params.get("offset", "0"))
            self.offsets.append(offset)
            return httpx.Response(200, content=self.content[offset:])
        status = "Running" if self.chunks else "Completed"
        return httpx.Response(200, json={"name": "j", "status": status})


def connection(server: GrowingLog) -> Connection:
    return Connection("http://sluiceway.test", "t", transport=httpx.MockTransport(server.handle))


def test_a_tail_returns_whole_lines_once_even_when_a_character_is_split() -> None:
    euro = "€".encode()
    server = GrowingLog([b"one\ntw", b"o\n" + euro[:1], euro[1:] + b" three", b""])
    with connection(server) as conn:
        tail = LogTail(conn, "j", "job_progress_overview.txt")
        assert tail.read() == ["one"]
        assert tail.read() == ["two"]
        assert tail.read() == []
        assert tail.read(final=True) == ["€ three"]
    assert server.offsets == [0, 6, 9, len(server.content)]


def test_a_log_that_does_not_exist_yet_reads_as_empty() -> None:
    with connection(GrowingLog([])) as conn:
        assert LogTail(conn, "j", "later.txt").read(final=True) == []


def test_follow_log_yields_lines_until_the_job_ends() -> None:
    server = GrowingLog([b"a\nb", b"\nc\n", b"d"])
    sleeps: list[float] = []
    with connection(server) as conn:
        jobs = JobOperations(conn, sleep=sleeps.append)
        assert list(jobs.follow_log("j", poll_interval=0.25)) == ["a", "b", "c", "d"]
    assert sleeps and set(sleeps) == {0.25}


def test_begin_cancel_is_done_once_the_job_has_ended() -> None:
    statuses = ["CancelRequested", "CancelRequested", "Canceled"]
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(202, json={"name": "j", "status": "CancelRequested"})
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return httpx.Response(200, json={"name": "j", "status": status})

    done: list[str] = []
    transport = httpx.MockTransport(handle)
    with Connection("http://sluiceway.test", "t", transport=transport) as conn:
        poller = JobOperations(conn, sleep=lambda _: None).begin_cancel("j", poll_interval=0)
        assert asked == ["POST /jobs/j/cancel"]
        poller.add_done_callback(lambda p: done.append(p.status()))
        assert not poller.done()
        poller.wait()
        assert poller.done() and poller.status() == "Succeeded"
        assert poller.result() is None
    assert done == ["Succeeded"]
    assert asked.count("GET /jobs/j") == 3
