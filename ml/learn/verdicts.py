"""When a check says no: the one definition of a failed test run and a failed gate, shared by the
`mlci test`/`mlci gate` commands and the pipeline's stages (both raise the same CheckFailed, exit 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.core.errors import CheckFailed

if TYPE_CHECKING:
    from mlci.learn.gate import GateResult
    from mlci.learn.testing import TestResult


def require_tests_passed(result: TestResult) -> None:
    if not result.passed:
        raise CheckFailed(f"tests failed: {result.summary}", hint=f"see {result.junit} and the output above")


def require_gate_passed(result: GateResult) -> None:
    if not result.passed:
        raise CheckFailed(
            f"candidate v{result.candidate['version']} fails the gate: " + "; ".join(result.reasons),
            hint="see the table above and reports/gate.json",
        )


def gate_reference(result: GateResult) -> str:
    """What the candidate was judged against, in words."""
    if result.production:
        return f"production v{result.production['version']}"
    # The primary metric's absolute bound: a floor when higher is better, a ceiling for an error.
    return "the ceiling" if result.checks and result.checks[0].name.endswith("ceiling") else "the floor"
