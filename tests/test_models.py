"""Model sources: the optional MPNet teacher, assembled from a split zip.

The real pieces (the project's extra ``[mpnet]``, about 400 MB) are never a test dependency:
these tests split a zip of the tiny test model into five pieces the same way and
point :func:`dcs_lib.models.mpnet_parts` at them.
"""

from __future__ import annotations

import importlib.metadata
import zipfile
from pathlib import Path

import pytest

from dcs_lib import DCSError, models
from dcs_lib.tasks import get_task


def split_zip(folder: Path, out: Path, pieces: int = 5) -> list[Path]:
    """A zip of ``folder`` as all-mpnet-base-v2/..., cut into ``pieces`` raw byte ranges as the packages ship it."""
    archive = out / "whole.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"all-mpnet-base-v2/{path.name}")
        z.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")  # the real zip carries these too
    data = archive.read_bytes()
    size = -(-len(data) // pieces)
    parts = []
    for i in range(pieces):
        part = out / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * size : (i + 1) * size])
        parts.append(part)
    return parts


@pytest.fixture
def pieces(tiny_model, tmp_path, monkeypatch):
    parts = split_zip(Path(tiny_model), tmp_path)
    monkeypatch.setattr(models, "mpnet_parts", lambda: parts)
    monkeypatch.setenv("DCS_MODEL_CACHE", str(tmp_path / "cache"))
    return parts


def test_the_pieces_are_assembled_once_into_a_loadable_folder(pieces, tmp_path):
    stale = tmp_path / "cache" / "all-mpnet-base-v2"  # from other pieces: replaced, not trusted
    stale.mkdir(parents=True)
    (stale / ".assembled").write_text("1,2,3,4,5")
    folder = Path(models.resolve(models.MPNET_MODEL))
    assert folder == tmp_path / "cache" / "all-mpnet-base-v2"
    assert (folder / "config.json").is_file() and not (folder / "desktop.ini").exists()
    model = models.load_model(models.MPNET_MODEL, get_task("sst2"))
    assert model.config.num_labels == 2
    assert models.load_tokenizer(models.MPNET_MODEL)("a fine film")["input_ids"]
    stamp = (folder / ".assembled").stat().st_mtime_ns
    assert Path(models.resolve(models.MPNET_MODEL)) == folder
    assert (folder / ".assembled").stat().st_mtime_ns == stamp, "assembled a second time"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["all-mpnet-base-v2"], "a temporary folder was left"


def test_a_damaged_piece_is_refused_and_leaves_no_folder(pieces, tmp_path):
    pieces[2].write_bytes(pieces[2].read_bytes()[:-100])
    with pytest.raises(DCSError, match="do not make a valid zip"):
        models.resolve(models.MPNET_MODEL)
    assert not any((tmp_path / "cache").iterdir())


def test_missing_packages_are_named_with_the_install_command(monkeypatch):
    real = importlib.metadata.distribution

    def distribution(name):
        if name == models.MPNET_PARTS[3]:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name) if name not in models.MPNET_PARTS else FakeDistribution(name)

    class FakeDistribution:
        def __init__(self, name):
            number = int(name[-3:])
            self.files = [FakeFile(f"all-mpnet-base-v2.zip.{number:03d}")]

    class FakeFile:
        def __init__(self, name):
            self.name = name

        def locate(self):
            return Path("/nonexistent") / self.name

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    with pytest.raises(DCSError) as err:
        models.mpnet_parts()
    assert models.MPNET_PARTS[3] in str(err.value) and 'pip install -e ".[mpnet]"' in str(err.value)
    assert models.MPNET_PARTS[0] not in str(err.value)
