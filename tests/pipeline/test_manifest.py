import pytest

from unsamv2.errors import InputError
from unsamv2.pipeline import manifest as mf


def _tree(root):
    for rel in ["b/2.png", "b/1.jpg", "a.png", "c/d/e.JPEG", "notes.txt", ".hidden.png", "z.webp"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_listing_is_sorted_recursive_and_filters_names(tmp_path):
    _tree(tmp_path)
    keys = [k for k, _ in mf.iter_inputs(str(tmp_path))]
    assert keys == ["a.png", "b/1.jpg", "b/2.png", "c/d/e.JPEG", "notes.txt", "z.webp"]


def test_plan_is_deterministic_and_sharded(tmp_path):
    _tree(tmp_path / "in")
    info = mf.plan_manifest(str(tmp_path / "in"), str(tmp_path / "out1"), shard_size=2)
    assert (info.num_images, info.num_shards, info.skipped_non_images) == (5, 3, 1)
    assert [info.shard_rows(s) for s in range(3)] == [2, 2, 1]
    again = mf.plan_manifest(str(tmp_path / "in"), str(tmp_path / "out2"), shard_size=2)
    assert again == info
    for s in range(3):
        assert mf.read_shard_entries(str(tmp_path / "out1"), s).equals(mf.read_shard_entries(str(tmp_path / "out2"), s))
    first = mf.read_shard_entries(str(tmp_path / "out1"), 0).to_pylist()
    assert [r["position"] for r in first] == [0, 1] and first[0]["image_uri"].endswith("a.png")
    assert first[0]["image_id"] == mf.image_id_for("a.png")  # id depends on the relative key only


def test_ensure_reuses_and_refuses_a_different_plan(tmp_path):
    _tree(tmp_path / "in")
    out = str(tmp_path / "out")
    info = mf.ensure_manifest(str(tmp_path / "in"), out, 2)
    (tmp_path / "in" / "new.png").write_bytes(b"x")  # a later file does not change the persisted plan
    assert mf.ensure_manifest(str(tmp_path / "in"), out, 2) == info
    with pytest.raises(InputError, match="shard size 2"):
        mf.ensure_manifest(str(tmp_path / "in"), out, 3)


def test_list_file_keeps_missing_entries(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# images\n/data/a.png\n\n/data/missing.jpg\n")
    info = mf.plan_manifest(str(lst), str(tmp_path / "out"), 10)
    assert info.num_images == 2
    assert [r["image_uri"] for r in mf.read_shard_entries(str(tmp_path / "out"), 0).to_pylist()] == ["/data/a.png", "/data/missing.jpg"]


def test_bad_input_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        mf.plan_manifest(str(tmp_path / "nope"), str(tmp_path / "out"), 2)
    with pytest.raises(InputError, match="at least 1"):
        mf.plan_manifest(str(tmp_path), str(tmp_path / "out"), 0)


@pytest.mark.integration
def test_s3_listing_streams_in_key_order(s3_bucket):
    from unsamv2.data import storage

    for key in ["imgs/b.png", "imgs/a.png", "imgs/sub/c.jpg", "other/x.png"]:
        storage.write_bytes(f"{s3_bucket}/{key}", b"x")
    got = list(mf.iter_inputs(f"{s3_bucket}/imgs"))
    assert got == [("a.png", f"{s3_bucket}/imgs/a.png"), ("b.png", f"{s3_bucket}/imgs/b.png"),
                   ("sub/c.jpg", f"{s3_bucket}/imgs/sub/c.jpg")]
