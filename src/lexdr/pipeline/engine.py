"""A minimal stage engine: fingerprints, skip-if-unchanged, manifest, per-stage time and peak memory.

A stage's fingerprint hashes its config, its input files (content) and the fingerprints of the stages it
reads from. A stage whose fingerprint matches the ``done.json`` in its folder is skipped; any change upstream
changes the fingerprint downstream, so exactly what depends on a change re-runs. ``done.json`` is written
last (atomically): a stage killed midway has none and runs again, resuming from its own shards or
checkpoints where it has them.

Damaged outputs are never reused. ``done.json`` records every output file of the stage (by default every file
in its folder but ``done.json``; a stage may name its outputs with ``Stage.outputs``) with its size,
modification time and SHA-256. Before a stage is skipped each recorded file is checked: a missing file or
another size is damage, and every other file is hashed again, so an edit that kept the size (and even the
modification time, restored with ``touch -r``) is damage too; a copied or touched run folder whose content is
unchanged is not rebuilt (its new times are recorded). A damaged stage runs again from scratch (its recorded
outputs removed, so no reuse logic inside the stage picks up the rest), with a warning naming the file.
Hashing on a skip costs one read of each finished stage's outputs per ``lexdr run``: seconds next to the
minutes the stages took (measured in ``docs/architecture.md``). A stage also records the output digests of the
stages it reads from: when a rebuilt upstream stage produced other bytes (a non-deterministic training),
everything downstream of it runs again; a bit-identical rebuild (BM25) leaves it skipped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lexdr.formats.files import atomic_write, file_digest, file_sha256

__all__ = ["Stage", "StageRunner", "file_digest", "PeakMemory", "snapshot_outputs", "damaged_outputs"]

logger = logging.getLogger(__name__)

def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples this process's resident memory every 0.2 s while a stage runs (Linux /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


@dataclass
class Stage:
    name: str  # unique, e.g. "ja/bm25"
    fn: Callable[[Path], dict[str, Any] | None]  # writes into its folder; returns metrics/stats for the manifest
    config: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)  # user files the stage reads
    deps: list[str] = field(default_factory=list)  # stages whose outputs it reads
    # What the stage's result is made of: fnmatch patterns of paths relative to its folder ("index/*",
    # "run.*.trec"). None: every file in the folder except done.json (and lexdr's own temp files).
    outputs: list[str] | None = None
    # Files in its folder that are not part of its result (fnmatch patterns of relative paths): not recorded, not
    # checked, not in its output digest. A trained model's card, rewritten with each run's metrics after the
    # evaluation, is one: nothing downstream reads it.
    not_outputs: list[str] = field(default_factory=list)


# done.json itself, and the temp files / moved-aside folders of lexdr.formats.files' atomic helpers.
_NOT_OUTPUTS = ("done.json", ".*.tmp", ".*.old")


def _output_files(folder: Path, patterns: list[str] | None, excluded: list[str] | tuple = ()) -> list[str]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in _NOT_OUTPUTS))
        for name in sorted(names):
            if any(fnmatch.fnmatch(name, p) for p in _NOT_OUTPUTS):
                continue
            rel = (Path(root) / name).relative_to(folder).as_posix()
            if (patterns is None or any(fnmatch.fnmatch(rel, p) for p in patterns)) and \
                    not any(fnmatch.fnmatch(rel, p) for p in excluded):
                files.append(rel)
    return files


def snapshot_outputs(folder: str | Path, patterns: list[str] | None = None,
                     excluded: list[str] | tuple = ()) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "mtime_ns", "sha256"}}`` of a stage folder's output files (see module doc)."""
    folder = Path(folder)
    out = {}
    for rel in _output_files(folder, patterns, excluded):
        st = (folder / rel).stat()
        out[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(folder / rel)}
    return out


