"""The client against a real ``stratbox serve``: the Rust test suite starts one and sets
STRATBOX_URL (and STRATBOX_FILES_ROOT, the server's --files-root, holding ``ok.py``)."""

import os
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stratbox_client import Busy, CheckResult, Client, Outcome, Request, StratboxError  # noqa: E402

URL = os.environ.get("STRATBOX_URL")


@unittest.skipUnless(URL, "needs STRATBOX_URL: the Rust test suite starts a server and sets it")
class ClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = Client(URL)

    def test_health(self) -> None:
        self.assertTrue(self.client.health())

    def test_run_returns_a_typed_outcome(self) -> None:
        outcome = self.client.run(
            "import json, sys\nprint(sum(json.load(sys.stdin)))", input=[1, 2, 3], id="sum"
        )
        self.assertIsInstance(outcome, Outcome)
        self.assertTrue(outcome.ok, outcome)
        self.assertEqual((outcome.id, outcome.stdout, outcome.backend), ("sum", "6\n", "wasm"))
        self.assertEqual(outcome.route.backend, "wasm")
        self.assertGreater(outcome.usage.wall_ms, 0)

    def test_failures_and_refusals_are_outcomes(self) -> None:
        failed = self.client.run("raise ValueError('no')")
        self.assertEqual((failed.status, failed.exit_code), ("error", 1))
        self.assertIn("ValueError: no", failed.stderr)
        rejected = self.client.run("import socket")
        self.assertEqual(rejected.status, "rejected")
        self.assertEqual(rejected.violations[0].rule, "forbidden-import")
        killed = self.client.run("while True: pass", profile="strict")
        self.assertEqual((killed.status, killed.reason), ("killed", "fuel"))

    def test_limits_tighten_and_looser_ones_are_refused(self) -> None:
        killed = self.client.run("while True: pass", limits={"fuel": 50_000_000, "wall-time": "5s"})
        self.assertEqual((killed.status, killed.reason), ("killed", "fuel"))
        refused = self.client.run("print(1)", limits={"memory": "64GiB"})
        self.assertEqual(refused.status, "invalid")
        self.assertIn("`limits.memory` = 64GiB is looser", refused.message)

    def test_refused_requests_are_invalid_outcomes(self) -> None:
        outcome = self.client.run(path="/etc/passwd", id="passwd")
        self.assertEqual((outcome.status, outcome.id), ("invalid", "passwd"))
        self.assertIn("outside the files root", outcome.message)
        self.assertEqual(outcome.stdout, "")

    def test_files_inside_the_root(self) -> None:
        if not os.environ.get("STRATBOX_FILES_ROOT"):
            self.skipTest("the server has no files root")
        outcome = self.client.run(path="ok.py")
        self.assertEqual(outcome.stdout, "inside\n")

    def test_check_runs_nothing(self) -> None:
        verdict = self.client.check("import math\nprint(math.tau)")
        self.assertIsInstance(verdict, CheckResult)
        self.assertTrue(verdict.ok)
        self.assertEqual(verdict.route.backend, "wasm")
        refused = self.client.check("import os")
        self.assertEqual(refused.status, "rejected")
        self.assertEqual(refused.violations[0].line, 1)

    def test_batch_yields_one_outcome_per_request(self) -> None:
        requests = [Request(source=f"print({n} * {n})", id=f"sq{n}") for n in range(20)]
        requests.append({"id": "bad", "source": "x", "nope": 1})
        outcomes = {o.id: o for o in self.client.batch(requests)}
        self.assertEqual(len(outcomes), 21)
        for n in range(20):
            self.assertEqual(outcomes[f"sq{n}"].stdout, f"{n * n}\n")
        self.assertEqual(outcomes["bad"].status, "invalid")
        self.assertIn("unknown field `nope`", outcomes["bad"].message)

    def test_a_wrong_token_is_an_error_only_when_the_server_has_one(self) -> None:
        # This server has no token: any token is accepted.
        self.assertTrue(Client(URL, token="anything").run("print(1)").ok)

    def test_errors_are_typed(self) -> None:
        self.assertTrue(issubclass(Busy, StratboxError))
        with self.assertRaises(ValueError):
            Client("ftp://example.invalid")


if __name__ == "__main__":
    unittest.main()
