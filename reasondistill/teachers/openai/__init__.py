"""The `openai` teacher: any OpenAI-compatible server (vLLM, SGLang, `reasondistill serve`).

    config.py   OpenAIConfig (the recipe's `teacher: {kind: openai, ...}`)
    teacher.py  OpenAITeacher: requests -> traces, resumable, registered as `openai`
    run.py      bounded-concurrency dispatch of requests
    http.py     one request under the retry policy; secrets scrubbed from errors
    records.py  what the teacher writes as replies and failures arrive
    cache.py    the request cache shared by a recipe's generate stages
    serve.py    start a local `reasondistill serve` for the duration of a stage
"""

from reasondistill.teachers.openai.teacher import OpenAITeacher

__all__ = ["OpenAITeacher"]
