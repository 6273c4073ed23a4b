"""The class roster a trainer hands out: one row per student with a healthy cluster.

Written by ``batch launch`` into the roster folder as ``roster.csv`` and ``roster.json``
(for scripts and mail merges) and ``roster.html`` (printable: one card per student with
the exact commands to log in and to open the web UIs through an SSH tunnel). Only
clusters that passed their health check get a row; the students without one are listed
apart (in ``roster.json`` and on the HTML page), so nobody is handed a broken cluster.
Paths in the commands are relative to the roster folder (``keys/NAME.key``).
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import shlex
from pathlib import Path

from .model import ClusterFacts
from .ports import port_number
from .services import SERVICE_CLASSES

FIELDS = ("student", "email", "cluster", "master", "login_user", "key_file", "ssh",
          "tunnel", "spark_ui", "hdfs_ui", "jupyter_url", "health", "expires")

#: The web UIs a student opens through the tunnel, with their local port = remote port.
_TUNNELLED = (("spark", "spark_master_ui", "spark_ui"), ("hdfs", "namenode_http", "hdfs_ui"),
              ("jupyter", "jupyter", "jupyter_url"))


def _port(service: str, name: str) -> int | None:
    cls = SERVICE_CLASSES.get(service)
    return port_number(cls.ports, name) if cls else None


def roster_row(*, student: str, email: str, facts: ClusterFacts, key_file: str,
               health: str, expires: str, login_user: str) -> dict:
    """One student's row: where to log in, with which key, and the tunnel to the UIs."""
    target = f"{login_user}@{facts.master.address}"
    options = f"-i {shlex.quote(key_file)} -o IdentitiesOnly=yes"
    row = {"student": student, "email": email, "cluster": facts.cluster_name,
           "master": facts.master.address, "login_user": login_user, "key_file": key_file,
           "ssh": f"ssh {options} {target}", "tunnel": "", "spark_ui": "", "hdfs_ui": "",
           "jupyter_url": "", "health": health, "expires": expires}
    forwards = []
    for service, port_name, column in _TUNNELLED:
        number = _port(service, port_name)
        if service not in facts.services or number is None:
            continue
        forwards.append(f"-L {number}:{facts.master.private_ip}:{number}")
        url = f"http://localhost:{number}/"
        if service == "jupyter":
            url = f"http://localhost:{number}/lab?token={facts.jupyter_token}"
        row[column] = url
    if forwards:
        row["tunnel"] = f"ssh {options} -N {' '.join(forwards)} {target}"
    return row


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in FIELDS})
    return out.getvalue()


def _card(row: dict) -> str:
    e = html.escape
    lines = [f"<h2>{e(row['student'])}</h2>",
             f"<p>cluster <b>{e(row['cluster'])}</b>, master {e(row['master'])}, "
             f"user {e(row['login_user'])}, key file <code>{e(row['key_file'])}</code>"
             + (f", ends {e(row['expires'])}" if row["expires"] != "never" else "") + "</p>",
             "<p>Log in (from the folder that holds the key):</p>",
             f"<pre>{e(row['ssh'])}</pre>"]
    if row["tunnel"]:
        lines += ["<p>Web UIs: keep this running, then open the links below:</p>",
                  f"<pre>{e(row['tunnel'])}</pre>", "<ul>"]
        for label, column in (("Spark master", "spark_ui"), ("HDFS NameNode", "hdfs_ui"),
                              ("Jupyter", "jupyter_url")):
            if row[column]:
                lines.append(f"<li>{label}: <code>{e(row[column])}</code></li>")
        lines.append("</ul>")
    return '<section class="card">' + "\n".join(lines) + "</section>"


def _html(rows: list[dict], missing: list[dict], title: str) -> str:
    e = html.escape
    absent = "".join(f"<li>{e(m['student'])} ({e(m['cluster'])}): {e(m['reason'])}</li>"
                     for m in missing)
    return ("<!doctype html><meta charset='utf-8'>"
            f"<title>{e(title)}</title>"
            "<style>body{font-family:sans-serif} .card{border:1px solid #999;"
            "padding:0 1em;margin:1em 0;page-break-inside:avoid} pre{white-space:pre-wrap;"
            "background:#f4f4f4;padding:.5em}</style>"
            f"<h1>{e(title)}</h1>"
            + (f"<p><b>No cluster for:</b></p><ul>{absent}</ul>" if missing else "")
            + "\n".join(_card(r) for r in rows) + "\n")


def write_roster(*, folder: Path, rows: list[dict], missing: list[dict], title: str,
                 batch: dict) -> dict[str, str]:
    """roster.csv/json/html in ``folder`` (replaced atomically); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"roster.csv": _csv(rows),
             "roster.json": json.dumps({**batch, "students": rows, "without_cluster": missing},
                                       indent=2) + "\n",
             "roster.html": _html(rows, missing, title)}
    written = {}
    for name, text in texts.items():
        path = folder / name
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        os.chmod(tmp, 0o600)            # the HTML and JSON hold Jupyter tokens
        os.replace(tmp, path)
        written[name] = str(path)
    return written
