#!/usr/bin/env python3
"""Reference renderer for tests/test_chat_template.cpp: renders chat templates with Python's jinja2
configured exactly as Hugging Face transformers' apply_chat_template configures it
(transformers/utils/chat_template_utils.py, _compile_jinja_template):

    ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                  extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson          # json.dumps(x, ensure_ascii=False, indent=indent,
                                            #            separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception   # raises TemplateError(message)
    env.globals["strftime_now"] = strftime_now         # datetime.now().strftime(format)

transformers itself is not imported (not a Debian package); AssistantTracker only adds the
{% generation %} tag, which renders its body unchanged, so a small extension stands in for it.
strftime_now uses the fixed time given in the jobs file instead of now.

Usage: render_chat_template.py JOBS.json
JOBS.json: {"now": [Y, M, D, h, m, s], "jobs": [{"template": "path", "context": {...}}, ...]}
Prints a JSON list with one {"ok": true, "text": "..."} or {"ok": false, "error": "..."} per job.
"""
import datetime
import json
import sys
import warnings

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %} renders its body, as transformers' AssistantTracker does."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    # jinja2 compiles templates to Python; odd random test expressions draw SyntaxWarnings we do not need.
    warnings.filterwarnings("ignore")
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    env = make_env(datetime.datetime(*spec["now"]))
    compiled = {}
    results = []
    for job in spec["jobs"]:
        path = job["template"]
        try:
            if path not in compiled:
                with open(path, encoding="utf-8", newline="") as f:
                    compiled[path] = env.from_string(f.read())
            results.append({"ok": True, "text": compiled[path].render(**job["context"])})
        except Exception as e:  # any failure of jinja2 means our renderer must fail too
            compiled.setdefault(path, None)
            results.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
    json.dump(results, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
