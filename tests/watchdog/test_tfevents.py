"""Specification of watchdog.tfevents: our own TensorBoard event-file reader and tiny writer."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.errors import InputError
from watchdog.logtxt import parse_log_txt
from watchdog.tfevents import (
    EventFileTail,
    ScalarWriter,
    Series,
    encode_record,
    encode_scalar_event,
    masked_crc32c,
    read_run_scalars,
    read_scalars,
    read_scalars_bytes,
)

RUN = "11-07-17_cuboid"


def _event_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("events.out.tfevents.*"))


def _tb_loader_scalars(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """What TensorBoard's own EventFileLoader reads from ``path`` (tag -> steps, values)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    out: dict[str, tuple[list[int], list[float]]] = {}
    for ev in EventFileLoader(str(path)).Load():
        if not ev.HasField("summary"):
            continue
        for v in ev.summary.value:
            arr = tensor_util.make_ndarray(v.tensor)
            if arr.size != 1 or arr.dtype.kind not in "biuf":
                continue
            steps, vals = out.setdefault(v.tag, ([], []))
            steps.append(ev.step)
            vals.append(float(arr.reshape(())))
    return out


def _write(tmp_path: Path, points, tag="train/value_loss") -> Path:
    with ScalarWriter(tmp_path) as w:
        for step, value in points:
            w.add_scalar(tag, value, step, wall_time=1000.0 + step)
    return w.path


# ---------------------------------------------------------------------------------------------
# Real OpenRL runs
# ---------------------------------------------------------------------------------------------


def test_real_run_value_loss_matches_log_txt(mapush_runs):
    run = mapush_runs / RUN
    res = read_run_scalars(run)
    assert res.warnings == []
    vl = res.scalars["train/value_loss"]
    assert len(vl) == 260
    assert vl.steps.dtype == np.int64 and vl.values.dtype == np.float64 and vl.wall_times.dtype == np.float64
    assert vl.steps[0] == 100_000
    assert np.all(np.diff(vl.steps) == 500_000)  # logged every 5 iterations of 100k env steps
    log = parse_log_txt(run / "log.txt", steps_per_iteration=100_000)
    by_steps = {r.env_steps: r for r in log.records}
    for step, value in zip(vl.steps.tolist(), vl.values.tolist()):
        expected = by_steps[step].get("value_loss")
        assert value == pytest.approx(expected, rel=1e-6)
        assert np.float32(expected) == np.float32(value)


def test_real_run_has_every_openrl_tag_normalised(mapush_runs):
    res = read_run_scalars(mapush_runs / RUN)
    for key in (
        "train/value_loss",
        "train/policy_loss",
        "train/dist_entropy",
        "train/actor_grad_norm",
        "train/critic_grad_norm",
        "train/ratio",
        "rollout/average_step_reward",
        "rollout/push_reward",
        "rollout/collision_punishment",
    ):
        assert len(res.scalars[key]) == 260, key
    # the empty root writer (a 0-byte file) is read without complaint
    assert any(Path(f).stat().st_size == 0 for f in res.files)
    assert res.warnings == []


def test_real_files_identical_to_tensorboard_event_file_loader(mapush_runs):
    files = _event_files(mapush_runs / RUN / "logs")
    files = [f for f in files if f.stat().st_size > 0][:4]
    assert files
    for f in files:
        ours = read_scalars(f, check_crc=True)
        assert ours.warnings == []
        theirs = _tb_loader_scalars(f)
        assert set(ours.scalars) == set(theirs)
        for tag, (steps, vals) in theirs.items():
            s = ours.scalars[tag]
            assert s.steps.tolist() == steps
            assert np.array_equal(s.values.astype(np.float32), np.array(vals, np.float32))


# ---------------------------------------------------------------------------------------------
# Files written by TensorBoard writers and by ScalarWriter
# ---------------------------------------------------------------------------------------------


