"""Images at fsspec URLs (issue 27): a real S3 server (moto's, in its own process, on
loopback) and Python's ``http.server``, read through every reader as local files are.

The S3 objects (a few hundred PNG, JPEG and TIFF images, and some bad ones) are uploaded with
their Content-Type through boto3; credentials and the endpoint reach s3fs and botocore
through the standard AWS environment variables. Every result is compared with the same
files read from local disk. Nothing reaches outside the machine.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from remote_servers import HttpServer, S3Server, image_objects, write_objects
from widget_comm import browser_sends, install, replies

from patchwork_widget.datasets import load_folder
from patchwork_widget.images import ImageReadError, ReadLimits, read_array, read_image, read_images
from patchwork_widget.images import storage as storage_module
from patchwork_widget.images.extract import extract_features
from patchwork_widget.images.storage import DiskCache, configure_storage, is_url
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache, encode_thumbnail
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.session import Session
from patchwork_widget.session.storage import storage_file

N_IMAGES = 300
BUCKET = "patchwork-images"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The server, its AWS environment, and ``(urls, local paths)`` of the good and bad
    objects (the same bytes on local disk)."""
    good, bad = image_objects(N_IMAGES)
    folder = tmp_path_factory.mktemp("local")
    server = S3Server()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
                mp.delenv(name, raising=False)
            mp.setenv("AWS_CONFIG_FILE", str(folder / "no-aws-config"))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))
            for name, value in server.environ().items():
                mp.setenv(name, value)
            urls = server.upload(BUCKET, {**good, **bad})
            yield {
                "server": server,
                "good": (urls[:len(good)], write_objects(folder, good)),
                "bad": (urls[len(good):], write_objects(folder, bad)),
                "objects": {**good, **bad},
            }
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fresh_storage(tmp_path, monkeypatch):
    """Each test reads through a new process storage with its own empty disk cache."""
    monkeypatch.setattr(storage_module, "_current", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    yield


def cache_of() -> DiskCache:
    return storage_module.current_storage().cache


def test_urls_and_local_paths_are_told_apart():
    assert is_url("s3://b/x.png") and is_url("https://h/x.png") and is_url("gs://b/x.tif")
    assert not is_url("/data/x.png") and not is_url("x.png") and not is_url("file:///data/x.png")


def test_every_format_reads_from_s3_as_from_local_disk(s3):
    urls, paths = s3["good"]
    for url, path in zip(urls[:9], paths[:9]):  # PNG, JPEG, TIFF (8-bit RGB, 16-bit gray)
        np.testing.assert_array_equal(read_array(url), read_array(path))
        np.testing.assert_array_equal(read_image(url, imshape=(16, 16)),
                                      read_image(path, imshape=(16, 16)))
    assert read_array(urls[2]).dtype == np.uint16  # the 16-bit TIFF kept its values


def test_a_file_url_is_a_local_path(s3):
    path = s3["good"][1][0]
    np.testing.assert_array_equal(read_array("file://" + path), read_array(path))
    assert len(cache_of()) == 0  # nothing copied


def test_a_loop_over_s3_never_stops_at_a_bad_or_missing_object(s3):
    urls, _ = s3["good"]
    bad_urls, bad_paths = s3["bad"]
    missing = f"s3://{BUCKET}/images/nope.png"
    listed = urls[:30] + bad_urls + [missing, "s3://no-such-bucket/x.png"]
    result = read_images(listed, imshape=(16, 16), num_workers=4)
    local = read_images(s3["good"][1][:30], imshape=(16, 16))
    np.testing.assert_array_equal(result.arrays, local.arrays)
    causes = {path: err for path, err in result.errors}
    assert list(causes) == bad_urls + [missing, "s3://no-such-bucket/x.png"]
    assert all(err.path == path and path in str(err) for path, err in causes.items())
    assert causes[missing].cause == "file not found"
    assert causes["s3://no-such-bucket/x.png"].cause == "file not found"
    assert causes[bad_urls[0]].cause == "file is empty (0 bytes)"
    # the other bad objects fail as their local copies do, with the URL in place of the path
    for url, path in zip(bad_urls[1:], bad_paths[1:]):
        with pytest.raises(ImageReadError) as local_error:
            read_array(path)
        assert causes[url].cause == local_error.value.cause
    assert "over the limit of 100,000,000 pixels" in causes[bad_urls[3]].cause  # the bomb


def test_an_object_over_the_size_limit_is_refused_before_it_is_downloaded(s3):
    url = s3["good"][0][0]
    size = len(s3["objects"]["images/img_0000.png"])
    with pytest.raises(ImageReadError) as err:
        read_array(url, limits=ReadLimits(max_bytes=size - 1))
    assert err.value.path == url
    assert err.value.cause == (f"file is {size:,} bytes, over the limit of {size - 1:,} "
                               "(ReadLimits.max_bytes)")
    cache = cache_of()
    assert len(cache) == 0 and not any(cache.folder.iterdir())  # not a byte was written


def test_a_second_visit_reads_the_disk_cache_not_the_server(s3):
    server = s3["server"]
    client = server.client()
    key = "images/img_0003.png"
    client.put_object(Bucket=BUCKET, Key="copy/once.png", Body=s3["objects"][key],
                      ContentType="image/png")
    first = read_array(f"s3://{BUCKET}/copy/once.png")
    client.delete_object(Bucket=BUCKET, Key="copy/once.png")
    np.testing.assert_array_equal(read_array(f"s3://{BUCKET}/copy/once.png"), first)


def test_the_disk_cache_stays_within_its_size_and_drops_the_least_recently_used(s3, tmp_path):
    urls, _ = s3["good"]
    sizes = [len(s3["objects"][u.split("/", 3)[3]]) for u in urls[:40]]
    limit = sum(sizes[:10])
    storage = configure_storage(cache_folder=tmp_path / "small", cache_bytes=limit)
    for url in urls[:40]:
        read_array(url)
        assert storage.cache.total_bytes <= limit
    assert storage.cache.lookup(urls[0]) is None and storage.cache.lookup(urls[39]) is not None
    on_disk = sum(p.stat().st_size for p in (tmp_path / "small").iterdir())
    assert on_disk == storage.cache.total_bytes
    # a restart sees the same files in the same order
    again = DiskCache(tmp_path / "small", limit)
    assert again.total_bytes == storage.cache.total_bytes and len(again) == len(storage.cache)


def test_a_cache_smaller_than_one_object_still_serves_a_page_read_together(s3, tmp_path):
    urls, paths = s3["good"]
    storage = configure_storage(cache_folder=tmp_path / "tiny", cache_bytes=0)
    options = DisplayOptions(size=(32, 32))
    got = ThumbnailCache(options, workers=8).get_many(urls[:24])
    assert got == [encode_thumbnail(p, options) for p in paths[:24]]
    assert storage.cache.total_bytes == 0 and not any((tmp_path / "tiny").iterdir())


def test_thumbnails_of_s3_objects_equal_those_of_local_files(s3):
    urls, paths = s3["good"]
    bad_urls, _ = s3["bad"]
    options = DisplayOptions(size=(64, 64))
    got = ThumbnailCache(options).get_many(urls[:24] + bad_urls)
    assert got[:24] == [encode_thumbnail(p, options) for p in paths[:24]]
    assert [type(e) for e in got[24:]] == [ImageReadError] * 4
    assert [e.path for e in got[24:]] == bad_urls


def test_a_session_and_its_widget_on_s3_paths(s3, tmp_path, monkeypatch, caplog):
    """storage_options given once: kept beside the outfile without the secrets (and said
    so); the widget's thumbnails arrive, unreadable objects are recorded with their URL;
    a reopen without storage_options reads with the kept ones."""
    install(monkeypatch)
    from patchwork_widget.widget import PatchworkWidget

    server = s3["server"]
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # only what storage_options say
    options = {"endpoint_url": server.endpoint, "key": "testing-key",
               "secret": "testing-secret", "client_kwargs": {"region_name": "us-east-1"}}
    urls = s3["good"][0][:36] + s3["bad"][0]
    df = prep_label_dataframe(urls, ["cat", "dog"])
    outfile = tmp_path / "labels.csv"
    with caplog.at_level(logging.WARNING, "patchwork_widget.session.storage"):
        widget = PatchworkWidget(df, outfile=outfile, imshape=(48, 48), seed=0,
                                 storage_options=options)
    assert "key, secret hold secrets and are not kept" in caplog.text
    kept = json.loads(storage_file(outfile).read_text())
    assert kept == {"endpoint_url": server.endpoint,
                    "client_kwargs": {"region_name": "us-east-1"}}
    try:
        browser_sends(widget.labeler, {"type": "thumbs", "id": 1, "rows": list(range(40))})
        sent = {content["row"]: (content, buffers) for content, buffers in
                replies(widget.labeler) if content.get("type") == "thumb"}
        assert sorted(sent) == list(range(40))
        options48 = DisplayOptions(size=(48, 48))
        for row in range(36):
            assert bytes(sent[row][1][0]) == encode_thumbnail(s3["good"][1][row], options48)
        assert all("error" in sent[row][0] for row in range(36, 40))
        unreadable = widget.session.unreadable
        assert unreadable["filepath"].tolist() == s3["bad"][0]
        browser_sends(widget.labeler, {"type": "full", "id": 3, "row": 3})
        full = [(c, b) for c, b in replies(widget.labeler) if c.get("type") == "full"][-1]
        assert (full[0]["width"], full[0]["height"]) == (32, 32) and len(full[1]) == 1
        browser_sends(widget.labeler, {"type": "annotate", "id": 2, "rows": [0],
                                       "changes": {"cat": 1}})
        assert widget.session.store.wait_exported(10)
    finally:
        widget.close()
    for text in (outfile.read_text(), storage_file(outfile).read_text()):
        assert "testing-secret" not in text and "testing-key" not in text
    journal = [p for p in tmp_path.iterdir() if "journal" in p.name or p.suffix == ".db"]
    assert all(b"testing-secret" not in p.read_bytes() for p in journal if p.is_file())

    # reopened in a "new process": the kept endpoint, the secrets from the environment
    monkeypatch.setattr(storage_module, "_current", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    session = Session.open(outfile)
    try:
        assert storage_module.current_storage().storage_options == kept
        assert session.df.at[0, "cat"] == 1.0
        assert session.thumbnail(5) == encode_thumbnail(s3["good"][1][5],
                                                        session.thumbnails.options)
    finally:
        session.close()


def test_storage_options_are_checked_before_anything_opens(tmp_path):
    df = prep_label_dataframe(["s3://b/x.png"], ["cat"])
    with pytest.raises(ValueError, match="storage_options must be a dict"):
        Session.open(df, outfile=tmp_path / "l.csv", storage_options="anon")
    assert not (tmp_path / "l.csv").exists()


def test_features_are_extracted_from_s3_as_from_local_disk(s3):
    urls, paths = s3["good"]
    bad_urls, _ = s3["bad"]

    def extractor(batch: np.ndarray) -> np.ndarray:
        return batch.mean(axis=(1, 2))

    remote = extract_features(urls[:60] + bad_urls, extractor, imshape=(16, 16),
                              batch_size=16, progress=False)
    local = extract_features(paths[:60], extractor, imshape=(16, 16), batch_size=16,
                             progress=False)
    np.testing.assert_array_equal(remote.features[:60], local.features)
    assert [p for p, _ in remote.errors] == bad_urls
    assert not remote.features[60:].any()


def test_the_cli_extracts_features_of_s3_urls(s3, tmp_path):
    from patchwork_widget.cli import main

    urls, _ = s3["good"]
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(urls[:20]) + "\n")
    model = tmp_path / "mean.keras"
    keras = pytest.importorskip("keras")
    inputs = keras.Input((16, 16, 3))
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs)).save(model)
    out = tmp_path / "feats.npy"
    code = main(["extract", "--model", str(model), "--files", str(listing), "--out", str(out),
                 "--no-progress", "--storage-options",
                 json.dumps({"endpoint_url": s3["server"].endpoint})])
    assert code == 0
    expected = read_images(s3["good"][1][:20], imshape=(16, 16)).arrays.mean(axis=(1, 2))
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)


