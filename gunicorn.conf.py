"""gunicorn settings for Paydesk; gunicorn reads this file from the working directory.

    gunicorn console.wsgi --bind 0.0.0.0:8000

Threads inside each worker process: a webhook request spends most of its time waiting for
PostgreSQL to flush the commit to disk, and with several requests in flight their commits
share one flush. `make bench` measured 2 sync workers at a third to a half of the rate of
2 gthread workers with 8 threads each, at a higher CPU cost per request (a new connection
per request).
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
keepalive = 5
backlog = 1024
