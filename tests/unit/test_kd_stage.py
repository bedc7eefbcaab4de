"""White-box KD (arXiv 2511.05184) through the training loop, the `kd` objective of the `train`
stage and the `kd_cache` stage:
grad-accumulation invariance, cached vs online teacher, the packed codec, the fast bucket loss,
and the start-up checks that stop a bad teacher/student/cache combination before training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import KDLossConfig, KDObjective, LogitCache, LogitCacheWriter, build_cache
from reasondistill.kd import codec as codecs
from reasondistill.kd.cache import bytes_per_token
from reasondistill.kd.losses import forward_kl
from reasondistill.kd.teacher import topk_logprobs
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages import StageContext
from reasondistill.stages.kd_cache import KDCacheConfig, KDCacheStage
from reasondistill.stages.train import TrainStage, TrainStageConfig
from reasondistill.tasks import build_task
from reasondistill.traces.format import render_completion, render_prompt
from reasondistill.train.batching import collate, encode_rows
from reasondistill.train.config import TrainConfig
from reasondistill.train.trainer import train_model
from tests.unit.helpers_tiny import single_thread

STUDENT = TinyModelSpec(hidden_size=32, num_layers=2, num_heads=4)
TEACHER = TinyModelSpec(hidden_size=48, num_layers=2, num_heads=4)


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():  # tiny models are overhead-bound; a shared machine stalls OpenMP
        yield


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Gold addition traces of 2 and 5 terms, interleaved: lengths vary, as in reasoning data."""
    short, long_ = (list(build_task("arithmetic", {"terms": t}).examples("train", n, seed)) for t in (2, 5))
    exs = [e for pair in zip(short, long_, strict=True) for e in pair][:n]
    return [{"prompt": render_prompt(e.question), "completion": render_completion(e.answer, e.rationale, "before")}
            for e in exs]  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([r["prompt"] + r["completion"] for r in make_rows(200)], vocab_size=128)


def assert_same_weights(dir_a, dir_b) -> None:
    from transformers import AutoModelForCausalLM

    a, b = (AutoModelForCausalLM.from_pretrained(d / "model").state_dict() for d in (dir_a, dir_b))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)


def cfg(**kw) -> TrainConfig:
    base = dict(per_device_batch_size=8, max_steps=3, lr=3e-3, warmup_steps=0, save_every=0, seed=0,
                progress_bar=False, max_length=64)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_kd_grad_accum_invariance_cached_and_online(tok, tmp_path):
    """1 x 8 and 2 x 4 rows per step give the same weights with a KD objective, both teacher paths."""
    rows = make_rows(48)
    teacher = build_tiny_model(TEACHER, tok, seed=7)
    encoded = encode_rows(tok, rows, 64)
    cache = build_cache(teacher, encoded, 16, tmp_path / "cache", pad_id=tok.pad_token_id, codec="packed")
    loss = KDLossConfig(kind="jsd", beta=0.3, temperature=1.0, alpha=0.2)
    for path, kw in (("cached", {"cache": cache}), ("online", {"teacher": teacher})):
        states = {}
        for per_device, accum in ((8, 1), (4, 2)):
            objective = KDObjective(loss, len(tok), **kw)
            out = tmp_path / f"{path}{accum}"
            states[accum] = train_model(build_tiny_model(STUDENT, tok, seed=0), tok, rows,
                                      cfg(per_device_batch_size=per_device, grad_accum=accum), out, objective)  # fmt: skip
        assert_same_weights(tmp_path / f"{path}1", tmp_path / f"{path}2")
        assert states[2]["final_grad_norm"] == pytest.approx(states[1]["final_grad_norm"], rel=1e-5)
        assert states[2]["final_loss"] == pytest.approx(states[1]["final_loss"], rel=1e-6)