def damaged_outputs(folder: str | Path, recorded: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """``(relative path, what is wrong)`` for each recorded output that is missing or whose content changed.

    Another size: damage without reading. The same size: re-hashed (an edit that kept the size and the
    modification time is caught); an unchanged hash with another time refreshes the recorded time in
    ``recorded`` (the caller may save it)."""
    folder = Path(folder)
    bad = []
    for rel, rec in recorded.items():
        path = folder / rel
        try:
            st = path.stat()
        except OSError:
            bad.append((rel, "missing"))
            continue
        if st.st_size != rec.get("size"):
            bad.append((rel, f"{st.st_size} bytes, {rec.get('size')} when the stage finished"))
        elif file_sha256(path) != rec.get("sha256"):
            bad.append((rel, "content changed since the stage finished"))
        elif st.st_mtime_ns != rec.get("mtime_ns"):
            rec["mtime_ns"] = st.st_mtime_ns
    return bad


def _outputs_digest(outputs: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps({k: v["sha256"] for k, v in outputs.items()}, sort_keys=True).encode()).hexdigest()


class StageRunner:
    def __init__(self, run_dir: Path, run_config: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprints: dict[str, str] = {}
        self.output_digests: dict[str, str] = {}  # stage -> digest of its verified output files
        self.manifest_path = self.run_dir / "manifest.json"
        self.manifest: dict[str, Any] = {}
        if self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        self.manifest.update({"config": run_config, "environment": _environment()})
        self.manifest.setdefault("stages", {})

    def folder(self, name: str) -> Path:
        return self.run_dir / name

    def _fingerprint(self, stage: Stage) -> str:
        payload = {
            "config": stage.config,
            "inputs": {p: file_digest(p) for p in stage.inputs},
            "deps": {d: self.fingerprints[d] for d in stage.deps},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def run(self, stage: Stage) -> dict[str, Any]:
        fp = self._fingerprint(stage)
        self.fingerprints[stage.name] = fp
        folder = self.folder(stage.name)
        done = folder / "done.json"
        dep_outputs = {d: self.output_digests.get(d) for d in stage.deps}
        if done.exists():
            record = self._reusable(stage, folder, fp, dep_outputs)
            if record is not None:
                logger.info("stage %s: unchanged, skipped", stage.name)
                self.output_digests[stage.name] = _outputs_digest(record["outputs"])
                self.manifest["stages"][stage.name] = {**record, "skipped": True}
                self._write_manifest()
                return record.get("result") or {}
            done.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("stage %s: running", stage.name)
        t0 = time.time()
        cuda = _cuda_reset_peak()
        with PeakMemory() as mem:
            result = stage.fn(folder) or {}
        outputs = snapshot_outputs(folder, stage.outputs, stage.not_outputs)
        self.output_digests[stage.name] = _outputs_digest(outputs)
        record = {"fingerprint": fp, "seconds": round(time.time() - t0, 2), "peak_rss_mb": round(mem.peak / 2**20, 1),
                  **({"peak_gpu_mb": round(cuda.max_memory_allocated() / 2**20, 1)} if cuda else {}),
                  "inputs": {p: file_digest(p) for p in stage.inputs}, "config": stage.config, "result": result,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "outputs": outputs, "dep_outputs": dep_outputs}
        with atomic_write(done) as fh:
            json.dump(record, fh, indent=2, default=str)
        self.manifest["stages"][stage.name] = {**record, "skipped": False}
        self._write_manifest()
        return result

    def _reusable(self, stage: Stage, folder: Path, fp: str, dep_outputs: dict[str, str | None]) -> dict | None:
        """The stage's ``done.json`` record when the stage may be skipped: same fingerprint, the same upstream
        outputs it was made from, and its own outputs intact. None (with the reason logged) otherwise."""
        done = folder / "done.json"
        try:
            record = json.loads(done.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("stage %s: %s is unreadable; running the stage again", stage.name, done)
            return None
        if record.get("fingerprint") != fp:
            return None
        if "outputs" not in record:
            logger.info("stage %s: %s records no output hashes (an older lexdr); running the stage again",
                        stage.name, done)
            return None
        if record.get("dep_outputs", dep_outputs) != dep_outputs:
            changed = [d for d in dep_outputs if record["dep_outputs"].get(d) != dep_outputs[d]]
            logger.info("stage %s: the outputs of %s changed since it ran; running it again", stage.name,
                        ", ".join(changed))
            return None
        # What an older lexdr recorded but is not part of the result (a model card) is no longer checked.
        record["outputs"] = {rel: rec for rel, rec in record["outputs"].items()
                             if not any(fnmatch.fnmatch(rel, p) for p in stage.not_outputs)}
        before = json.dumps(record["outputs"], sort_keys=True)
        bad = damaged_outputs(folder, record["outputs"])
        if bad:
            for rel, why in bad:
                logger.warning("stage %s: output %s is damaged (%s); running the stage again from scratch",
                               stage.name, folder / rel, why)
            # The outputs are one product (an index's files, a model's): remove them all, so that no reuse
            # logic inside the stage (a finished model, an index of the same corpus) picks up the rest.
            for rel in record["outputs"]:
                (folder / rel).unlink(missing_ok=True)
            for sub in sorted({(folder / rel).parent for rel in record["outputs"]}, key=lambda p: -len(p.parts)):
                while sub != folder and sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
                    sub = sub.parent
            return None
        if json.dumps(record["outputs"], sort_keys=True) != before:  # re-hashed after a copy/touch: save new times
            with atomic_write(done) as fh:
                json.dump(record, fh, indent=2, default=str)
        return record

    def _write_manifest(self) -> None:
        with atomic_write(self.manifest_path) as fh:
            json.dump(self.manifest, fh, indent=2, default=str)


def _cuda_reset_peak():
    """torch.cuda when a stage may use the GPU (torch already imported and a GPU present), peak counter reset.

    Only looks at torch if something already imported it: a BM25-only run must not pay torch's import."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda


def _environment() -> dict[str, Any]:
    import os
    import platform
    from importlib import metadata

    versions = {}
    for pkg in ("lexdr", "torch", "transformers", "sentence-transformers", "bm25s", "faiss-cpu", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "versions": versions}
    try:
        import torch

        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env
