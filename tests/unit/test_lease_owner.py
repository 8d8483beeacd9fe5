"""Who holds a lease, and when a lease's holder is known to be gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from sluiceway.scheduler.lease import LeaseOwner, process_start


def test_owner_round_trips_through_its_text() -> None:
    me = LeaseOwner.new()
    assert (me.host, me.pid) == (socket.gethostname(), os.getpid())
    assert me.started == process_start(os.getpid()) is not None
    assert LeaseOwner.parse(str(me)) == me
    assert LeaseOwner.parse("a:b:c:12:tok") == LeaseOwner("a:b:c", 12, "tok")
    assert LeaseOwner.parse("a:b:c:12:tok").started is None  # type: ignore[union-attr]
    for text in ("", "host", "host:12", "host:pid:tok", "host:12:"):
        assert LeaseOwner.parse(text) is None


def test_a_process_of_this_machine_that_exited_is_gone() -> None:
    me = LeaseOwner.new()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert LeaseOwner(me.host, child.pid, "x").is_gone(me)


def test_live_processes_and_other_machines_are_not_gone() -> None:
    me = LeaseOwner.new()
    assert not me.is_gone(me)
    # Another scheduler in this same process (tests run several) is alive too.
    assert not LeaseOwner.new().is_gone(me)
    parent = os.getppid()
    assert not LeaseOwner(me.host, parent, f"{process_start(parent)}-x").is_gone(me)
    assert not LeaseOwner(me.host, parent, "x").is_gone(me)  # start time unknown
    assert not LeaseOwner("another-machine", 1, "x").is_gone(me)
    assert not LeaseOwner(me.host, 0, "x").is_gone(me)


def test_a_pid_used_again_by_a_newer_process_means_its_holder_is_gone() -> None:
    # A server restarted in a container often gets the pid its predecessor had.
    me = LeaseOwner.new()
    assert me.started is not None
    earlier = str(int(me.started) - 1)
    assert LeaseOwner(me.host, me.pid, f"{earlier}-abcd").is_gone(me)
