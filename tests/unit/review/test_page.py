"""The review page over HTTP (a real server; the browser itself is tests/e2e/test_review_page.py):
each clip goes to the needed number of distinct annotators however many ask at once, never twice to
one person; bad input is a clear 4xx that changes nothing; results and the validated release."""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading

import pytest
import requests

from emofactory.review.agreement import counts, fleiss_kappa
from emofactory.review.validated import create_validated_release
from emofactory.review.web import serve_in_thread
from emofactory.v1 import catalog_pb2
from tests.helpers import ReviewSite, fresh_postgres

LABELS = ["anger", "happiness", "sadness", "fear", "surprise", "disgust"]


@pytest.fixture
def site(tmp_path):
    running = ReviewSite(tmp_path, LABELS)
    yield running
    running.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_site(request, tmp_path):
    """On SQLite, and on a real PostgreSQL (where replicas serialise on the release's row lock)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if request.param == "postgresql" else ""
        running = ReviewSite(tmp_path, LABELS, url=url)
        stack.callback(running.close)
        yield running


def signed_in(site: ReviewSite, name: str, lead: bool = False) -> requests.Session:
    session = requests.Session()
    token = site.annotator(name, lead)
    answer = session.post(f"{site.base}/signin", data={"name": name, "token": token}, allow_redirects=False)
    assert answer.status_code == 303 and "httponly" in answer.headers["set-cookie"].lower()
    return session


def given_clip(site: ReviewSite, session: requests.Session) -> str | None:
    page = session.get(f"{site.base}/r/{site.release_id}")
    assert page.status_code == 200
    found = re.search(r'data-clip="([^"]+)"', page.text)
    return found.group(1) if found else None


def answer(site, session, clip_id, label):
    url = f"{site.base}/r/{site.release_id}/clips/{clip_id}"
    return session.post(url, data={"label": label}, allow_redirects=False)


def test_annotators_asking_at_once_each_clip_gets_exactly_the_needed_distinct_labels(any_site):
    site = any_site
    names = [f"a{i}" for i in range(6)]
    sessions = {name: signed_in(site, name) for name in names}
    given: list[tuple[str, str]] = []
    errors: list[str] = []

    def work(name: str) -> None:
        rng = random.Random(name)
        while (clip := given_clip(site, sessions[name])) is not None:
            given.append((name, clip))
            if answer(site, sessions[name], clip, rng.choice(LABELS)).status_code != 303:
                errors.append(f"{name} {clip}")

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(given) == len(set(given)), "a clip went twice to the same annotator"
    stored = site.labels()
    assert sorted(stored) == sorted(r["clip_id"] for r in site.release.records)
    assert all(len(by) == 3 for by in stored.values()), stored  # never past what a clip needs
    assert sum(len(by) for by in stored.values()) == len(given) == 3 * len(LABELS)


@pytest.mark.hostile
def test_bad_input_is_a_clear_4xx_and_changes_nothing(site):
    alice, bob = signed_in(site, "alice"), signed_in(site, "bob")
    mine = given_clip(site, alice)
    before = site.labels()
    base, release = site.base, site.release_id
    refused = {
        "unknown class": (answer(site, alice, mine, "contempt"), 400),
        "someone else's clip": (answer(site, bob, mine, "anger"), 403),
        "a clip not in the release": (answer(site, alice, "vother-00000000-00001500", "anger"), 404),
        "no token": (requests.post(f"{base}/r/{release}/clips/{mine}", data={"label": "anger"}), 401),
        "a forged token": (
            requests.post(
                f"{base}/r/{release}/clips/{mine}", data={"label": "anger"}, cookies={"emo_review": "x" * 32}
            ),
            401,
        ),
        "an unknown release": (alice.get(f"{base}/r/rnothere"), 404),
        "media of no kind": (alice.get(f"{base}/r/{release}/media/{mine}.txt"), 404),
        "results for an annotator": (alice.get(f"{base}/r/{release}/results.json"), 403),
        "a wrong sign-in": (requests.post(f"{base}/signin", data={"name": "alice", "token": "nope"}), 401),
        "a huge form": (alice.post(f"{base}/r/{release}/clips/{mine}", data={"label": "anger" * 10_000}), 413),
    }
    for what, (response, status) in refused.items():
        assert response.status_code == status, (what, response.status_code, response.text[:200])
        assert len(response.text) < 5000 and "Traceback" not in response.text, what
    assert site.labels() == before
    assert answer(site, alice, mine, "anger").status_code == 303
    assert answer(site, alice, mine, "anger").status_code == 303  # the same answer again: a no-op
    changed = answer(site, alice, mine, "fear")
    assert changed.status_code == 409 and "already" in changed.text
    assert site.labels()[mine]["alice"] == "anger"
    video = alice.get(f"{base}/r/{release}/media/{mine}.mp4", headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100 and video.headers["content-type"] == "video/mp4"
    page = alice.get(f"{base}/r/{release}")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for label in LABELS:  # the factory's label is never on the annotator's page
        assert f">{label}<" not in page.text.split('id="answers"')[0]


def test_a_port_the_page_cannot_listen_on_stops_the_caller_at_start(site):
    from starlette.applications import Starlette

    with pytest.raises(RuntimeError, match="could not listen"):
        serve_in_thread(Starlette(), "127.0.0.1", int(site.base.rsplit(":", 1)[1]))  # the site holds it


def test_results_majority_kappa_and_the_validated_release(site, tmp_path):
    votes = {  # per clip (release order): three annotators' labels
        0: ["anger", "anger", "anger"],
        1: ["happiness", "happiness", "sadness"],
        2: ["sadness", "fear", "anger"],  # a three-way tie: ambiguous
        3: ["fear", "fear", "surprise"],
        4: ["happiness", "happiness", "surprise"],  # the factory said surprise
        5: ["disgust", "unsure", "disgust"],  # one skipped; a fourth annotator fills in
    }
    people = {name: signed_in(site, name) for name in ("p0", "p1", "p2", "p3")}
    order = [r["clip_id"] for r in site.release.records]
    progressed = True
    while progressed:  # rounds of everyone asking, until nobody is given a clip
        progressed = False
        for session in people.values():
            if (clip := given_clip(site, session)) is not None:
                answered = [by for by in site.labels()[clip].values() if by is not None]
                row = votes[order.index(clip)]
                label = row[len(answered)] if len(answered) < len(row) else "disgust"
                assert answer(site, session, clip, label).status_code == 303
                progressed = True
    lead = signed_in(site, "lead", lead=True)
    result = lead.get(f"{site.base}/r/{site.release_id}/results.json").json()
    assert result["complete"] == 6 and result["ambiguous"] == 1
    factory = {r["clip_id"]: r["label"] for r in site.release.records}
    majorities = {order[i]: m for i, m in enumerate(["anger", "happiness", None, "fear", "happiness", "disgust"])}
    assert result["majority"] == majorities
    human = {c: {a: label for a, label in by.items() if label in LABELS} for c, by in site.labels().items()}
    assert result["kappa"] == pytest.approx(fleiss_kappa(counts(human))[0])
    decided = [c for c, m in majorities.items() if m]
    agree = sum(factory[c] == majorities[c] for c in decided) / len(decided)
    assert result["factory_agrees"] == pytest.approx(agree)
    page = lead.get(f"{site.base}/r/{site.release_id}/results")
    assert page.status_code == 200 and f"{result['kappa']:.3f}" in page.text and 'id="annotators"' in page.text
    people_rows = result["by_annotator"]
    assert sum(r["skipped"] for r in people_rows.values()) == 1  # the one "unsure"
    assert sum(r["labels"] for r in people_rows.values()) == sum(len(by) for by in human.values())

    request = catalog_pb2.CreateValidatedReleaseRequest(release=site.release_id)
    kept = create_validated_release(site.store, site.config, request, tmp_path / "validated")
    assert {r["clip_id"] for r in kept.records} == {c for c in decided if factory[c] == majorities[c]}
    request.use_human_label = True
    relabelled = create_validated_release(site.store, site.config, request, tmp_path / "human")
    assert {r["clip_id"]: r["label"] for r in relabelled.records} == {c: majorities[c] for c in decided}
    assert relabelled.release_id != kept.release_id
    manifest = json.loads((tmp_path / "human" / "manifest.json").read_text())
    assert manifest["validated_from"] == site.release_id and manifest["use_human_label"] is True
    assert "Human validation" in (tmp_path / "human" / "report" / "report.html").read_text()
    again = create_validated_release(site.store, site.config, request, tmp_path / "again")
    assert again.release_id == relabelled.release_id and again.records == relabelled.records
