"""The search attributes that docker-compose.yml registers are the ones the chains use."""

import re
from pathlib import Path

from workflows import search

ROOT = Path(__file__).resolve().parents[2]


def test_compose_registers_every_search_attribute_as_keyword():
    compose = (ROOT / "docker-compose.yml").read_text()
    names = re.search(r"for name in ([\w ]+); do\n\s+temporal operator search-attribute create", compose)
    assert names is not None, "the temporal-search-attributes step is missing"
    assert names.group(1).split() == [key.name for key in search.KEYS]
    assert '--name "$$name" --type Keyword' in compose


def test_dev_server_flags_name_each_key_once():
    assert search.dev_server_flags() == [
        "--search-attribute", "ProjectId=Keyword", "--search-attribute", "DeliverableStatus=Keyword",
        "--search-attribute", "Submitter=Keyword", "--search-attribute", "StageName=Keyword"]
