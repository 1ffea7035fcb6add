"""I5, B6: feature extraction on a Dask cluster (two worker processes) into a Zarr array.

The result equals single-process extraction; a worker killed mid-run and a chunk left half
written are recovered with every chunk recorded done once; bad images do not stop the run; the
command line takes --scheduler.
"""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import write_pngs

keras = pytest.importorskip("keras")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from distributed import Client, LocalCluster, WorkerPlugin  # noqa: E402

from patchwork_widget import cli  # noqa: E402
from patchwork_widget.images.extract import extract_features  # noqa: E402
from patchwork_widget.options.backbones import Backbone  # noqa: E402

CHUNK = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster_images")
    paths = write_pngs(folder, 200, size=32, seed=5)
    bad = folder / "bad.png"
    bad.write_bytes(b"not an image" * 5)
    # a bad file in chunk 1, a missing one in the last chunk
    return paths[:20] + [str(bad)] + paths[20:] + [str(folder / "missing.png")]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inp, x).save(path)
    return str(path)


@pytest.fixture(scope="module")
def reference(files, model_path):
    model = keras.saving.load_model(model_path, compile=False)
    return extract_features(files, model, imshape=(16, 16), progress=False)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def records(zarr_path):
    """Chunk number of every completion record file, valid or not, in name order."""
    done = Path(zarr_path) / "extraction" / "done"
    return sorted(int(p.name.split(".")[0]) for p in done.iterdir()) if done.is_dir() else []


def run(files, model_path, client, out, **kwargs):
    return extract_features(files, model_path, client=client, zarr_path=str(out),
                            chunk_rows=CHUNK, batch_size=6, progress=False, **kwargs)


def assert_equal_to(result, reference):
    assert isinstance(result.features, zarr.Array)
    np.testing.assert_allclose(result.features[:], reference.features, atol=1e-5)
    assert result.errors == reference.errors
    np.testing.assert_array_equal(result.failed, reference.failed)