def test_torch_summary_writer_add_scalar_reads_back_exactly(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(1)
    values = rng.normal(size=300)
    w = SummaryWriter(str(tmp_path))
    for i, v in enumerate(values):
        w.add_scalar("train/value_loss", float(v), i * 10, walltime=5000.0 + i)
        w.add_scalar("rollout/average_step_reward", float(-v), i * 10, walltime=5000.0 + i)
    w.add_scalar("train/value_loss", float("nan"), 3000)
    w.add_scalar("train/value_loss", float("inf"), 3010)
    w.close()
    (f,) = _event_files(tmp_path)
    res = read_scalars(f, check_crc=True)
    assert res.warnings == []
    s = res.scalars["train/value_loss"]
    assert s.steps.tolist() == [i * 10 for i in range(300)] + [3000, 3010]
    assert np.array_equal(s.values[:300], values.astype(np.float32).astype(np.float64))
    assert np.isnan(s.values[300]) and s.values[301] == np.inf
    assert np.array_equal(s.wall_times[:300], 5000.0 + np.arange(300))
    r = res.scalars["rollout/average_step_reward"]
    assert np.array_equal(r.values, (-values).astype(np.float32).astype(np.float64))
    assert res.records_read == 1 + 602 and res.bytes_read == f.stat().st_size


def test_torch_add_scalars_layout_and_merge(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    for i in range(20):
        w.add_scalars("loss", {"train": float(i), "val": float(2 * i)}, i)
        w.add_scalars("value_loss", {"value_loss": float(3 * i)}, i)  # OpenRL's main == sub
    w.add_scalar("policy_loss", 0.5, 0)  # flat layout in the root file
    w.close()
    res = read_run_scalars(tmp_path)
    assert res.scalars["loss/train"].values.tolist() == [float(i) for i in range(20)]
    assert res.scalars["loss/val"].values.tolist() == [float(2 * i) for i in range(20)]
    assert res.scalars["train/value_loss"].values.tolist() == [float(3 * i) for i in range(20)]
    assert res.scalars["train/policy_loss"].values.tolist() == [0.5]


def test_scalar_writer_round_trip_and_tensorboard_reads_it(tmp_path):
    points = [(i, 1.0 / (i + 1)) for i in range(200)] + [(2**40, -3.25), (-5, 7.0)]
    path = _write(tmp_path, points)
    assert path.name.startswith("events.out.tfevents.")
    res = read_scalars(path, check_crc=True)
    assert res.warnings == []
    s = res.scalars["train/value_loss"]
    assert s.steps.tolist() == [p[0] for p in points]
    assert np.array_equal(s.values, np.array([p[1] for p in points], np.float32).astype(np.float64))
    assert np.array_equal(s.wall_times, 1000.0 + np.array([p[0] for p in points], np.float64))
    theirs = _tb_loader_scalars(path)  # TensorBoard checks both CRCs of every record
    assert theirs["train/value_loss"][0] == [p[0] for p in points]
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    first = next(iter(EventFileLoader(str(path)).Load()))
    assert first.file_version == "brain.Event:2"


def _tensor_event(tag, tensor, step, *, plugin="scalars", wall=1.0) -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    meta = summary_pb2.SummaryMetadata()
    if plugin is not None:
        meta.plugin_data.plugin_name = plugin
        if plugin == "scalars":
            meta.data_class = summary_pb2.DATA_CLASS_SCALAR
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if plugin is not None:
        value.metadata.CopyFrom(meta)
    ev = event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[value]))
    return ev.SerializeToString()


