"""Transient storage failures (403, throttling, outages) never become permanent error rows: the
affected shards stay without a marker, the run fails with a summary, and a rerun completes them."""

import io
import json
import os

import boto3
import numpy as np
import pytest
from PIL import Image
from support.s3_faults import FaultyS3Proxy

from unsamv2.cli import main
from unsamv2.data import read_mask_table, storage
from unsamv2.data.images import RetryPolicy, read_image_bytes
from unsamv2.data.shards import is_complete
from unsamv2.errors import IncompleteRunError, StorageError, TransientStorageError
from unsamv2.jobs.mine import MineJob, run_mine


def _png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _job(inputs: str, out: str) -> MineJob:
    return MineJob(inputs, out, shard_size=2, miner_kind="noop", read_attempts=2)


def test_classification_of_storage_failures():
    class ClientError(Exception):
        def __init__(self, status, code):
            self.response = {"ResponseMetadata": {"HTTPStatusCode": status}, "Error": {"Code": code}}

    for status, code in [(403, "AccessDenied"), (503, "SlowDown"), (500, "InternalError"), (400, "ExpiredToken")]:
        wrapped = OSError(5, "wrapped")
        wrapped.__cause__ = ClientError(status, code)
        assert storage.is_transient(wrapped), code
    assert storage.is_transient(TimeoutError()) and storage.is_transient(ConnectionResetError())
    assert storage.is_transient(PermissionError("denied"), remote=True)
    assert not storage.is_transient(PermissionError("denied"), remote=False)  # a local chmod: permanent
    assert not storage.is_transient(FileNotFoundError()) and not storage.is_transient(ValueError())


def test_transient_reads_are_retried_then_reported_unavailable(monkeypatch):
    calls = []

    def flaky(uri):
        calls.append(uri)
        if len(calls) < 3:
            raise TransientStorageError("throttled")
        return b"bytes"

    monkeypatch.setattr(storage, "read_bytes", flaky)
    monkeypatch.setattr("unsamv2.data.images.time.sleep", lambda s: None)
    assert read_image_bytes("s3://b/x.png", RetryPolicy(attempts=4)) == (b"bytes", None, None)
    calls.clear()
    data, reason, message = read_image_bytes("s3://b/x.png", RetryPolicy(attempts=2))
    assert (data, reason, len(calls)) == (None, "unavailable", 2) and "after 2 attempts" in message
    monkeypatch.setattr(storage, "read_bytes", lambda uri: (_ for _ in ()).throw(StorageError("x does not exist")))
    assert read_image_bytes("s3://b/x.png")[1] == "missing"  # permanent: not retried, an error row


@pytest.mark.slow
def test_local_outage_leaves_shards_incomplete_and_rerun_completes(tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(6):
        (inputs / f"img{i}.png").write_bytes(_png(i))
    main(["mine", str(inputs), str(tmp_path / "clean"), "--shard-size", "2"])
    real = storage.read_bytes
    down = {"img2.png", "img3.png"}  # shard 1

    def outage(uri):
        if os.path.basename(uri) in down:
            raise TransientStorageError(f"{uri} could not be read for now (503 SlowDown)")
        return real(uri)

    monkeypatch.setattr(storage, "read_bytes", outage)
    monkeypatch.setattr("unsamv2.data.images.time.sleep", lambda s: None)
    out = str(tmp_path / "out")
    code = main(["mine", str(inputs), out, "--shard-size", "2", "--read-attempts", "2"])
    assert code != 0 and "2 images in 1 shards [1] could not be read" in capsys.readouterr().err
    assert [is_complete(out, s) for s in range(3)] == [True, False, True]
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert summary["images_unavailable"] == 2 and summary["shards_incomplete"] == [1]
    down.clear()  # storage recovers
    assert main(["mine", str(inputs), out, "--shard-size", "2"]) == 0
    assert "1 shard(s) written, 2 already complete" in capsys.readouterr().out
    assert read_mask_table(out).to_pylist() == read_mask_table(str(tmp_path / "clean")).to_pylist()


@pytest.mark.integration
def test_s3_403_for_a_while_then_recovery(s3_bucket, moto_s3, monkeypatch):
    client = boto3.client("s3", endpoint_url=moto_s3)
    bucket = s3_bucket[len("s3://"):]
    for i in range(6):
        client.put_object(Bucket=bucket, Key=f"images/img{i}.png", Body=_png(i))
    inputs = f"{s3_bucket}/images"
    run_mine(_job(inputs, f"{s3_bucket}/clean"))
    proxy = FaultyS3Proxy(moto_s3).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        proxy.deny = lambda method, path: "/images/img4" in path or "/images/img5" in path  # shard 2
        with pytest.raises(IncompleteRunError, match="2 images in 1 shards"):
            run_mine(_job(inputs, f"{s3_bucket}/out"))
        assert proxy.denied >= 2
        assert [is_complete(f"{s3_bucket}/out", s) for s in range(3)] == [True, True, False]
        proxy.deny = lambda method, path: False  # credentials fixed
        rerun = run_mine(_job(inputs, f"{s3_bucket}/out"))
    finally:
        proxy.stop()
    assert (rerun.shards_skipped, rerun.shards_written) == (2, 1)
    clean = read_mask_table(f"{s3_bucket}/clean").to_pylist()
    assert read_mask_table(f"{s3_bucket}/out").to_pylist() == clean