def test_equals_single_process_extraction_and_a_rerun_computes_nothing(
        files, model_path, reference, client, tmp_path):
    out = tmp_path / "features.zarr"
    result = run(files, model_path, client, out)
    assert_equal_to(result, reference)
    assert [p for p, _ in result.errors] == [files[20], files[-1]]  # bad files did not stop it
    assert result.features.shape == (202, 6) and result.features.chunks == (CHUNK, 6)
    n_chunks = -(-len(files) // CHUNK)
    assert records(out) == list(range(n_chunks))  # each chunk recorded done exactly once
    lines = (out / "extraction" / "errors.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == [20, 201]
    # both workers took chunks
    workers = {json.loads(p.read_text())["worker"]
               for p in (out / "extraction" / "done").iterdir()}
    assert len(workers) == 2
    again = run(files, model_path, client, out)
    assert records(out) == list(range(n_chunks))
    assert_equal_to(again, reference)


class KillAfterChunks(WorkerPlugin):
    """Kills its worker process (SIGKILL) as the worker finishes its ``after``-th chunk:
    the chunk's features and record are written, the scheduler has not heard of it yet."""

    def __init__(self, flag, after):
        self.flag, self.after, self.seen = str(flag), after, 0

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and str(key).startswith("patchwork-extract-"):
            self.seen += 1
            if self.seen == self.after:
                try:  # only one worker, once: the restarted one finds the flag
                    os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    return
                os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(
        files, model_path, reference, client, tmp_path):
    out = tmp_path / "features.zarr"
    flag = tmp_path / "killed"
    pids_before = set(client.run(os.getpid).values())
    client.register_plugin(KillAfterChunks(flag, after=3), name="kill-after-chunks")
    try:
        result = run(files, model_path, client, out)
    finally:
        client.unregister_worker_plugin("kill-after-chunks")
    assert flag.exists()  # a worker died mid-run
    client.wait_for_workers(2)
    assert set(client.run(os.getpid).values()) != pids_before  # the nanny replaced it
    n_chunks = -(-len(files) // CHUNK)
    assert records(out) == list(range(n_chunks))
    assert_equal_to(result, reference)
    again = run(files, model_path, client, out)  # and a rerun finds everything done
    assert records(out) == list(range(n_chunks))
    assert_equal_to(again, reference)


def test_a_half_written_chunk_is_computed_again_and_only_it(
        files, model_path, reference, client, tmp_path):
    out = tmp_path / "features.zarr"
    run(files, model_path, client, out)
    done = out / "extraction" / "done"
    # chunk 2: its worker died after writing part of its rows, before its record
    array = zarr.open_array(str(out), mode="r+")
    array[2 * CHUNK:2 * CHUNK + 5] = 7.0
    for p in done.glob("00000002.*.json"):
        p.unlink()
    # chunk 5: its worker died while writing its record (cut short)
    (record,) = done.glob("00000005.*.json")
    record.write_text(record.read_text()[:25])
    result = run(files, model_path, client, out)
    assert_equal_to(result, reference)
    n_chunks = -(-len(files) // CHUNK)
    assert records(out) == sorted(list(range(n_chunks)) + [5])  # 5: the cut record + a new one


def test_resume_checks_the_extraction_and_restart_starts_over(
        files, model_path, reference, client, tmp_path):
    out = tmp_path / "features.zarr"
    run(files[:40], model_path, client, out)
    with pytest.raises(ValueError, match="resume=False"):
        run(files, model_path, client, out)
    result = run(files, model_path, client, out, resume=False)
    assert_equal_to(result, reference)
    assert records(out) == list(range(-(-len(files) // CHUNK)))


def test_bad_arguments_are_named(files, model_path, client, tmp_path):
    out = str(tmp_path / "f.zarr")
    with pytest.raises(ValueError, match="client"):
        extract_features(files, model_path, zarr_path=out)
    with pytest.raises(ValueError, match="chunk_rows=8 applies to an extraction on a Dask"):
        extract_features(files, model_path, chunk_rows=8)
    with pytest.raises(ValueError, match="memmap_path"):
        extract_features(files, model_path, client=client, zarr_path=out,
                         memmap_path=tmp_path / "f.npy")
    with pytest.raises(TypeError, match=r"model.save\('extractor.keras'\)"):
        extract_features(files, keras.saving.load_model(model_path), client=client,
                         zarr_path=out)
    with pytest.raises(ValueError, match="random weights"):
        extract_features(files, Backbone("mobilenet_v3_small", weights=None), client=client,
                         zarr_path=out)
    with pytest.raises(ValueError, match="chunk_rows must be an int >= 1; got 0"):
        extract_features(files, model_path, client=client, zarr_path=out, chunk_rows=0)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="holding other files"):
        extract_features(files, model_path, client=client, zarr_path=tmp_path / "folder")
    assert (tmp_path / "folder" / "keep.txt").read_text() == "mine"


def test_command_line_with_scheduler(files, model_path, reference, client, tmp_path, capsys):
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(files) + "\n")
    out = tmp_path / "cli.zarr"
    argv = ["extract", "--model", model_path, "--files", str(listing), "--out", str(out),
            "--scheduler", client.scheduler.address, "--chunk-rows", str(CHUNK),
            "--no-progress"]
    assert cli.main(argv) == 0
    said = capsys.readouterr().out
    assert "202 rows, shape (202, 6), chunks of 16 rows" in said and "unreadable: 2" in said
    np.testing.assert_allclose(zarr.open_array(str(out), mode="r")[:], reference.features,
                               atol=1e-5)
    assert cli.main(argv + ["--shard", "0/2"]) == 2
    assert "--shard splits the list by hand" in capsys.readouterr().err
    closed = ["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"]
    assert cli.main(argv[:7] + closed) == 1
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


@pytest.fixture
def s3_bucket(monkeypatch):
    """A real S3 server (moto's) on loopback with one bucket; the fsspec options to reach it."""
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket="features-bucket")
        options = {"key": "testing", "secret": "testing",
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        fs = s3fs.S3FileSystem(**options)
        yield options, fs
    finally:
        server.stop()


def test_features_written_into_a_bucket(files, model_path, reference, client, s3_bucket):
    options, fs = s3_bucket
    url = "s3://features-bucket/project/features.zarr"
    result = run(files[:50], model_path, client, url, storage_options=options)
    np.testing.assert_allclose(result.features[:], reference.features[:50], atol=1e-5)
    assert [p for p, _ in result.errors] == [files[20]]
    done = sorted(fs.ls("features-bucket/project/features.zarr/extraction/done"))
    assert [int(p.rsplit("/", 1)[1].split(".")[0]) for p in done] == [0, 1, 2, 3]
    fs.rm(done[1])  # chunk 1 not recorded: a rerun computes it, and only it
    run(files[:50], model_path, client, url, storage_options=options)
    assert len(fs.ls("features-bucket/project/features.zarr/extraction/done")) == 4


def test_image_urls_are_read_with_the_clients_storage_options(
        files, model_path, reference, client, s3_bucket, tmp_path):
    """The workers have no AWS settings: the storage options the client was configured with
    travel with the tasks."""
    from patchwork_widget.images.storage import configure_storage, current_storage

    options, fs = s3_bucket
    for k in range(20):
        fs.put(files[k], f"features-bucket/images/{k}.png")
    urls = [f"s3://features-bucket/images/{k}.png" for k in range(20)]
    before = current_storage().storage_options
    configure_storage(options, cache_folder=tmp_path / "cache")
    try:
        result = run(urls, model_path, client, tmp_path / "from_bucket.zarr")
    finally:
        configure_storage(before)
    assert result.errors == []
    np.testing.assert_allclose(result.features[:], reference.features[:20], atol=1e-5)


def test_relative_paths_mean_the_clients_folder(files, model_path, reference, client,
                                                tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the workers were started in another folder
    relative = [os.path.relpath(f) for f in files[:40]]
    result = run(relative, model_path, client, "relative.zarr")
    np.testing.assert_allclose(result.features[:], reference.features[:40], atol=1e-5)
    assert [p for p, _ in result.errors] == [relative[20]]  # as given
    assert (tmp_path / "relative.zarr" / "extraction" / "errors.jsonl").is_file()