def test_tensor_forms_read_back(tmp_path):
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    def tp(dtype, **kw):
        return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(), **kw)

    with ScalarWriter(tmp_path) as w:
        for i in range(40):  # tf2 style: tensor_content, metadata on every event
            w.write_raw_event(_tensor_event("c/f32", tp(types_pb2.DT_FLOAT, tensor_content=np.float32(i * 0.5).tobytes()), i))
        w.write_raw_event(_tensor_event("c/f64", tp(types_pb2.DT_DOUBLE, tensor_content=np.float64(1 / 3).tobytes()), 1))
        w.write_raw_event(_tensor_event("c/i32", tp(types_pb2.DT_INT32, tensor_content=np.int32(-7).tobytes()), 1))
        w.write_raw_event(_tensor_event("c/i64", tp(types_pb2.DT_INT64, tensor_content=np.int64(2**40).tobytes()), 1))
        w.write_raw_event(_tensor_event("c/f16", tp(types_pb2.DT_HALF, tensor_content=np.float16(0.1).tobytes()), 1))
        w.write_raw_event(_tensor_event("v/float_val", tp(types_pb2.DT_FLOAT, float_val=[2.5]), 2, plugin=None))
        w.write_raw_event(_tensor_event("v/double_val", tp(types_pb2.DT_DOUBLE, double_val=[1e300]), 2))
        w.write_raw_event(_tensor_event("v/int_val", tp(types_pb2.DT_INT32, int_val=[-3]), 2))
        w.write_raw_event(_tensor_event("v/int64_val", tp(types_pb2.DT_INT64, int64_val=[-(2**50)]), 2))
        w.write_raw_event(_tensor_event("v/half_val", tp(types_pb2.DT_HALF, half_val=[int(np.float16(1.5).view(np.uint16))]), 2))
        # not scalars: a 3-element tensor, a string tensor, and a histogram-plugin tag
        vec = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
            float_val=[1, 2, 3],
        )
        w.write_raw_event(_tensor_event("x/vector", vec, 3))
        w.write_raw_event(_tensor_event("x/text", tp(types_pb2.DT_STRING, string_val=[b"hello"]), 3, plugin="text"))
        w.write_raw_event(_tensor_event("x/histo", tp(types_pb2.DT_FLOAT, float_val=[4.0]), 3, plugin="histograms"))
        w.add_scalar("simple", 9.0, 4)
    res = read_scalars(w.path, check_crc=True)
    assert res.warnings == []
    sc = res.scalars
    assert sc["c/f32"].values.tolist() == [i * 0.5 for i in range(40)]
    assert sc["c/f32"].steps.tolist() == list(range(40))
    assert sc["c/f64"].values.tolist() == [1 / 3]
    assert sc["c/i32"].values.tolist() == [-7.0]
    assert sc["c/i64"].values.tolist() == [float(2**40)]
    assert sc["c/f16"].values.tolist() == [float(np.float16(0.1))]
    assert sc["v/float_val"].values.tolist() == [2.5]
    assert sc["v/double_val"].values.tolist() == [1e300]
    assert sc["v/int_val"].values.tolist() == [-3.0]
    assert sc["v/int64_val"].values.tolist() == [float(-(2**50))]
    assert sc["v/half_val"].values.tolist() == [1.5]
    assert sc["simple"].values.tolist() == [9.0]
    assert not any(t.startswith("x/") for t in sc)
    theirs = _tb_loader_scalars(w.path)
    for tag in ("c/f32", "c/f64", "v/float_val", "v/double_val", "v/int64_val", "simple"):
        assert sc[tag].values.tolist() == theirs[tag][1], tag


