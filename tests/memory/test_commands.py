"""`jepaworld memory build | query | stats` on the tiny dataset and run: counts agree, a stored
frame finds itself, rebuilds are refused without --append, bad files are named with exit code 2."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from jepaworld.cli import main
from jepaworld.data.episodes import EpisodeStore, sha256_file
from jepaworld.memory.commands import (
    TILE,
    MemoryBuildConfig,
    MemoryQueryConfig,
    build_memory,
    query_memory,
)
from jepaworld.models.world_model import WEIGHTS
from jepaworld.train import latest_checkpoint
from tests.conftest import copy_dir


@pytest.fixture(scope="module")
def built_db(tiny_data: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("memory") / "m.db"
    build_memory(MemoryBuildConfig(run=tiny_run, data=tiny_data, db=db, batch_size=64))
    return db


def frame_png(data: Path, episode: int, step: int, path: Path) -> Path:
    Image.fromarray(EpisodeStore(data).episode(episode).frames[step]).save(path)
    return path


def test_build_then_stats_counts_match_frames(
    built_db: Path, tiny_data: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    episodes = EpisodeStore(tiny_data)
    sha = sha256_file(latest_checkpoint(tiny_run) / WEIGHTS)
    assert main(["memory", "stats", "--db", str(built_db), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == sum(episodes.lengths)
    assert list(stats["models"]) == [sha]
    assert stats["models"][sha]["entries"] == sum(episodes.lengths)
    assert stats["models"][sha]["episodes"] == len(episodes)
    assert stats["models"][sha]["dim"] == 16 and stats["models"][sha]["datasets"] == 1
    assert stats["integrity"] == "ok" and stats["file_bytes"] > 0
    assert main(["memory", "stats", "--db", str(built_db)]) == 0
    text = capsys.readouterr().out
    assert f"checkpoint {sha[:12]}" in text and "integrity ok" in text


def test_every_and_append_store_only_missing_frames(
    tiny_data: Path, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lengths = EpisodeStore(tiny_data).lengths
    db = tmp_path / "sub" / "m.db"
    cfg = MemoryBuildConfig(run=tiny_run, data=tiny_data, db=db, every=4, thumbnail_size=0)
    first = build_memory(cfg)
    assert first["inserted"] == sum(len(range(0, n, 4)) for n in lengths)
    args = ["memory", "build", "--run", str(tiny_run), "--data", str(tiny_data), "--db", str(db)]
    assert main([*args, "--append"]) == 0
    assert f"stored {sum(lengths) - first['inserted']} frames" in capsys.readouterr().out
    assert build_memory(MemoryBuildConfig(**{**vars(cfg), "append": True}))["inserted"] == 0


def test_query_with_a_stored_frame_finds_it_first(
    built_db: Path, tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    image = frame_png(tiny_data, 2, 10, tmp_path / "q.png")
    sheet = tmp_path / "sheet.png"
    result = query_memory(MemoryQueryConfig(db=built_db, image=image, run=tiny_run, k=5, out=sheet))
    first = result["matches"][0]
    assert (first["episode"], first["step"]) == (2, 10)
    assert first["distance"] < 1e-3
    distances = [m["distance"] for m in result["matches"]]
    assert len(distances) == 5 and distances == sorted(distances)
    with Image.open(sheet) as im:
        assert im.size == (TILE + 8 + 5 * (TILE + 2) - 2, TILE)


def test_query_cli_prints_the_nearest(
    built_db: Path, tiny_data: Path, tiny_run: Path, tmp_path: Path, capsys
) -> None:
    big = Image.open(frame_png(tiny_data, 1, 3, tmp_path / "q.png")).resize((96, 128))
    big.save(tmp_path / "big.png")  # another size and aspect: scaled and centre-cropped
    argv = ["memory", "query", "--db", str(built_db), "--run", str(tiny_run), "-k", "3"]
    assert main([*argv, "--image", str(tmp_path / "q.png")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("3 nearest of") and rows[2].split()[1:3] == ["1", "3"]
    assert main([*argv, "--image", str(tmp_path / "big.png")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_rebuild_without_append_is_refused(
    built_db: Path, tiny_data: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = built_db.read_bytes()
    args = ["memory", "build", "--run", str(tiny_run), "--data", str(tiny_data)]
    assert main([*args, "--db", str(built_db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jepaworld memory build: error:")
    assert str(built_db) in err and "--append" in err
    assert built_db.read_bytes() == before


def test_bad_memory_files_are_named_with_exit_code_2(
    built_db: Path, tiny_data: Path, tiny_run: Path, tmp_path: Path, capsys
) -> None:
    image = frame_png(tiny_data, 0, 0, tmp_path / "q.png")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    missing = tmp_path / "missing.db"
    for db in (missing, garbage, foreign):
        for cmd in (["query", "--image", str(image), "--run", str(tiny_run)], ["stats"]):
            assert main(["memory", *cmd, "--db", str(db)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"jepaworld memory {cmd[0]}: error: {db}")
    assert not missing.exists()  # reading never creates a memory
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    argv = ["memory", "query", "--db", str(built_db), "--run", str(tiny_run)]
    assert main([*argv, "--image", str(broken)]) == 2
    assert f"{broken}: cannot be read as an image" in capsys.readouterr().err


def test_query_with_another_checkpoint_names_both_hashes(
    built_db: Path, tiny_data: Path, tiny_run: Path, tmp_path: Path, capsys
) -> None:
    other = tmp_path / "other_run"
    shutil.copytree(tiny_run, other)
    weights = latest_checkpoint(other) / WEIGHTS
    state = load_file(str(weights))
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, weights)
    built = sha256_file(latest_checkpoint(tiny_run) / WEIGHTS)
    image = frame_png(tiny_data, 0, 0, tmp_path / "q.png")
    argv = ["memory", "query", "--db", str(built_db), "--run", str(other), "--image", str(image)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert built[:12] in err and sha256_file(weights)[:12] in err and str(built_db) in err


def test_data_drawn_from_another_camera_than_the_runs_is_refused(
    tiny_data: Path, tiny_run: Path, tmp_path: Path
) -> None:
    data = copy_dir(tiny_data, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["env_config"] = {**manifest["env_config"], "view": "top-down"}
    (data / "manifest.json").write_text(json.dumps(manifest))
    db = tmp_path / "m.db"
    with pytest.raises(ValueError, match=rf"whose .* view None, while {data} was .* 'top-down'"):
        build_memory(MemoryBuildConfig(run=tiny_run, data=data, db=db))
    assert not db.exists()


def test_a_model_that_reads_proprioception_is_refused_by_name(tmp_path: Path) -> None:
    from jepaworld.memory.commands import load_checkpoint
    from jepaworld.models.world_model import WorldModel
    from tests.conftest import tiny_model

    WorldModel(tiny_model(proprio=(0, 1))).save(tmp_path / "run" / "checkpoints" / "step_00000001")
    with pytest.raises(ValueError, match=r"run: its model reads proprioception"):
        load_checkpoint(tmp_path / "run", "cpu")
