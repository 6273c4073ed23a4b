"""Reading rendered configuration files back: Hadoop's ``*-site.xml`` and Spark's
``spark-defaults.conf``."""
from __future__ import annotations

import xml.etree.ElementTree as ET


def hadoop_props(xml_text: str) -> dict[str, str]:
    """``name -> value`` of every ``<property>`` in a Hadoop site file."""
    root = ET.fromstring(xml_text)
    return {p.findtext("name"): p.findtext("value") for p in root.iter("property")}


def spark_conf(text: str) -> dict[str, str]:
    """``key -> value`` of a ``spark-defaults.conf`` (``key value`` lines, ``#`` comments)."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.strip().partition(" ")
            out[key] = value.strip()
    return out