def test_cache_holding_every_id_trains_like_the_online_teacher(tok, tmp_path):
    rows = make_rows(24)
    teacher = build_tiny_model(TEACHER, tok, seed=7)
    cache = build_cache(
        teacher, encode_rows(tok, rows, 64), len(tok), tmp_path / "c", pad_id=tok.pad_token_id
    )
    loss = KDLossConfig()
    runs = {}
    for name, kw in (("cached", {"cache": cache}), ("online", {"teacher": teacher})):
        runs[name] = train_model(build_tiny_model(STUDENT, tok, seed=0), tok, rows, cfg(), tmp_path / name,
                               KDObjective(loss, len(tok), **kw))  # fmt: skip
    # k = V: the cache is the full distribution up to fp16 storage of the log-probs. (Weights are
    # not compared: Adam's normalised steps turn tiny gradient differences into lr-sized ones.)
    assert runs["cached"]["final_loss"] == pytest.approx(runs["online"]["final_loss"], rel=1e-3)


def test_padded_student_vocabulary_is_sliced(tok):
    """Rows past the shared vocabulary (151936 vs 152064) take no part, whatever their logits."""
    rows = encode_rows(tok, make_rows(4), 64)
    batch = collate(rows, tok.pad_token_id)
    teacher = build_tiny_model(TEACHER, tok, seed=1)
    v = len(tok)
    objective = KDObjective(KDLossConfig(alpha=0.5), v, teacher=teacher)
    logits = torch.randn(*batch["input_ids"].shape, v, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([logits, torch.full((*logits.shape[:2], 64), 30.0)], -1)
    torch.testing.assert_close(objective(padded, batch, np.arange(4)), objective(logits, batch, np.arange(4)))


@pytest.mark.parametrize(("k", "vocab"), [(4, 300), (16, 1024), (128, 32_000), (128, 152_064), (7, 7)])
def test_packed_codec_round_trip_and_size(tmp_path, k, vocab):
    g = torch.Generator().manual_seed(0)
    ids, lp, tail = topk_logprobs(torch.randn(9, vocab, generator=g) * 4, k)
    with_cache = tmp_path / "c"
    with LogitCacheWriter(with_cache, k, vocab, codec="packed") as w:
        w.add(0, ids[:5], lp[:5], tail[:5])
        w.add(1, ids[5:5], lp[5:5], tail[5:5])  # an empty row
        w.add(2, ids[5:], lp[5:], tail[5:])
    cache = LogitCache(with_cache)
    got_ids, got_lp, got_tail = cache.get(0)
    order = np.argsort(ids[:5].numpy(), axis=1)  # stored as a sorted set: order is irrelevant to the loss
    np.testing.assert_array_equal(got_ids, np.take_along_axis(ids[:5].numpy(), order, 1))
    want = np.take_along_axis(lp[:5].numpy(), order, 1)
    assert np.all(np.abs(got_lp - want) <= np.abs(want) / 16 + 2e-3)  # float8 e4m3: 3 mantissa bits
    np.testing.assert_array_equal(got_tail, tail[:5].numpy())
    assert cache.n_positions(1) == 0 and cache.get(2)[0].shape == (4, k)
    shard, size = cache._shards[0], bytes_per_token(k, vocab, "packed")
    assert sum(shard[f].nbytes for f in ("ids", "logprobs", "tail")) == 9 * size
    assert size < bytes_per_token(k, vocab, "fp16")
    zeros = np.zeros((1, shard["ids"].shape[1]), np.uint8)
    with pytest.raises(ValueError, match="corrupt"):
        codecs.decode(zeros, shard["logprobs"][:1], k, vocab, "packed")


def test_packed_cache_loss_and_layout(tmp_path):
    """float8 log-probs move the loss by < 2%; the bucket loss is a lower bound of the full one; the
    packed layout (training path) gives the padded layout's loss and refuses another mask."""
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(3, 12, 500, generator=g) * 3
    student = teacher + torch.randn(3, 12, 500, generator=g)
    mask = torch.rand(3, 12, generator=g) > 0.3
    losses = {}
    for codec in ("fp16", "packed"):
        with LogitCacheWriter(tmp_path / codec, 64, 500, codec=codec) as w:
            for b in range(3):
                w.add(b, *topk_logprobs(teacher[b][mask[b]], 64))
        cache = LogitCache(tmp_path / codec)
        losses[codec] = forward_kl(student, cache.batch([0, 1, 2], mask=mask), mask)[0]
    assert abs(losses["packed"] / losses["fp16"] - 1) < 0.02  # random, flat logits: float8's worst case
    assert losses["fp16"] <= forward_kl(student, teacher, mask)[0]
    packed = cache.batch([0, 1, 2], mask=mask, packed=True)
    assert packed.ids.shape == (int(mask.sum()), 64)
    torch.testing.assert_close(forward_kl(student, packed, mask)[0], losses["packed"])
    with pytest.raises(ReasonDistillError, match="another loss mask"):
        forward_kl(student, packed, ~mask)


# --- the stages -------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path, tok):
    d = {n: tmp_path / n for n in ("tok", "rows", "rows_b", "teacher", "cache", "student", "online")}
    for name in ("tok", "rows", "rows_b", "teacher"):
        d[name].mkdir()
    tok.save_pretrained(str(d["tok"] / "tokenizer"))
    write_jsonl_atomic(d["rows"] / "rows.jsonl", make_rows(20))
    write_jsonl_atomic(d["rows_b"] / "rows.jsonl", make_rows(20, seed=1))
    teacher = build_tiny_model(TEACHER, tok, seed=3)
    teacher.save_pretrained(str(d["teacher"] / "model"))
    tok.save_pretrained(str(d["teacher"] / "model"))
    return d


def ctx(name: str, cfg, dirs) -> StageContext:
    dirs[name].mkdir(exist_ok=True)
    return StageContext(name, cfg, dirs[name], {}, dirs)


TRAIN = {"max_steps": 2, "per_device_batch_size": 4, "warmup_steps": 0, "save_every": 0,
         "progress_bar": False, "max_length": 64}  # fmt: skip
TINY = {"tiny": {"hidden_size": 32, "num_layers": 2, "num_heads": 4}, "tokenizer": "tok"}


def cache_cfg(**kw) -> KDCacheConfig:
    base = {"kind": "kd_cache", "rows": "rows", "teacher": {"stage": "teacher"}, "k": 8, "max_length": 64,
            "batch_size": 4, "shard_rows": 4}  # fmt: skip
    return KDCacheConfig.model_validate({**base, **kw})


def kd_cfg(**kw) -> TrainStageConfig:
    """A train stage with the kd objective; `teacher` and `loss` go into `objective`."""
    objective = {"kind": "kd", "teacher": kw.pop("teacher", {"cache": "cache"})}
    if "loss" in kw:
        objective["loss"] = kw.pop("loss")
    base = {"kind": "train", "rows": "rows", "model": TINY, "train": TRAIN, "objective": objective, "seed": 1}
    return TrainStageConfig.model_validate({**base, **kw})


def test_config_validation():
    with pytest.raises(ValueError, match="exactly one of `model`"):
        kd_cfg(teacher={})
    with pytest.raises(ValueError, match="exactly one of `model`"):
        kd_cfg(teacher={"cache": "c", "model": {"stage": "t"}})
    with pytest.raises(ValueError, match="beta does not apply"):
        kd_cfg(loss={"kind": "tv", "beta": 0.2})
    c = kd_cfg(loss={"kind": "jsd", "beta": 0.2})
    assert type(c).model_validate(c.model_dump()) == c  # the pipeline re-validates dumped configs


def test_cache_stage_resumes_then_kd_trains_from_it(dirs):
    summary = KDCacheStage().run(ctx("cache", cache_cfg(), dirs))
    meta = json.loads((dirs["cache"] / "kd_cache.json").read_text())
    assert summary["rows"] == meta["rows"] == 20 and meta["codec"] == "packed" and meta["k"] == 8
    assert 0 < meta["bytes_per_token"] < bytes_per_token(8, meta["vocab_size"], "fp16") + 2
    whole = LogitCache(dirs["cache"] / "cache")
    # A kill after some shards: the marker and the last shard are gone; the rerun redoes only those rows.
    saved = {i: whole.get(i) for i in range(20)}
    (dirs["cache"] / "kd_cache.json").unlink()
    shards = sorted((dirs["cache"] / "cache").glob("shard-*"))
    shutil.rmtree(shards[-1])
    assert len(LogitCache(dirs["cache"] / "cache")) == 16
    KDCacheStage().run(ctx("cache", cache_cfg(), dirs))
    again = LogitCache(dirs["cache"] / "cache")
    for i in range(20):
        for a, b in zip(again.get(i), saved[i], strict=True):
            np.testing.assert_array_equal(a, b)
    loss = {"kind": "jsd", "beta": 0.3, "alpha": 0.2}  # not the default: the stage must pass it on
    out = TrainStage().run(ctx("student", kd_cfg(loss=loss), dirs))
    assert out["teacher"] == "cache" and out["steps"] == 2 and out["vocab_size"] == meta["vocab_size"]
    assert out["objective"] == "kd" and out["kd_loss"] == "jsd"
    # The stage trains exactly what its objective defines: the same tiny student (stage seed 1) on
    # the same rows under JSD against this cache gives the same weights when built by hand.
    tok = AutoTokenizer.from_pretrained(dirs["tok"] / "tokenizer")
    by_hand = {"cache": {"cache": LogitCache(dirs["cache"] / "cache")},
               "online": {"teacher": AutoModelForCausalLM.from_pretrained(dirs["teacher"] / "model"),
                          "pass_attention_mask": True}}  # fmt: skip
    ref = dirs["cache"].parent / "by_hand"
    objective = KDObjective(KDLossConfig(**loss), meta["vocab_size"], **by_hand["cache"])
    train_model(build_tiny_model(TinyModelSpec(**TINY["tiny"]), tok, seed=1), tok, make_rows(20),
                TrainConfig(**TRAIN, seed=1), ref / "cache", objective)  # fmt: skip
    assert_same_weights(dirs["student"], ref / "cache")
    out = TrainStage().run(ctx("online", kd_cfg(teacher={"model": {"stage": "teacher"}}), dirs))
    assert out["teacher"] == "online" and out["steps"] == 2 and np.isfinite(out["final_loss"])
    objective = KDObjective(KDLossConfig(), meta["vocab_size"], **by_hand["online"])
    train_model(build_tiny_model(TinyModelSpec(**TINY["tiny"]), tok, seed=1), tok, make_rows(20),
                TrainConfig(**TRAIN, seed=1), ref / "online", objective)  # fmt: skip
    assert_same_weights(dirs["online"], ref / "online")
    # ... and it learns from the teacher: closer to it than the untrained student was.
    assert _kl_to_teacher(dirs["online"] / "model", dirs) < _kl_to_teacher(None, dirs)


def _kl_to_teacher(student_dir, dirs) -> float:
    """Forward KL(teacher || student) over the completion tokens of the training rows."""
    tok = AutoTokenizer.from_pretrained(dirs["tok"] / "tokenizer")
    teacher = AutoModelForCausalLM.from_pretrained(dirs["teacher"] / "model")
    student = (AutoModelForCausalLM.from_pretrained(student_dir) if student_dir is not None
               else build_tiny_model(TinyModelSpec(**TINY["tiny"]), tok, seed=1))  # fmt: skip
    batch = collate(encode_rows(tok, make_rows(20), 64), tok.pad_token_id)
    mask = batch["labels"][:, 1:] != -100
    with torch.no_grad():
        logits = [m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
                  for m in (teacher, student)]  # fmt: skip
    return float(forward_kl(logits[1].float(), logits[0].float(), mask)[0] / mask.sum())


@pytest.mark.parametrize(
    ("kd_over", "message"),
    [
        ({"loss": {"temperature": 2.0}}, "stores the teacher at temperature 1.0 but loss.temperature is 2.0"),
        ({"max_rows": 12}, "scored 20 rows at max_length 64, but this stage trains on 12 rows"),
        ({"rows": "rows_b"}, "was built from other token ids than stage 'rows_b'"),
        (
            {"rows": [{"stage": "rows"}, {"stage": "rows_b", "weight": 0.5}]},
            r"kd_cache stage 'cache' scored the rows of one rows stage, so a cached teacher needs `rows` to be "
            r"that one stage at weight 1 \(got rows x 1.0, rows_b x 0.5\)",
        ),
    ],
)
def test_cache_mismatch_fails_before_training(dirs, kd_over, message):
    KDCacheStage().run(ctx("cache", cache_cfg(), dirs))
    with pytest.raises(ReasonDistillError, match=message):
        TrainStage().run(ctx("student", kd_cfg(**kd_over), dirs))
    assert not any(dirs["student"].iterdir())  # nothing written


@pytest.mark.parametrize(
    "teacher", [{"cache": "cache"}, {"model": {"stage": "teacher"}}], ids=["cached", "online"]
)
def test_vocabulary_mismatch_names_both_and_writes_nothing(dirs, tok, teacher):
    KDCacheStage().run(ctx("cache", cache_cfg(), dirs))
    other = train_tokenizer(["x"], vocab_size=16)  # the bare alphabet: fewer tokens, other ids
    other.save_pretrained(str(dirs["tok"] / "tokenizer"))
    with pytest.raises(ReasonDistillError) as e:
        TrainStage().run(ctx("student", kd_cfg(teacher=teacher), dirs))
    msg = str(e.value)
    assert "share one tokenizer" in msg and f"teacher vocabulary: {len(tok)} tokens" in msg
    assert f"student vocabulary: {len(other)} tokens" in msg and "\n" not in msg
    assert not any(dirs["student"].iterdir())


def test_fast_student_buckets_match_autograd_reference():
    """kd/teacher.py's hand-written backward equals autograd through the textbook formula, also
    where the tail underflows exp() (a 150-nat gap) and is recomputed exactly."""
    from reasondistill.kd.teacher import SparseTeacher, _StudentBuckets, bucket_logprobs

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 11, dtype=torch.float64, generator=g) * 3
    rows = torch.tensor([0, 2, 3, 5, 7])  # flat positions scored
    ids = torch.stack([torch.randperm(11, generator=g)[:4] for _ in range(5)])
    for tau in (1.0, 2.0):
        assert torch.autograd.gradcheck(_StudentBuckets.apply, (logits.requires_grad_(), rows, ids, tau))
    student = torch.randn(2, 3, 40, generator=g) * 3
    student[0, 1, :5] += 150.0  # top-5 ids hold all but e^-150 of the mass
    teacher = torch.randn(2, 3, 40, generator=g)
    teacher[0, 1, :5] += 150.0
    sp, mask = SparseTeacher.from_logits(teacher, 5), torch.ones(2, 3, dtype=torch.bool)
    a, b = student.clone().requires_grad_(), student.clone().requires_grad_()
    log_q = bucket_logprobs(a, sp, mask, 1.0)[1]
    s_ref, ref_ids = b[mask], sp.ids[mask]
    tail_ref = s_ref.scatter(-1, ref_ids, -1e30).logsumexp(-1, keepdim=True)
    ref = torch.cat([s_ref.gather(-1, ref_ids), tail_ref], -1) - s_ref.logsumexp(-1, keepdim=True)
    torch.testing.assert_close(log_q, ref, rtol=1e-5, atol=1e-5)
    assert log_q[1, -1] < -140  # the underflowing row came back exact, not floored at -1e4
    w = torch.randn(log_q.shape, generator=g)
    (log_q * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)