def test_the_tf_data_pipeline_trains_on_s3_images(s3):
    tf = pytest.importorskip("tensorflow")
    import keras

    from patchwork_widget.images import BadFiles
    from patchwork_widget.images.pipeline import dataset, decoder_kinds

    urls, paths = s3["good"]
    bad_urls, _ = s3["bad"]
    assert set(decoder_kinds(urls[:3] + ["file:///x.png"])) == {2}  # all through read_image
    remote, _ = dataset(urls[:48], imshape=(16, 16), batch_size=16, shuffle=False)
    local, _ = dataset(paths[:48], imshape=(16, 16), batch_size=16, shuffle=False)
    np.testing.assert_allclose(np.concatenate(list(remote.as_numpy_iterator())),
                               np.concatenate(list(local.as_numpy_iterator())), atol=2e-2)

    files = urls[:64] + bad_urls
    ys = np.random.default_rng(0).integers(0, 2, (len(files), 2)).astype(np.float32)
    bad = BadFiles()
    ds, steps = dataset(files, ys, imshape=(16, 16), batch_size=16, bad_files=bad,
                        augment={"flip_left_right": True})
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert sorted(p for p, _ in bad.items()) == sorted(bad_urls)
    assert tf.is_tensor(model(np.zeros((1, 16, 16, 3), np.float32)))


