"""mlci.core.sandbox: the Landlock write sandbox `mlci test` runs the tests in, decisions and the real thing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlci.core import sandbox
from mlci.core.errors import BadInput
from mlci.learn import testing

WRITES = sandbox.WRITE_FILE | sandbox.REMOVE_DIR | sandbox.REMOVE_FILE | sandbox.MAKE_DIR | sandbox.MAKE_REG


def test_the_rights_denied_grow_with_the_kernel_abi():
    assert sandbox.handled_rights(1) & WRITES == WRITES
    assert not sandbox.handled_rights(1) & (sandbox.REFER | sandbox.TRUNCATE)
    assert sandbox.handled_rights(2) & sandbox.REFER and not sandbox.handled_rights(2) & sandbox.TRUNCATE
    assert sandbox.handled_rights(7) & sandbox.TRUNCATE
    assert not sandbox.handled_rights(7) & (1 << 0 | 1 << 2 | 1 << 3), "execute and reads stay allowed"


def test_a_file_rule_carries_only_file_rights():
    handled = sandbox.handled_rights(3)
    assert sandbox.rule_rights(handled, is_dir=True) == handled
    assert sandbox.rule_rights(handled, is_dir=False) == sandbox.WRITE_FILE | sandbox.TRUNCATE


def test_allowed_paths_are_resolved_distinct_and_existing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert sandbox.allowed_paths([tmp_path / "a", tmp_path / "link", tmp_path / "missing"]) == [tmp_path / "a"]


def test_the_plan_off_auto_required():
    assert testing.sandbox_plan("off", 7, ["/ws"]).prefix == []
    plan = testing.sandbox_plan("auto", 7, ["/ws", "/tmp"])
    assert plan.prefix == [sys.executable, "-m", "mlci.core.sandbox", "--allow", "/ws", "--allow", "/tmp", "--"]
    assert plan.description == "landlock ABI 7: the tests write only beneath /ws, /tmp"
    assert testing.sandbox_plan("auto", 0, ["/ws"]).description.startswith("unavailable: this kernel has no Landlock")
    with pytest.raises(BadInput, match="MLCI_TEST_SANDBOX=required, but this agent's kernel has no Landlock"):
        testing.sandbox_plan("required", 0, ["/ws"])


def run_sandboxed(allowed, *command: str, cwd) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "mlci.core.sandbox"]
    for path in allowed:
        args += ["--allow", str(path)]
    return subprocess.run([*args, "--", *command], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_this_machine_has_landlock():
    # The sandbox is a feature of mlci test on Linux agents: the machine the tests run on must have it.
    assert sandbox.abi_version() >= 1


def test_a_sandboxed_command_and_its_children_write_only_beneath_the_allowed(tmp_path):
    work, outside = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    outside.mkdir()
    (outside / "old.pth").write_text("kept")
    script = (
        "echo ok > inside.txt && "
        '{ echo x > ../cache/evil.pth; echo "write $?"; } 2>/dev/null; '
        '{ rm -f ../cache/old.pth; echo "remove $?"; } 2>/dev/null; '
        '{ mkdir ../cache/d; echo "mkdir $?"; } 2>/dev/null'
    )

    done = run_sandboxed([work, "/dev/null"], "sh", "-c", script, cwd=work)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["write 2", "remove 1", "mkdir 1"]
    assert (work / "inside.txt").read_text() == "ok\n"
    assert sorted(p.name for p in outside.iterdir()) == ["old.pth"]


def test_the_launcher_says_how_to_use_it_and_what_failed(tmp_path):
    assert run_sandboxed([], cwd=tmp_path).returncode == 2
    missing = run_sandboxed([tmp_path], "no-such-command-here", cwd=tmp_path)
    assert missing.returncode == 127
    # (Under make test's coverage, the launcher's own coverage data cannot be written either: more lines follow.)
    assert missing.stderr.startswith("error: cannot run no-such-command-here: No such file or directory\n")
    assert "Traceback" not in missing.stderr.split("Exception ignored in atexit")[0]