def test_mixed_merged_summaries_identical_to_tensorboard(tmp_path):
    """TF1-style merged summaries (several values an event), every scalar form, odd steps."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

    rng = np.random.default_rng(7)
    tags = ["a", "bb", "value_loss", "rollout/x"]
    with ScalarWriter(tmp_path) as w:
        for r in range(600):
            vals = []
            for _ in range(int(rng.integers(1, 4))):
                tag = tags[int(rng.integers(len(tags)))]
                x = float(rng.normal() * 10.0 ** int(rng.integers(-3, 5)))
                kind = int(rng.integers(4))
                if kind == 0:
                    vals.append(summary_pb2.Summary.Value(tag=tag, simple_value=x))
                elif kind == 1:
                    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[x])
                    vals.append(summary_pb2.Summary.Value(tag=tag, tensor=t))
                elif kind == 2:
                    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_content=np.float64(x).tobytes())
                    vals.append(summary_pb2.Summary.Value(tag=tag, tensor=t))
                else:
                    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=np.float32(x).tobytes())
                    vals.append(summary_pb2.Summary.Value(tag=tag, tensor=t))
            step = int(rng.choice([r, int(rng.integers(0, 10**6)), -int(rng.integers(1, 10**9))]))
            ev = event_pb2.Event(wall_time=float(rng.random() * 1e9), step=step, summary=summary_pb2.Summary(value=vals))
            w.write_raw_event(ev.SerializeToString())
    ours = read_scalars(w.path, check_crc=True)
    assert ours.warnings == []
    theirs = _tb_loader_scalars(w.path)
    assert set(ours.scalars) == set(theirs)
    for tag, (steps, vals) in theirs.items():
        assert ours.scalars[tag].steps.tolist() == steps
        assert ours.scalars[tag].values.tolist() == vals


def test_tags_filter_accepts_raw_or_normalised_names(tmp_path):
    with ScalarWriter(tmp_path) as w:
        for i in range(30):
            w.add_scalar("value_loss", i, i)
            w.add_scalar("ratio", 1.0, i)
            w.add_scalar("other", 2.0, i)
    res = read_scalars(w.path, tags={"train/value_loss", "ratio"})
    assert set(res.scalars) == {"value_loss", "ratio"}
    assert len(res.scalars["value_loss"]) == 30


# ---------------------------------------------------------------------------------------------
# Damaged files
# ---------------------------------------------------------------------------------------------


def _record_bounds(data: bytes) -> list[int]:
    """Start offsets of the records of a well-formed file, plus its end."""
    out, pos = [], 0
    while pos < len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<Q", data, pos)[0]
    return out + [pos]


def test_truncated_file_keeps_earlier_records_and_warns_once(tmp_path):
    path = _write(tmp_path, [(i, float(i)) for i in range(50)])
    data = path.read_bytes()
    bounds = _record_bounds(data)
    start = bounds[30]  # record 30 holds the scalar of step 29 (record 0 is file_version)
    for cut in (start + 1, start + 8, start + 12, start + 20, bounds[31] - 1):
        res = read_scalars_bytes(data[:cut], name="cut.tfevents")
        assert res.scalars["train/value_loss"].steps.tolist() == list(range(29)), cut
        assert res.records_read == 30 and res.bytes_read == start
        assert len(res.warnings) == 1
        (msg,) = res.warnings
        assert "\n" not in msg
        assert msg.startswith(f"cut.tfevents: truncated record at byte {start}") and "read 30 records" in msg
    # a cut exactly between records is a clean end
    assert read_scalars_bytes(data[: bounds[30]]).warnings == []


def test_huge_length_header_warns_without_allocating(tmp_path):
    path = _write(tmp_path, [(i, float(i)) for i in range(10)])
    good = path.read_bytes()
    for header_crc_ok in (True, False):
        header = struct.pack("<Q", 2**60)
        crc = masked_crc32c(header) if header_crc_ok else 0x12345678
        bad = good + header + struct.pack("<I", crc) + b"\x00" * 64
        p = tmp_path / f"huge{header_crc_ok}.tfevents"
        p.write_bytes(bad)
        res = read_scalars(p)  # would raise MemoryError if it tried to read 2**60 bytes
        assert res.scalars["train/value_loss"].steps.tolist() == list(range(10))
        assert len(res.warnings) == 1 and f"byte {len(good)}" in res.warnings[0]
        tail = EventFileTail(p)
        assert tail.poll()["train/value_loss"].steps.tolist() == list(range(10))
        assert not tail.broken and (tail.suspect is None) is header_crc_ok  # a bad header may be a write in flight
        assert tail.poll(final=True) == {}  # the writer is done: it is corrupt
        assert tail.broken is (not header_crc_ok)


def test_check_crc_detects_a_flipped_bit(tmp_path):
    path = _write(tmp_path, [(i, float(i)) for i in range(100)])
    data = bytearray(path.read_bytes())
    bounds = _record_bounds(bytes(data))
    rec = bounds[41]  # step 40
    data[bounds[42] - 6] ^= 0x01  # a bit of the float value of step 40
    loose = read_scalars_bytes(bytes(data), check_crc=False)
    assert len(loose.scalars["train/value_loss"]) == 100  # without CRCs the flip goes unnoticed
    assert loose.scalars["train/value_loss"].values[40] != 40.0
    strict = read_scalars_bytes(bytes(data), name="f", check_crc=True)
    assert strict.scalars["train/value_loss"].steps.tolist() == list(range(40))
    assert len(strict.warnings) == 1 and f"byte {rec}" in strict.warnings[0] and "CRC" in strict.warnings[0]
    # a flipped bit in a length header is caught too
    data2 = bytearray(path.read_bytes())
    data2[bounds[10] + 1] ^= 0x10
    res = read_scalars_bytes(bytes(data2), check_crc=True)
    assert len(res.scalars["train/value_loss"]) == 9 and len(res.warnings) == 1


def test_garbage_record_with_bad_checksum_stops_reading(tmp_path):
    path = _write(tmp_path, [(i, float(i)) for i in range(20)])
    data = bytearray(path.read_bytes())
    bounds = _record_bounds(bytes(data))
    data[bounds[5] + 12] = 0xFF  # first key byte of record 5: not a valid Event
    res = read_scalars_bytes(bytes(data))
    assert res.scalars["train/value_loss"].steps.tolist() == list(range(4))
    assert len(res.warnings) == 1 and f"byte {bounds[5]}" in res.warnings[0]


def test_step_restart_keeps_both_segments(tmp_path):
    points = [(s, float(s)) for s in range(10)] + [(s, -float(s)) for s in range(5, 15)]
    s = read_scalars(_write(tmp_path, points)).scalars["train/value_loss"]
    assert s.steps.tolist() == [p[0] for p in points]
    assert s.values.tolist() == [p[1] for p in points]


# ---------------------------------------------------------------------------------------------
# Live files and run directories
# ---------------------------------------------------------------------------------------------


def test_event_file_tail_sees_appended_records_not_half_written_ones(tmp_path):
    w = ScalarWriter(tmp_path)
    tail = EventFileTail(w.path)
    for i in range(3):
        w.add_scalar("train/value_loss", float(i), i)
    w.flush()
    got = tail.poll()
    assert got["train/value_loss"].steps.tolist() == [0, 1, 2]
    assert tail.poll() == {}
    record = encode_record(encode_scalar_event("train/value_loss", 3.0, 3, 1.0))
    with open(w.path, "ab") as f:  # a writer caught mid-record
        f.write(record[:5])
    assert tail.poll() == {}
    with open(w.path, "ab") as f:
        f.write(record[5:20])
    assert tail.poll() == {}
    with open(w.path, "ab") as f:
        f.write(record[20:])
    assert tail.poll()["train/value_loss"].steps.tolist() == [3]
    assert tail.warnings == [] and not tail.broken
    w.close()


def test_event_file_tail_calls_a_bad_record_corrupt_only_when_it_stays_bad(tmp_path, monkeypatch):
    """A file system that shows a file's new length before its bytes (NFS) gives a record that fails its checks
    for a moment: the tail waits SUSPECT_S for it. One that is still bad then is corrupt: said once, the tail stops."""
    w = ScalarWriter(tmp_path)
    for i in range(3):
        w.add_scalar("train/value_loss", float(i), i)
    w.close()
    good = w.path.read_bytes()
    record = encode_record(encode_scalar_event("train/value_loss", 3.0, 3, 1.0))
    w.path.write_bytes(good + b"\x00" * len(record))  # the length is there, the bytes not yet
    tail = EventFileTail(w.path)
    assert tail.poll()["train/value_loss"].steps.tolist() == [0, 1, 2]
    assert tail.suspect == len(good) and not tail.broken and tail.warnings == []
    w.path.write_bytes(good + record)  # the bytes arrive
    assert tail.poll()["train/value_loss"].steps.tolist() == [3]
    assert tail.suspect is None and not tail.broken and tail.warnings == []

    bad = good + record + b"\x5a" * len(record)
    w.path.write_bytes(bad)
    assert tail.poll() == {} and tail.suspect == len(good + record) and tail.warnings == []
    monkeypatch.setattr(EventFileTail, "SUSPECT_S", 0.0)  # as if a poll SUSPECT_S later
    w.path.write_bytes(bad + record)  # what follows it does not mend it
    assert tail.poll() == {} and tail.broken
    assert len(tail.warnings) == 1 and f"byte {len(good + record)}" in tail.warnings[0]
    assert tail.poll(final=True) == {} and len(tail.warnings) == 1


def test_event_file_tail_with_torch_summary_writer(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    w.add_scalar("value_loss", 1.0, 100)
    w.flush()
    (f,) = _event_files(tmp_path)
    tail = EventFileTail(f)
    assert tail.poll()["value_loss"].steps.tolist() == [100]
    for step in (200, 300):
        w.add_scalar("value_loss", step / 100, step)
    w.flush()
    assert tail.poll()["value_loss"].values.tolist() == [2.0, 3.0]
    w.close()


def test_run_dir_merges_files_in_wall_time_order(tmp_path):
    # a resumed run: the later file (by wall time) has the earlier name
    late, early = tmp_path / "a", tmp_path / "b"
    with ScalarWriter(late) as w:
        w.add_scalar("value_loss", 2.0, 20, wall_time=2000.0)
    with ScalarWriter(early) as w:
        w.add_scalar("value_loss", 1.0, 10, wall_time=1000.0)
    for d, t in ((late, 1990.0), (early, 990.0)):  # rewrite the file_version wall times
        (f,) = _event_files(d)
        data = f.read_bytes()
        n = struct.unpack_from("<Q", data)[0]
        body = bytearray(data[12 : 12 + n])
        body[1:9] = struct.pack("<d", t)
        f.write_bytes(encode_record(bytes(body)) + data[16 + n :])
    (tmp_path / "events.out.tfevents.0.empty").write_bytes(b"")
    res = read_run_scalars(tmp_path)
    assert res.scalars["train/value_loss"].steps.tolist() == [10, 20]
    assert res.warnings == []


def test_run_dir_errors_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError) as err:
        read_run_scalars(tmp_path / "missing")
    assert "\n" not in str(err.value) and "missing" in str(err.value)
    with pytest.raises(InputError) as err:
        read_run_scalars(tmp_path)
    assert "\n" not in str(err.value) and "events.out.tfevents" in str(err.value)
    with pytest.raises(InputError):
        read_scalars(tmp_path / "nope.tfevents")


def test_series_helpers():
    s = Series(np.array([1, 2]), np.array([0.5, 0.25]), np.array([10.0, 11.0]))
    assert len(s) == 2 and s.events()[1].value == 0.25 and s.events()[0].wall_time == 10.0
    assert len(Series.concat([s, Series.empty(), s])) == 4


# ---------------------------------------------------------------------------------------------
# Robustness (property-based)
# ---------------------------------------------------------------------------------------------


def _valid_file() -> bytes:
    recs = [encode_record(b"\x09" + struct.pack("<d", 1.0) + b"\x1a\x0dbrain.Event:2")]
    for i in range(40):
        tag = "value_loss" if i % 3 else "a/b"
        recs.append(encode_record(encode_scalar_event(tag, i * 0.25, i, 100.0 + i)))
    return b"".join(recs)


_VALID = _valid_file()


def _check(data: bytes) -> None:
    for check_crc in (False, True):
        t = time.perf_counter()
        res = read_scalars_bytes(data, check_crc=check_crc)
        assert time.perf_counter() - t < 2.0
        assert 0 <= res.bytes_read <= len(data)
        for s in res.scalars.values():
            assert len(s.steps) == len(s.values) == len(s.wall_times)
        assert all("\n" not in w for w in res.warnings)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise(data):
    _check(data)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=len(_VALID)),
    flips=st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 7)), max_size=4),
    junk=st.binary(max_size=64),
)
def test_truncated_or_bit_flipped_files_never_raise(cut, flips, junk):
    data = bytearray(_VALID)
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    data = bytes(data[:cut]) + junk
    _check(data)
    # with CRC checks on, whatever is kept is genuine: the value and tag written at that step
    for tag, s in read_scalars_bytes(data, check_crc=True).scalars.items():
        for step, value in zip(s.steps.tolist(), s.values.tolist()):
            assert value == step * 0.25 and tag == ("value_loss" if step % 3 else "a/b")
    if not flips and not junk:  # a clean cut keeps every complete record and nothing else
        res = read_scalars_bytes(data, check_crc=True)
        complete = [b for b in _record_bounds(_VALID) if b <= cut]
        assert res.records_read == len(complete) - 1
