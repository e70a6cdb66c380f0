"""Hostile files never escape the decoder: a bounded seeded fuzz run and the saved corpus.

`make fuzz` runs the long campaign (tests/edge/fuzz.py); what it finds is saved under
tests/edge/fuzz_cases/ and replayed here on every test run.
"""

import collections
import time

import pytest

from edge.imageio import REASONS, ImageError, load_grayscale
from tests.edge import fuzz

pytest.importorskip("pydicom")

BOUNDED_SEED = 18  # fixed: the suite always runs the same cases
CASES_PER_SAMPLE = 200
# Hostile files make Pillow and pydicom warn on nearly every case; the contract is about errors.
pytestmark = pytest.mark.filterwarnings("ignore")


def test_bounded_fuzz_run_only_ever_raises_image_error(tmp_path):
    samples = fuzz.make_samples()
    count = CASES_PER_SAMPLE * len(samples)
    reasons = collections.Counter()
    failures, slowest = [], 0.0
    started = time.perf_counter()
    for case in fuzz.generate_cases(BOUNDED_SEED, count, samples):
        failure, seconds = fuzz.run_case(case, tmp_path)
        slowest = max(slowest, seconds)
        if failure:
            failures.append(f"case {case.index} ({case.sample}: {' '.join(case.mutations)}): "
                            f"{failure.kind} {failure.signature}\n{failure.detail}")
        else:
            reasons[_reason(tmp_path / f"case{case.suffix}")] += 1
    elapsed = time.perf_counter() - started
    assert not failures, "\n".join(failures[:5])
    assert slowest < fuzz.SLOW_SECONDS
    # The mutations reach the decoder's failure paths, DICOM headers included; many cases still
    # decode, so the run is not just rejecting garbage at the first byte.
    assert reasons["malformed_dicom"] >= 10, reasons
    assert reasons["ok"] >= count // 10, reasons
    assert len(reasons) >= 5, reasons
    print(f"{count} cases in {elapsed:.1f} s, slowest {slowest * 1000:.0f} ms: {dict(reasons)}")


def test_saved_failures_are_replayed():
    cases = fuzz.saved_cases()
    assert cases, f"no saved cases under {fuzz.FUZZ_CASES_DIR}"
    for path in cases:
        reason = _reason(path)  # anything but ImageError propagates and fails the test
        assert reason == "ok" or reason in REASONS, (path.name, reason)


def test_cases_are_reproducible_from_their_seed():
    samples = fuzz.make_samples()
    assert samples == fuzz.make_samples()  # the samples themselves are deterministic
    first = list(fuzz.generate_cases(3, 40, samples))
    again = list(fuzz.generate_cases(3, 40, samples))
    other = list(fuzz.generate_cases(4, 40, samples))
    assert first == again and [c.data for c in first] != [c.data for c in other]
    # Nearly every case differs from its sample (an overwrite may write the byte already there).
    assert sum(case.data != samples[case.sample] for case in first) >= 36


def test_campaign_saves_one_input_per_distinct_failure(tmp_path, monkeypatch, capsys):
    # A decoder that crashes on every DICOM: the campaign must save it and exit non-zero.
    real = fuzz.load_grayscale

    def crashes_on_dicom(path):
        if str(path).endswith(".dcm"):
            raise TypeError("planted bug")
        return real(path)

    monkeypatch.setattr(fuzz, "load_grayscale", crashes_on_dicom)
    code = fuzz.main(["--cases", "30", "--seed", "1", "--save-dir", str(tmp_path / "saved"),
                      "--alarm", "0"])  # leave SIGALRM to pytest-timeout
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert code == 1
    assert len(saved) == 1 and saved[0].endswith(".dcm")  # one signature, one file
    assert "1 distinct failures" in capsys.readouterr().out


def _reason(path) -> str:
    try:
        load_grayscale(path)
    except ImageError as err:
        return err.reason
    return "ok"
