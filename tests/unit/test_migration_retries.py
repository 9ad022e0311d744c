"""The single migrate_pages call is repeated for pages it could not move, a bounded number
of times, and the verdict says how often.

The kernel call is a stand-in that counts calls and returns what the test scripts: this
checks numatui's retry rule, not the kernel (the guest tier moves real pages). The process
is a real sleeping one on this host, so the job's before/after reads are real.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from numatui.kernel.migration import MigrationJob, Observation, decide_outcome
from numatui.kernel.nodemask import NodeMask
from numatui.model.migration import MigrationPlan
from tests.tooling.privileges import ROOT

MakeJob = Callable[..., MigrationJob]


class ScriptedCall:
    """Returns the scripted not-moved counts in turn, the last one ever after."""

    def __init__(self, *counts: int) -> None:
        self.counts = list(counts)
        self.calls: list[tuple[int, NodeMask, NodeMask]] = []

    def __call__(self, pid: int, old: NodeMask, new: NodeMask) -> int:
        self.calls.append((pid, old, new))
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]


def test_a_call_that_moved_everything_is_not_repeated(job_on_sleeper: MakeJob) -> None:
    call = ScriptedCall(0)
    job = job_on_sleeper(migrate=call, retry_pauses_s=(0.01, 0.01))
    result = job.run()
    assert len(call.calls) == 1
    assert job.retries == 0
    assert result.pages_not_moved == 0


def test_pages_left_by_the_first_call_are_tried_again(job_on_sleeper: MakeJob) -> None:
    call = ScriptedCall(3, 0)
    job = job_on_sleeper(migrate=call, retry_pauses_s=(0.01, 0.01))
    result = job.run()
    assert len(call.calls) == 2
    # Each retry asks for the same pairs: the kernel skips what already moved.
    assert call.calls[0] == call.calls[1]
    assert call.calls[0][1] == NodeMask({0}) and call.calls[0][2] == NodeMask({1})
    assert job.retries == 1
    assert result.pages_not_moved == 0
    assert not any("could not move" in line for line in result.explanations)


def test_retries_are_bounded_and_the_verdict_counts_them(job_on_sleeper: MakeJob) -> None:
    call = ScriptedCall(5, 2)
    job = job_on_sleeper(migrate=call, retry_pauses_s=(0.01, 0.01))
    result = job.run()
    assert len(call.calls) == 3  # the call and two retries, however many pages stay
    assert job.retries == 2
    assert result.pages_not_moved == 2  # what the last call reported, not the first
    assert any("could not move (after 2 retries)" in line for line in result.explanations), (
        result.explanations
    )


def test_a_cancelled_job_is_not_retried(job_on_sleeper: MakeJob) -> None:
    call = ScriptedCall(4)
    job = job_on_sleeper(migrate=call, retry_pauses_s=(0.01, 0.01))
    cancel = threading.Event()

    def cancel_on_call(pid: int, old: NodeMask, new: NodeMask) -> int:
        cancel.set()
        return call(pid, old, new)

    job._migrate = cancel_on_call
    job.cancellable = False  # the single call: cancel only stops the retries
    result = job.run(cancel=cancel)
    assert len(call.calls) == 1
    assert result.pages_not_moved == 4


def test_the_explanation_without_retries_names_none() -> None:
    before = {0: 8192}
    seen = Observation(before=before, after=before, pages_not_moved=2)
    plan = MigrationPlan(1, frozenset({0}), frozenset({1}), ((0, 1),))
    _, _, explanations = decide_outcome(plan, seen, ROOT, 4096)
    line = next(e for e in explanations if "could not move" in e)
    assert "retries" not in line
