#!/usr/bin/env python3
"""Download a release tarball and verify it against its published .sha512 before use.

Written into the image by spark-openstack's bake user-data and run by the bake script.
Accepts both checksum formats Apache publishes: ``sha512sum`` output (``<hex>  <file>``)
and BSD/``shasum --tag`` style (``SHA512 (<file>) = <hex>``), plus the older
``gpg --print-md`` layout (``<file>: 1A2B 3C4D ...``). Exits non-zero, saying why, when the
download fails or the digest differs; the partial file is removed so nothing unverified
is ever unpacked.
"""
import argparse
import hashlib
import os
import re
import sys
import time
import urllib.error
import urllib.request

HEX128 = re.compile(r"^[0-9a-fA-F]{128}$")


def parse_sha512(text, filename):
    """Return the expected hex digest for ``filename`` from a .sha512 file's text."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in lines:
        m = re.match(r"^SHA512 ?\((?P<name>[^)]+)\) ?= ?(?P<hex>[0-9a-fA-F]{128})$", line)
        if m and os.path.basename(m.group("name")) == filename:
            return m.group("hex").lower()
        m = re.match(r"^(?P<hex>[0-9a-fA-F]{128})\s+\*?(?P<name>\S+)$", line)
        if m and os.path.basename(m.group("name")) == filename:
            return m.group("hex").lower()
    if len(lines) == 1 and HEX128.match(lines[0]):
        return lines[0].lower()
    joined = " ".join(lines)
    m = re.match(r"^(?P<name>\S+?):\s*(?P<hex>[0-9a-fA-F\s]+)$", joined)
    if m and os.path.basename(m.group("name")) == filename:
        digest = re.sub(r"\s+", "", m.group("hex"))
        if HEX128.match(digest):
            return digest.lower()
    raise ValueError(f"no SHA-512 digest for {filename} in the checksum file")


def fetch(url, attempts=3, timeout=60):
    last = None
    for attempt in range(1, attempts + 1):
        try:
            return urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            if isinstance(exc, urllib.error.HTTPError) and exc.code == 404:
                break
            time.sleep(min(2 ** attempt, 10))
    raise SystemExit(f"fetch_verified: cannot download {url}: {last}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--checksum-url", help="default: URL + .sha512")
    args = parser.parse_args(argv)
    filename = args.url.rstrip("/").rsplit("/", 1)[-1]
    checksum_url = args.checksum_url or args.url + ".sha512"
    with fetch(checksum_url) as resp:
        checksum_text = resp.read(1 << 16).decode("utf-8", "replace")
    try:
        expected = parse_sha512(checksum_text, filename)
    except ValueError as exc:
        raise SystemExit(f"fetch_verified: {checksum_url}: {exc}")
    digest = hashlib.sha512()
    size = 0
    try:
        with fetch(args.url) as resp, open(args.out, "wb") as out:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        if os.path.exists(args.out):
            os.unlink(args.out)
        raise
    actual = digest.hexdigest()
    if actual != expected:
        os.unlink(args.out)
        raise SystemExit(f"fetch_verified: SHA-512 MISMATCH for {args.url}: "
                         f"expected {expected}, got {actual} ({size} bytes); file removed")
    print(f"fetch_verified: {filename}: {size} bytes, sha512 ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
