"""Run a guest-test function as another user, in a fresh interpreter (never a fork of pytest).

The guest's pytest process has threads by the time a test needs another user (scan workers,
migration samplers, readers of workload pipes, earlier tests' leftovers): a fork() of it
inherits their locks in whatever state they were, but not the threads that would release them.
So the function runs in a new interpreter instead. That interpreter starts as root, imports the
test module and every numatui module the function may reach (the interpreter, its packages and
the repo may be unreadable to that user, e.g. a pyenv under /root), then drops to the user with
no supplementary groups and no capabilities, and calls the function. Arguments and the answer
cross as Python literals (ints, strings, lists, sets, dicts with int keys).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

GUEST_TESTS = Path(__file__).resolve().parent
REPO = GUEST_TESTS.parents[2]
NOBODY = 65534
_ANSWER = "@@numatui-as-user@@"  # the line of _BOOTSTRAP's answer

# argv: uid, module, function, seconds until the child dumps every thread's stack and exits,
# and the name of a function of the module run as root first ("" for none).
_BOOTSTRAP = r"""
import ast, faulthandler, importlib, os, pkgutil, sys
faulthandler.dump_traceback_later(float(sys.argv[4]), exit=True)
kwargs = ast.literal_eval(sys.stdin.read())
import numatui.cli, numatui.kernel
for found in pkgutil.iter_modules(numatui.kernel.__path__, "numatui.kernel."):
    importlib.import_module(found.name)
from numatui.kernel import syscalls
syscalls._ffi_lib()  # cffi's lazily loaded declarations
module = importlib.import_module(sys.argv[2])
function = getattr(module, sys.argv[3])
if sys.argv[5]:
    kwargs = getattr(module, sys.argv[5])(**kwargs)
uid = int(sys.argv[1])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)  # from root: drops every capability too
answer = function(**kwargs)
print("@@numatui-as-user@@" + repr(answer), flush=True)
"""


def run_as(
    uid: int,
    function: Callable[..., dict[str, Any]],
    *,
    as_root_first: Callable[..., dict[str, Any]] | None = None,
    timeout: float = 400.0,  # under the 600 s test limit; imports over 9p under TCG are slow
    **kwargs: Any,
) -> dict[str, Any]:
    """`function(**kwargs)` as `uid` in a fresh interpreter; its dict back.

    `as_root_first(**kwargs)`, if given, runs in that interpreter before it drops to `uid`
    and returns the keyword arguments `function` is then called with (so objects read as
    root, such as a process as root sees it, reach it without crossing as literals).
    Both must be module-level functions of one module in tests/kernel/guest. Raises
    AssertionError with the child's stderr (a traceback, or the stack of every thread if it
    ran out of time) when it gives no answer.
    """
    module, name = function.__module__, function.__qualname__
    first = as_root_first.__qualname__ if as_root_first is not None else ""
    for given in (name, first):
        assert "." not in given and "<" not in given, f"{given}: not a module-level function"
    assert as_root_first is None or as_root_first.__module__ == module
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join((str(REPO), str(GUEST_TESTS)))
    command = [sys.executable, "-c", _BOOTSTRAP, str(uid), module, name, str(timeout - 5), first]
    try:
        done = subprocess.run(
            command,
            input=repr(kwargs),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{module}.{name} as uid {uid} gave no answer in {timeout:.0f} s:\n{exc.stderr!r}"
        ) from exc
    for line in done.stdout.splitlines():
        if line.startswith(_ANSWER):
            answer = ast.literal_eval(line.removeprefix(_ANSWER))
            assert isinstance(answer, dict), answer
            return answer
    raise AssertionError(
        f"{module}.{name} as uid {uid} exited {done.returncode} without an answer:\n"
        f"{done.stderr}\n{done.stdout}"
    )