@pytest.fixture
def http_server(s3, tmp_path):
    folder = tmp_path / "served"
    write_objects(folder, s3["objects"])
    server = HttpServer(folder, delay=0.05)
    yield server
    server.stop()


def test_http_urls_read_concurrently_and_a_second_visit_makes_no_request(s3, http_server):
    names = list(s3["objects"])[:24]
    urls = [f"{http_server.url}/{n}" for n in names]
    local = s3["good"][1][:24]
    options = DisplayOptions(size=(64, 64))
    got = ThumbnailCache(options).get_many(urls)
    assert got == [encode_thumbnail(p, options) for p in local]
    assert http_server.max_in_flight > 1  # the page's objects were fetched together
    served = http_server.requests
    again = ThumbnailCache(options).get_many(urls)  # a new view: its memory cache is empty
    assert again == got and http_server.requests == served  # all from the disk cache
    with pytest.raises(ImageReadError) as err:
        read_array(f"{http_server.url}/images/nope.png")
    assert err.value.cause == "file not found"


def test_http_urls_through_the_pipeline_and_extraction(s3, http_server):
    pytest.importorskip("tensorflow")
    from patchwork_widget.images.pipeline import dataset

    names = [n for n in s3["objects"] if n.startswith("images/")][:32]
    urls = [f"{http_server.url}/{n}" for n in names] + [f"{http_server.url}/bad/text.png"]
    ds, _ = dataset(urls, imshape=(16, 16), batch_size=8, shuffle=False)
    images = np.concatenate(list(ds.as_numpy_iterator()))
    local = read_images(s3["good"][1][:32], imshape=(16, 16)).arrays
    np.testing.assert_allclose(images, local, atol=2e-2)
    feats = extract_features(urls, lambda b: b.mean(axis=(1, 2)), imshape=(16, 16),
                             progress=False)
    np.testing.assert_allclose(feats.features[:32], local.mean(axis=(1, 2)), atol=1e-6)
    assert [p for p, _ in feats.errors] == urls[32:]


