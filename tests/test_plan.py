"""The cost model (lexdr.plan): estimates grow with the corpus, settings change them, check_fits names the knob."""

from __future__ import annotations

import pytest

from lexdr.errors import ConfigError
from lexdr.plan import (MRTYDI_SIZES, Device, PlanSettings, Stage, check_fits, machine_memory_bytes, plan_run)

GIB = 2**30


def test_machine_memory_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       24576000 kB\nMemFree:        1000 kB\n")
    assert machine_memory_bytes(f) == 24576000 * 1024
    (tmp_path / "bad").write_text("nothing here\n")
    with pytest.raises(ConfigError, match="MemTotal"):
        machine_memory_bytes(tmp_path / "bad")
    assert machine_memory_bytes() > 0  # this machine's /proc/meminfo


def test_every_stage_estimated_and_grows_with_passages():
    s = PlanSettings(memory_bytes=24 * GIB, index_type="ivfpq")
    small = plan_run({"sw": (100_000, 2_000, 500)}, s)
    big = plan_run({"sw": (10_000_000, 2_000, 500)}, s)
    assert {e.stage for e in small.estimates} == set(Stage)
    for stage in (Stage.bm25, Stage.dense):
        a = next(e for e in small.estimates if e.stage is stage)
        b = next(e for e in big.estimates if e.stage is stage)
        assert b.cpu_seconds > 50 * a.cpu_seconds and b.disk_bytes > 50 * a.disk_bytes
        assert b.peak_bytes > a.peak_bytes
    assert big.total_seconds(Device.gpu) < big.total_seconds(Device.cpu)


def test_out_of_core_bm25_uses_less_memory_than_in_memory():
    n = {"ru": (9_600_000, 5_366, 1_375)}
    ooc = plan_run(n, PlanSettings(stages=("bm25",), memory_bytes=24 * GIB, max_docs_in_memory=200_000))
    mem = plan_run(n, PlanSettings(stages=("bm25",), memory_bytes=24 * GIB, max_docs_in_memory=None))
    assert ooc.peak_bytes() < mem.peak_bytes()


def test_check_fits_names_the_knob():
    n = {"en": MRTYDI_SIZES["en"]}
    with pytest.raises(ConfigError, match=r"\[bm25\] max_docs_in_memory"):
        check_fits(plan_run(n, PlanSettings(stages=("bm25",), memory_bytes=24 * GIB, max_docs_in_memory=None)))
    with pytest.raises(ConfigError, match=r"\[dense\] index_type"):
        check_fits(plan_run(n, PlanSettings(stages=("dense",), memory_bytes=24 * GIB, index_type="flat")))
    # compressed vectors fit where flat ones do not
    check_fits(plan_run(n, PlanSettings(stages=("dense",), memory_bytes=24 * GIB, index_type="ivfpq")))


def test_check_fits_disk(tmp_path):
    plan = plan_run({"en": MRTYDI_SIZES["en"]}, PlanSettings(memory_bytes=10**15))
    check_fits(plan)  # memory alone: fine
    if plan.disk_bytes() > __import__("shutil").disk_usage(tmp_path).free:
        with pytest.raises(ConfigError, match="out_dir"):
            check_fits(plan, out_dir=tmp_path / "run")
    else:
        check_fits(plan, out_dir=tmp_path / "run")


def test_render_and_verdicts():
    plan = plan_run(MRTYDI_SIZES, PlanSettings(memory_bytes=24 * GIB))
    text = plan.render()
    assert "| en | dense |" in text and "| * | train |" in text
    verdicts = plan.verdicts()
    assert set(verdicts) == set(MRTYDI_SIZES)
    assert verdicts["en"].startswith(("needs a GPU", "needs"))
    assert all(v.startswith(("fits", "needs")) for v in verdicts.values())


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="index_type"):
        PlanSettings(index_type="annoy")
    with pytest.raises(ConfigError, match="max_docs_in_memory"):
        PlanSettings(max_docs_in_memory=0)
    with pytest.raises(ValueError):
        PlanSettings(stages=("bm25", "nope"))
    with pytest.raises(ConfigError, match="at least one passage"):
        plan_run({"x": (0, 1, 1)}, PlanSettings(memory_bytes=GIB))
