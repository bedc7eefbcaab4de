"""What the `openai` teacher writes into its stage directory as replies and failures arrive.

- traces.jsonl (TraceStore): one trace per completed sample;
- logprobs.jsonl: the top-k log-probs of a trace's tokens, when requested and returned
  (`logits_ref` of the trace names this file; rows are keyed by example_id and sample). They
  are the server's token *strings*, not ids: white-box KD needs a shared tokenizer anyway;
- failures.jsonl: samples without a trace and the reason of their last failed attempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reasondistill.records import Example, JsonlAppender, read_jsonl, write_jsonl_atomic
from reasondistill.teachers.openai.http import Reply, RequestFailed, scrub
from reasondistill.teachers.openai.run import Request
from reasondistill.traces.store import TraceStore

if TYPE_CHECKING:
    from reasondistill.teachers.base import Teacher, Verify
    from reasondistill.teachers.openai.cache import RequestCache

LOGPROBS_FILE = "logprobs.jsonl"  # {example_id, sample, logprobs: [{token, logprob, top}]} per trace
FAILURES_FILE = "failures.jsonl"  # {example_id, sample, reason, attempts}: samples without a trace


class TraceWriter:
    """Turns replies into cache entries, traces and log-prob rows, and failures into rows."""

    def __init__(
        self,
        teacher: Teacher,  # the openai teacher (its cfg.max_tokens and make_trace are used)
        store: TraceStore,
        verify: Verify,
        cache: RequestCache,
        stage_dir: Path,
        secret: str | None,
    ) -> None:
        self.t, self.store, self.verify, self.cache, self.secret = teacher, store, verify, cache, secret
        self.dir = stage_dir
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.new = self.cached = 0
        lp = stage_dir / LOGPROBS_FILE
        self.lp_done = (
            # logprobs.jsonl and failures.jsonl are appended by this writer: a torn last row is a kill.
            {(r["example_id"], r["sample"]) for r in read_jsonl(lp, torn_tail_ok=True)} if lp.exists() else set()
        )
        self._lp: JsonlAppender | None = None
        self._fail: JsonlAppender | None = None

    def done(self, ex: Example, req: Request, reply: Reply) -> None:
        n = len(req.samples)
        entries = []
        for s, key, c in zip(req.samples, req.keys, reply.choices, strict=True):
            # Usage is per response; with n choices each sample's share is approximate.
            usage = {
                "prompt_tokens": reply.usage["prompt_tokens"],
                "completion_tokens": reply.usage["completion_tokens"] // n,
            }
            entry = {"key": key, "example_id": ex.id, "sample": s, "text": c.text,
                     "finish_reason": c.finish_reason, "usage": usage, "logprobs": c.logprobs}  # fmt: skip
            if c.reasoning is not None:
                entry["reasoning"] = c.reasoning
            entries.append(entry)
        self.cache.put(entries)  # cache first: a kill right after still never re-sends this request
        for e in entries:
            self.trace(ex, e["sample"], e)
            self.new += 1

    def trace(self, ex: Example, sample: int, entry: dict) -> None:
        template = self.t.template
        text = template.assistant_text(entry["text"], entry.get("reasoning"))
        fr = entry.get("finish_reason")
        error = None
        if fr == "length":
            error = f"truncated at max_tokens={self.t.cfg.max_tokens}"
        elif fr not in (None, "stop", "eos"):
            error = f"finish_reason {fr}"
        elif not text.strip():
            error = "empty completion"
        ref = None
        if entry.get("logprobs"):
            ref = LOGPROBS_FILE
            if (ex.id, sample) not in self.lp_done:
                self._lp = self._lp or JsonlAppender(self.dir / LOGPROBS_FILE)
                self._lp.write({"example_id": ex.id, "sample": sample, "logprobs": entry["logprobs"]})
                self.lp_done.add((ex.id, sample))
        prompt = template.prompt(ex.question)  # what was sent; a format stage re-renders it
        t = self.t.make_trace(
            ex, sample, prompt, text, self.verify, usage=entry["usage"], error=error, logits_ref=ref
        )
        self.store.append([t])

    def failed(self, ex: Example, req: Request, err: RequestFailed) -> None:
        self._fail = self._fail or JsonlAppender(self.dir / FAILURES_FILE)
        for s in req.samples:
            self._fail.write({"example_id": ex.id, "sample": s, "reason": scrub(err.reason, self.secret),
                              "attempts": err.attempts})  # fmt: skip

    def close(self) -> None:
        for f in (self._lp, self._fail):
            if f is not None:
                f.close()

    def outstanding(self, examples: list[Example], n: int) -> dict:
        """Samples still without a trace -> their latest failure; failures.jsonl rewritten to just those."""
        path = self.dir / FAILURES_FILE
        latest = (
            {(r["example_id"], r["sample"]): r for r in read_jsonl(path, torn_tail_ok=True)} if path.exists() else {}
        )
        missing = [(ex.id, s) for ex in examples for s in range(n) if not self.store.has(ex.id, s)]
        left = {
            k: latest.get(k, {"example_id": k[0], "sample": k[1], "reason": "not attempted"}) for k in missing
        }
        if left:
            write_jsonl_atomic(path, left.values())
        else:
            path.unlink(missing_ok=True)  # every sample has its trace: nothing outstanding
        return left


def canonical_order(store: TraceStore, examples: list[Example]) -> None:
    """Rewrite traces.jsonl in (example, sample) order, atomically, if replies came out of order."""
    traces = store.read()
    pos = {ex.id: i for i, ex in enumerate(examples)}
    ordered = sorted(traces, key=lambda t: (pos.get(t.example_id, len(pos)), t.sample))
    if [id(t) for t in ordered] != [id(t) for t in traces]:
        store.close()  # reopened on the next append
        write_jsonl_atomic(store.path, ordered)