def test_label_tables_keep_urls_as_given(s3):
    urls, _ = s3["good"]
    df = prep_label_dataframe(urls[:3], ["cat"])
    assert df["filepath"].tolist() == urls[:3]


def test_a_server_that_does_not_say_the_size_is_read_within_the_limit(s3, tmp_path):
    folder = tmp_path / "served"
    write_objects(folder, s3["objects"])
    server = HttpServer(folder, hide_length=True)
    try:
        name = "images/img_0000.png"
        url = f"{server.url}/{name}"
        np.testing.assert_array_equal(read_array(url), read_array(s3["good"][1][0]))
        size = len(s3["objects"][name])
        other = f"{server.url}/images/img_0003.png"
        with pytest.raises(ImageReadError) as err:
            read_array(other, limits=ReadLimits(max_bytes=size // 2))
        assert err.value.path == other
        assert err.value.cause == (f"file is over the limit of {size // 2:,} bytes "
                                   "(ReadLimits.max_bytes; its size was not known before "
                                   "reading)")
        assert cache_of().lookup(other) is None
        assert not [p for p in cache_of().folder.iterdir() if p.name.startswith(".part-")]
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# load_folder on a prefix of a bucket: listed as the same objects in a local folder are.

FOLDER_BUCKET = "patchwork-folders"


@pytest.fixture(scope="module")
def s3_folder(s3, tmp_path_factory):
    """Objects under ``survey/`` (images at three depths, hidden names, a too-large image,
    a text file, a folder marker) and a sibling prefix ``survey-other/``; the same names in
    a local folder. Yields ``(url of survey, local folder, objects)``."""
    images = s3["objects"]
    big, _ = image_objects(1, size=256, seed=1)
    objects = {
        "survey/b.png": images["images/img_0000.png"],
        "survey/a.JPG": images["images/img_0001.jpg"],
        "survey/sub/c.tif": images["images/img_0002.tif"],
        "survey/sub/deeper/d.png": images["images/img_0003.png"],
        "survey/big.png": big["images/img_0000.png"],
        "survey/.hidden.png": images["images/img_0006.png"],
        "survey/.cache/e.png": images["images/img_0009.png"],
        "survey/sub/.thumbs/f.png": images["images/img_0012.png"],
        "survey/notes.txt": b"not an image\n",
        "survey-other/x.png": images["images/img_0015.png"],
    }
    s3["server"].upload(FOLDER_BUCKET, objects)
    s3["server"].client().put_object(Bucket=FOLDER_BUCKET, Key="survey/empty/", Body=b"")
    local = tmp_path_factory.mktemp("folder")
    write_objects(local, objects)
    (local / "survey" / "empty").mkdir()
    return f"s3://{FOLDER_BUCKET}/survey", local / "survey", objects


def relative(paths, root: str) -> list[str]:
    return [p[len(root.rstrip("/")) + 1:] for p in paths]


@pytest.mark.parametrize("kwargs", [
    {}, {"recursive": False}, {"extensions": [".png"]}, {"max_bytes": 50_000},
    {"max_images": 2}, {"extensions": ["tif"], "classes": ["cat"]},
], ids=["all", "flat", "png", "max_bytes", "max_images", "tif"])
def test_load_folder_lists_a_prefix_as_the_same_local_folder(s3_folder, kwargs, caplog):
    url, local, _ = s3_folder
    kwargs = dict(kwargs)
    classes = kwargs.pop("classes", ["cat", "dog"])
    with caplog.at_level(logging.WARNING, "patchwork_widget.datasets"):
        remote = load_folder(url, classes, **kwargs)
        expected = load_folder(local, classes, **kwargs)
    assert all(p.startswith(url + "/") for p in remote["filepath"])
    assert relative(remote["filepath"], url) == relative(expected["filepath"], str(local))
    assert remote.drop(columns="filepath").equals(expected.drop(columns="filepath"))
    if "max_bytes" in kwargs:
        assert "big.png" not in relative(remote["filepath"], url)
        assert f"1 file(s) in {url} are larger than max_bytes=50000" in caplog.text
    assert len(cache_of()) == 0  # listed, not downloaded


def test_load_folder_of_a_prefix_without_a_matching_image(s3_folder):
    url, local, _ = s3_folder
    for folder in (url, local):  # no TIFF on the top level, the same message
        with pytest.raises(ValueError, match="holds no image with extension .tif$") as err:
            load_folder(folder, extensions=["tif"], recursive=False)
        assert repr(str(folder)) in str(err.value)


def test_load_folder_of_a_whole_bucket_and_a_trailing_slash(s3_folder):
    url, _, objects = s3_folder
    whole = load_folder(f"s3://{FOLDER_BUCKET}")["filepath"].tolist()
    assert whole == sorted(f"s3://{FOLDER_BUCKET}/{name}" for name in objects
                           if name.endswith((".png", ".JPG", ".tif"))
                           and "/." not in name)
    assert load_folder(url + "/")["filepath"].tolist() == load_folder(url)["filepath"].tolist()


def test_load_folder_of_a_prefix_sees_objects_added_since_the_last_listing(s3):
    png = s3["objects"]["images/img_0000.png"]
    s3["server"].upload("patchwork-growing", {"growing/one.png": png})
    url = "s3://patchwork-growing/growing"
    for recursive in (True, False):
        assert len(load_folder(url, recursive=recursive)) == 1
    s3["server"].client().put_object(Bucket="patchwork-growing", Key="growing/two.png",
                                     Body=png)
    for recursive in (True, False):
        listed = load_folder(url, recursive=recursive)
        assert relative(listed["filepath"], url) == ["one.png", "two.png"]


def test_load_folder_on_a_bucket_names_the_url_in_its_errors(s3_folder, s3):
    url, _, _ = s3_folder
    for missing in ("s3://no-such-bucket/survey", f"s3://{FOLDER_BUCKET}/nowhere"):
        for recursive in (True, False):
            with pytest.raises(ValueError) as err:
                load_folder(missing, recursive=recursive)
            assert str(err.value).startswith(
                f"folder must be an existing folder or prefix; nothing is listed at "
                f"{missing!r}")
    with pytest.raises(ValueError, match=r"'s3://no-such-bucket/survey' \(.*bucket does not"):
        load_folder("s3://no-such-bucket/survey")
    with pytest.raises(ValueError, match="names a file, not a folder or prefix"):
        load_folder(url + "/a.JPG")
    with pytest.raises(ValueError, match="holds no image with extension"):
        load_folder(url + "/empty")  # only a folder marker below it
    for http in ("http://127.0.0.1:1/images", "https://example.org/images/"):
        with pytest.raises(ValueError, match=f"folder {http!r}: http(s)?:// has no listing"):
            load_folder(http)
    with pytest.raises(ValueError, match=r"folder 's3://' cannot be listed \(Cannot traverse"):
        load_folder("s3://")
    with pytest.raises(ValueError, match=r"folder 'nosuch://b/x': cannot open nosuch:// URLs"):
        load_folder("nosuch://b/x")
    with pytest.raises(ValueError, match="storage_options must be a dict"):
        load_folder(url, storage_options="anon")
    with pytest.raises(ValueError, match="folder 's3://.*storage_options do not fit"):
        load_folder(url, storage_options={"no_such_option": 1})


def test_load_folder_takes_storage_options_or_the_readers_own(s3_folder, monkeypatch):
    url, _, _ = s3_folder
    expected = [f"{url}/{name}" for name in ("a.JPG", "b.png", "sub/c.tif",
                                              "sub/deeper/d.png")]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {"endpoint_url": endpoint, "key": "testing-key", "secret": "testing-secret"}
    listed = load_folder(url, max_bytes=50_000, storage_options=options)
    assert listed["filepath"].tolist() == expected
    configure_storage(options)  # the process's options, as a project's storage_options set
    assert load_folder(url, max_bytes=50_000)["filepath"].tolist() == expected


def test_a_session_on_a_folder_of_a_bucket_reads_its_thumbnails(s3_folder, tmp_path):
    url, local, _ = s3_folder
    df = load_folder(url, ["cat", "dog"], max_bytes=50_000)
    session = Session.open(df, outfile=tmp_path / "labels.csv", imshape=(48, 48), seed=0)
    try:
        options = session.thumbnails.options
        names = relative(df["filepath"], url)
        got = session.thumbnail_page(list(range(len(df))))
        assert got == [encode_thumbnail(str(local / name), options) for name in names]
        assert session.unreadable.empty
    finally:
        session.close()


def test_load_folder_through_another_fsspec_filesystem(s3):
    """Any fsspec filesystem with a listing works as S3 does: fsspec's in-memory one."""
    import fsspec

    fs = fsspec.filesystem("memory")
    png = s3["objects"]["images/img_0000.png"]
    for name in ("shots/a.png", "shots/sub/b.png", "shots/.hidden/c.png", "shots/d.txt"):
        fs.pipe(f"/q27/{name}", png)
    try:
        df = load_folder("memory://q27/shots")
        assert df["filepath"].tolist() == ["memory:///q27/shots/a.png",
                                           "memory:///q27/shots/sub/b.png"]
        np.testing.assert_array_equal(read_array(df["filepath"][1]),
                                      read_array(s3["good"][1][0]))
    finally:
        fs.rm("/q27", recursive=True)
