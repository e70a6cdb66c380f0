"""`cxr-edge serve`: the clinic's triage station, a web page and JSON API over edge.Classifier.

A thin web shell on the ground floor (edge/): the same verified model directory, decoder,
referral decision and heat maps as `cxr-edge classify`, behind a bounded queue (one LiteRT
interpreter is not thread-safe), with a SQLite history under --data-dir.

    options.py   ServeOptions, the CLI arguments and the bind/access-code rule (stdlib only)
    models.py    the served model: verified at start, swapped when a new push verifies
    history.py   the SQLite history (and kept images, with --keep-images)
    work.py      the bounded queue and the one worker thread that owns the interpreter
    guard.py     the middleware every request passes: Host, CSRF, access code, size, headers
    app.py       the Starlette app: the pages, the JSON API and the login form
    server.py    builds the station and runs uvicorn
    static/      the page's HTML, CSS and JS (served from memory; no CDN)

Only app.py, guard.py and server.py import the web stack (the `serve` extra); `import edge.cli`
does not.
"""
