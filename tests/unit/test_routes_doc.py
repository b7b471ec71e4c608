#!/usr/bin/env python3
"""core/http/routes.c's table and docs/api.md list the same endpoints.

    test_routes_doc.py SOURCE_DIR

Every endpoint the docs name (a table cell or line starting with
`METHOD /v1/...`) has a route of that method (or of any method) and path,
and every route but the fallbacks that answer 404/405 is documented.
"""
import re
import sys

FALLBACKS = ("_no_endpoint", "_not_post")


def doc_endpoints(text):
    found = set()
    for m in re.finditer(r"`((?:GET|POST|PUT|HEAD|DELETE)(?:\|(?:GET|POST|PUT|HEAD|DELETE))*) (/v1/[^`?\[ ]*)", text):
        path = re.sub(r"<[^>]+>", ":", m.group(2))
        for method in m.group(1).split("|"):
            found.add((method, path))
    return found


def routes(text):
    table = text[text.index("routes__table[] = {"):]
    table = table[: table.index("\n};")]
    out = []
    for m in re.finditer(r'\{\s*(NULL|"[A-Z]+")\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*(\w+)\s*(?:,\s*\w+\s*)?\}', table):
        method = None if m.group(1) == "NULL" else m.group(1).strip('"')
        path = re.sub(r":[a-z0-9_]+", ":", m.group(2))
        path = re.sub(r"/\*\*$", "", path)
        out.append((method, path, m.group(4)))
    return out


def main(src):
    docs = doc_endpoints(open(f"{src}/docs/api.md", encoding="utf-8").read())
    table = routes(open(f"{src}/core/http/routes.c", encoding="utf-8").read())
    problems = []
    if not docs or not table:
        problems.append(f"read {len(docs)} documented endpoints and {len(table)} routes")
    for method, path in sorted(docs):
        if not any(p == path and m in (None, method) for m, p, h in table
                   if not h.endswith(FALLBACKS)):
            problems.append(f"docs/api.md: {method} {path} has no route in core/http/routes.c")
    for method, path, handler in table:
        if handler.endswith(FALLBACKS):
            continue
        if not any(p == path and (method is None or m == method) for m, p in docs):
            problems.append(f"core/http/routes.c: {method or 'any'} {path} ({handler}) is not in docs/api.md")
    for p in problems:
        print(p)
    print(f"{len(docs)} documented endpoints, {len(table)} routes, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
