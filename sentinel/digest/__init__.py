"""The weekly digest: what was spent, where it moved, what was odd, and how every budget is going.

schedule.py  cron + timezone -> the last and next scheduled time; a period is the 7 UTC days before one
data.py      the I/O edge: read what a period's digest needs from the store (one read, every audience)
build.py     pure: inputs + now -> a typed Digest (the whole proxy's, or one team's)
charts.py    pure: a Digest -> PNG charts (matplotlib, Agg, deterministic)
render.py    pure: HTML (cid: or data: images), plain text, the Slack summary, the email message
send.py      once per period through the ``digests`` table: send_due (the daemon), send_now (the CLI)
"""
